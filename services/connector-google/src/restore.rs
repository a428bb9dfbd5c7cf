//! Writing backed-up items back to Google Workspace (the provider side of
//! `arkiv_backup::restore`).
//!
//! - **Gmail**: `messages.import` of the original RFC 822 message, with
//!   its labels (by name, created in the target mailbox where missing), its
//!   thread where the thread still exists, and its date from its `Date:`
//!   header. A copy already there (the same Message-ID, found with
//!   `rfc822msgid:`) is the collision.
//! - **Drive**: an upload to the file's folder by path (folders made where
//!   missing), My Drive or the shared drive it came from; a Google Doc goes
//!   up as its Office export with the Docs type as its `mimeType`, so Drive
//!   converts it back. Each restored file carries `appProperties.arkivVersion`
//!   so a retried job recognises its own copy. Large files go through a
//!   resumable upload, streamed from the backup.
//! - **Calendar**: `events.import` into its calendar, which Google matches
//!   on the event's iCalUID (and, for an exception, its original start):
//!   importing again updates rather than duplicates. Import sends no
//!   invitations.

use std::collections::HashMap;
use std::sync::Arc;

use arkiv_backup::restore::{Collision, Done, Failure, Item, Job, RestoreTarget};
use arkiv_domain::Workload;
use arkiv_vault::keyring::TenantContext;
use arkiv_vault::reader::Reader;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::google::{read_json, Google, GoogleError};
use crate::walk::FOLDER_MARKER;

/// Files up to this size go up in one multipart request.
const MULTIPART_MAX: u64 = 5 * 1024 * 1024;
/// Resumable-upload chunks: a multiple of 256 KiB, as Google asks.
const CHUNK: usize = 32 * 256 * 1024;
const FOLDER: &str = "application/vnd.google-apps.folder";

/// One job's writes to one target account.
pub struct GoogleRestore {
    google: Arc<Google>,
    reader: Reader,
    /// Gmail label names (lower case) → ids in the target mailbox.
    labels: Mutex<Option<HashMap<String, String>>>,
    /// Drive folder paths → ids, as found or made.
    folders: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for GoogleRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleRestore").finish_non_exhaustive()
    }
}

fn failure(e: GoogleError) -> Failure {
    let fatal = e.is_access_denied();
    let message = if fatal {
        format!(
            "Google refused access to the target account ({}): check the domain-wide delegation of Arkiv's client id",
            e.reason()
        )
    } else {
        e.to_string()
    };
    Failure {
        code: e.reason(),
        message,
        request_id: None,
        fatal,
    }
}

fn malformed(what: &str) -> Failure {
    Failure::item(
        "malformedResponse",
        format!("Google's answer had no {what}"),
    )
}

/// A Drive query string literal.
fn q_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A `multipart/related` body of JSON metadata and media.
fn multipart(metadata: &Value, media_type: &str, media: &[u8]) -> (String, Vec<u8>) {
    let boundary = format!("arkiv-{}", uuid::Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(media.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{boundary}\r\nContent-Type: {media_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(media);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/related; boundary={boundary}"), body)
}

/// The Office (or PDF) type a Docs editors file was backed up as.
fn backed_up_as(google_type: &str) -> &'static str {
    crate::walk::export_format(google_type).map_or("application/octet-stream", |(m, _)| m)
}

impl GoogleRestore {
    pub fn new(google: Arc<Google>, reader: Reader) -> Self {
        Self {
            google,
            reader,
            labels: Mutex::default(),
            folders: Mutex::default(),
        }
    }

    async fn content(&self, item: &Item) -> Result<Vec<u8>, Failure> {
        self.reader
            .read_all(item.version.version_id)
            .await
            .map_err(|e| Failure::item("backupUnreadable", e.to_string()))
    }

    // ---- Gmail ----

    /// The target mailbox's label ids for `names`, creating user labels it
    /// lacks (system labels such as INBOX are their own ids).
    async fn label_ids(&self, user: &str, names: &[String]) -> Result<Vec<String>, Failure> {
        let mut cache = self.labels.lock().await;
        if cache.is_none() {
            let body = self
                .google
                .get_json(user, "gmail/v1/users/me/labels", &[])
                .await
                .map_err(failure)?;
            *cache = Some(
                body["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| {
                        Some((
                            l["name"].as_str()?.to_lowercase(),
                            l["id"].as_str()?.to_owned(),
                        ))
                    })
                    .collect(),
            );
        }
        let known = cache.as_mut().expect("filled above");
        let mut ids = Vec::new();
        for name in names {
            if let Some(id) = known.get(&name.to_lowercase()) {
                ids.push(id.clone());
                continue;
            }
            let created = self
                .google
                .post_json(
                    user,
                    "gmail/v1/users/me/labels",
                    &[],
                    &json!({ "name": name }),
                )
                .await
                .map_err(failure)?;
            let id = created["id"]
                .as_str()
                .ok_or_else(|| malformed("label id"))?
                .to_owned();
            known.insert(name.to_lowercase(), id.clone());
            ids.push(id);
        }
        Ok(ids)
    }

    /// Messages of the mailbox with this Message-ID.
    async fn copies(&self, user: &str, message_id: &str) -> Result<Vec<String>, Failure> {
        let q = format!("rfc822msgid:{message_id}");
        let body = self
            .google
            .get_json(
                user,
                "gmail/v1/users/me/messages",
                &[("q", q.as_str()), ("includeSpamTrash", "true")],
            )
            .await
            .map_err(failure)?;
        Ok(body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect())
    }

    async fn mail(&self, job: &Job, item: &Item) -> Result<Done, Failure> {
        let user = job.target_email.as_str();
        let m = &item.version.metadata;
        let raw = self.content(item).await?;
        let message_id = mail_parser::MessageParser::default()
            .parse_headers(&raw)
            .and_then(|p| p.message_id().map(str::to_owned));
        let existing = match &message_id {
            Some(id) => self.copies(user, id).await?,
            None => Vec::new(),
        };
        if let Some(there) = existing.first() {
            if item.maybe_written {
                return Ok(Done::Restored(there.clone()));
            }
            if job.request.collision == Collision::Skip {
                return Ok(Done::Skipped(Some(there.clone())));
            }
        }
        let labels = self.label_ids(user, &m.labels).await?;
        let mut metadata = json!({ "labelIds": labels });
        if let Some(thread) = &m.thread_id {
            metadata["threadId"] = Value::from(thread.as_str());
        }
        let (content_type, body) = multipart(&metadata, "message/rfc822", &raw);
        let body = Bytes::from(body);
        let url = self.google.url("upload/gmail/v1/users/me/messages/import");
        let response = self
            .google
            .send(user, |http, token| {
                http.post(url.clone())
                    .query(&[
                        ("uploadType", "multipart"),
                        ("internalDateSource", "dateHeader"),
                    ])
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                    .body(body.clone())
            })
            .await
            .map_err(failure)?;
        let imported = read_json(response).await.map_err(failure)?;
        let id = imported["id"]
            .as_str()
            .ok_or_else(|| malformed("message id"))?
            .to_owned();
        if job.request.collision == Collision::Overwrite {
            for old in &existing {
                let path = format!("gmail/v1/users/me/messages/{old}");
                let url = self.google.url(&path);
                match self
                    .google
                    .send(user, |http, token| {
                        http.delete(url.clone()).bearer_auth(token)
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(failure(e)),
                }
            }
        }
        Ok(Done::Restored(id))
    }

    // ---- Drive ----

    /// Files of `parent` named `name` (not trashed).
    async fn children(
        &self,
        user: &str,
        drive: Option<&str>,
        parent: &str,
        name: &str,
        folders_only: bool,
    ) -> Result<Vec<Value>, Failure> {
        let mut q = format!(
            "{} in parents and name = {} and trashed = false",
            q_string(parent),
            q_string(name)
        );
        if folders_only {
            q.push_str(&format!(" and mimeType = {}", q_string(FOLDER)));
        }
        let mut query = vec![
            ("q", q),
            ("supportsAllDrives", "true".into()),
            ("includeItemsFromAllDrives", "true".into()),
            (
                "fields",
                "files(id,name,size,mimeType,appProperties)".into(),
            ),
        ];
        if let Some(d) = drive {
            query.extend([("driveId", d.to_owned()), ("corpora", "drive".into())]);
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = self
            .google
            .get_json(user, "drive/v3/files", &query)
            .await
            .map_err(failure)?;
        Ok(body["files"].as_array().cloned().unwrap_or_default())
    }

    /// The folder at `segments` below `root`, made where missing.
    async fn folder(
        &self,
        user: &str,
        drive: Option<&str>,
        root: &str,
        segments: &[&str],
    ) -> Result<String, Failure> {
        let mut cache = self.folders.lock().await;
        let mut at = root.to_owned();
        let mut walked = root.to_owned();
        for seg in segments {
            walked.push('/');
            walked.push_str(seg);
            if let Some(id) = cache.get(&walked) {
                at = id.clone();
                continue;
            }
            let found = self.children(user, drive, &at, seg, true).await?;
            let id = match found.first().and_then(|f| f["id"].as_str()) {
                Some(id) => id.to_owned(),
                None => {
                    let made = self
                        .google
                        .post_json(
                            user,
                            "drive/v3/files",
                            &[("supportsAllDrives", "true")],
                            &json!({ "name": seg, "mimeType": FOLDER, "parents": [at] }),
                        )
                        .await
                        .map_err(failure)?;
                    made["id"]
                        .as_str()
                        .ok_or_else(|| malformed("folder id"))?
                        .to_owned()
                }
            };
            cache.insert(walked.clone(), id.clone());
            at = id;
        }
        Ok(at)
    }

    async fn drive(&self, job: &Job, item: &Item) -> Result<Done, Failure> {
        let user = job.target_email.as_str();
        let m = &item.version.metadata;
        let path = m
            .file_path
            .clone()
            .or_else(|| m.file_name.as_ref().map(|n| format!("/{n}")))
            .ok_or_else(|| Failure::item("noPath", "the backup does not say where the file was"))?;
        let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        // A shared drive's items sit below the drive's name.
        let drive = m.container_id.as_deref();
        let root = match drive {
            Some(d) => {
                if !segments.is_empty() {
                    segments.remove(0);
                }
                d.to_owned()
            }
            None => {
                let root = self
                    .google
                    .get_json(user, "drive/v3/files/root", &[("fields", "id")])
                    .await
                    .map_err(failure)?;
                root["id"]
                    .as_str()
                    .ok_or_else(|| malformed("root id"))?
                    .to_owned()
            }
        };
        let Some(name) = segments.pop() else {
            return Err(Failure::item("noPath", "the backup has no file name"));
        };
        let is_folder = m.content_type.as_deref() == Some(FOLDER_MARKER);
        if is_folder {
            segments.push(name);
            let existed = !self
                .children(user, drive, &root, segments[0], true)
                .await?
                .is_empty();
            let id = self.folder(user, drive, &root, &segments).await?;
            return Ok(if existed && segments.len() == 1 {
                Done::Skipped(Some(id))
            } else {
                Done::Restored(id)
            });
        }
        let parent = self.folder(user, drive, &root, &segments).await?;
        let version = item.version.version_id.to_string();
        let existing = self.children(user, drive, &parent, name, false).await?;
        if let Some(ours) = existing
            .iter()
            .find(|f| f["appProperties"]["arkivVersion"] == version.as_str())
        {
            if item.maybe_written || job.request.collision == Collision::Skip {
                return Ok(Done::Restored(
                    ours["id"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        let google_type = m
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        let media_type = if google_type.starts_with("application/vnd.google-apps.") {
            backed_up_as(&google_type).to_owned()
        } else {
            google_type.clone()
        };
        let (overwrite, name) = match (existing.first(), job.request.collision) {
            (Some(there), Collision::Skip) => {
                return Ok(Done::Skipped(there["id"].as_str().map(str::to_owned)))
            }
            (Some(there), Collision::Overwrite) => {
                (there["id"].as_str().map(str::to_owned), name.to_owned())
            }
            (Some(_), Collision::Rename) => (None, renamed(name, job)),
            (None, _) => (None, name.to_owned()),
        };
        let mut metadata = json!({
            "name": name,
            "mimeType": google_type,
            "appProperties": { "arkivVersion": version },
        });
        if overwrite.is_none() {
            metadata["parents"] = json!([parent]);
        }
        let written = if item.version.size as u64 <= MULTIPART_MAX {
            let content = self.content(item).await?;
            let (content_type, body) = multipart(&metadata, &media_type, &content);
            let body = Bytes::from(body);
            let (method, path) = match &overwrite {
                Some(id) => (
                    reqwest::Method::PATCH,
                    format!("upload/drive/v3/files/{id}"),
                ),
                None => (reqwest::Method::POST, "upload/drive/v3/files".to_owned()),
            };
            let url = self.google.url(&path);
            let response = self
                .google
                .send(user, |http, token| {
                    http.request(method.clone(), url.clone())
                        .query(&[("uploadType", "multipart"), ("supportsAllDrives", "true")])
                        .bearer_auth(token)
                        .header(reqwest::header::CONTENT_TYPE, content_type.as_str())
                        .body(body.clone())
                })
                .await
                .map_err(failure)?;
            read_json(response).await.map_err(failure)?
        } else {
            self.resumable(user, overwrite.as_deref(), &metadata, &media_type, item)
                .await?
        };
        written["id"]
            .as_str()
            .map(|id| Done::Restored(id.to_owned()))
            .ok_or_else(|| malformed("file id"))
    }

    /// A large file through a resumable upload, streamed from the backup.
    async fn resumable(
        &self,
        user: &str,
        overwrite: Option<&str>,
        metadata: &Value,
        media_type: &str,
        item: &Item,
    ) -> Result<Value, Failure> {
        let total = item.version.size as u64;
        let (method, path) = match overwrite {
            Some(id) => (
                reqwest::Method::PATCH,
                format!("upload/drive/v3/files/{id}"),
            ),
            None => (reqwest::Method::POST, "upload/drive/v3/files".to_owned()),
        };
        let url = self.google.url(&path);
        let started = self
            .google
            .send(user, |http, token| {
                http.request(method.clone(), url.clone())
                    .query(&[("uploadType", "resumable"), ("supportsAllDrives", "true")])
                    .bearer_auth(token)
                    .header("x-upload-content-type", media_type)
                    .header("x-upload-content-length", total)
                    .json(metadata)
            })
            .await
            .map_err(failure)?;
        let session = started
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| malformed("upload session location"))?
            .to_owned();
        let mut stream = self
            .reader
            .stream(item.version.version_id)
            .await
            .map_err(|e| Failure::item("backupUnreadable", e.to_string()))?;
        let mut buffer = BytesMut::new();
        let mut sent = 0u64;
        let mut ended = false;
        loop {
            while buffer.len() < CHUNK && !ended {
                match stream.next().await {
                    Some(Ok(piece)) => buffer.extend_from_slice(&piece),
                    Some(Err(e)) => return Err(Failure::item("backupUnreadable", e.to_string())),
                    None => ended = true,
                }
            }
            let chunk = buffer.split_to(buffer.len().min(CHUNK)).freeze();
            let end = sent + chunk.len() as u64;
            // The session URL is the upload's own credential.
            let response = self
                .google
                .send(user, |http, _token| {
                    http.put(session.as_str())
                        .header(
                            "content-range",
                            if chunk.is_empty() {
                                format!("bytes */{total}")
                            } else {
                                format!("bytes {sent}-{}/{total}", end - 1)
                            },
                        )
                        .body(chunk.clone())
                })
                .await
                .map_err(failure)?;
            sent = end;
            if response.status().as_u16() != 308 {
                return read_json(response).await.map_err(failure);
            }
            if ended && buffer.is_empty() && sent >= total {
                return Err(Failure::item(
                    "uploadIncomplete",
                    format!("Drive still wants more after all {total} bytes"),
                ));
            }
        }
    }

    // ---- Calendar ----

    async fn calendar(&self, job: &Job, item: &Item) -> Result<Done, Failure> {
        let user = job.target_email.as_str();
        let m = &item.version.metadata;
        let original: Value = serde_json::from_slice(&self.content(item).await?).map_err(|e| {
            Failure::item("backupUnreadable", format!("the event is not JSON: {e}"))
        })?;
        // Its own calendar when it goes back to its account; another
        // account's primary calendar otherwise.
        let calendar = match m.container_id.as_deref() {
            Some(c) if item.version.account_id == job.request.target_account => c,
            _ => "primary",
        };
        let path = format!(
            "calendar/v3/calendars/{}/events",
            url::form_urlencoded::byte_serialize(calendar.as_bytes()).collect::<String>()
        );
        let ical = original["iCalUID"].as_str().unwrap_or_default();
        if job.request.collision == Collision::Skip && !item.maybe_written && !ical.is_empty() {
            let there = self
                .google
                .get_json(user, &path, &[("iCalUID", ical), ("showDeleted", "false")])
                .await
                .map_err(failure)?;
            let same = there["items"].as_array().into_iter().flatten().find(|e| {
                e["status"] != "cancelled"
                    && e.get("originalStartTime") == original.get("originalStartTime")
            });
            if let Some(e) = same {
                return Ok(Done::Skipped(e["id"].as_str().map(str::to_owned)));
            }
        }
        let mut body = original.clone();
        if let Some(o) = body.as_object_mut() {
            for read_only in [
                "kind",
                "etag",
                "htmlLink",
                "created",
                "updated",
                "creator",
                "organizer",
                "sequence",
                "hangoutLink",
            ] {
                o.remove(read_only);
            }
            // An exception's id is its series' and its start: import finds
            // it by iCalUID and original start instead.
            if o.contains_key("recurringEventId") {
                o.remove("id");
            }
            o.insert("status".into(), Value::from("confirmed"));
        }
        let imported = self
            .google
            .post_json(user, &format!("{path}/import"), &[], &body)
            .await
            .map_err(failure)?;
        imported["id"]
            .as_str()
            .map(|id| Done::Restored(id.to_owned()))
            .ok_or_else(|| malformed("event id"))
    }
}

/// `report.pdf` → `report (restored 2026-12-01).pdf`.
fn renamed(name: &str, job: &Job) -> String {
    let day = job.created_at.format("%Y-%m-%d");
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} (restored {day}).{ext}"),
        _ => format!("{name} (restored {day})"),
    }
}

impl RestoreTarget for GoogleRestore {
    async fn preflight(&self, job: &Job) -> Result<(), Failure> {
        let user = job.target_email.as_str();
        let (path, query): (&str, &[(&str, &str)]) = match job.request.workload {
            Workload::Mail => ("gmail/v1/users/me/profile", &[]),
            Workload::Drive => ("drive/v3/files/root", &[("fields", "id")]),
            Workload::Calendar => ("calendar/v3/users/me/calendarList", &[]),
        };
        self.google
            .get_json(user, path, query)
            .await
            .map(|_| ())
            .map_err(|e| {
                let mut f = failure(e);
                f.fatal = true;
                f
            })
    }

    async fn restore(&self, job: &Job, _ctx: &TenantContext, item: &Item) -> Result<Done, Failure> {
        match job.request.workload {
            Workload::Mail => self.mail(job, item).await,
            Workload::Drive => self.drive(job, item).await,
            Workload::Calendar => self.calendar(job, item).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_query_strings_escape_quotes_and_backslashes() {
        assert_eq!(q_string("it's"), r"'it\'s'");
        assert_eq!(q_string(r"a\b"), r"'a\\b'");
    }

    #[test]
    fn a_multipart_body_holds_the_metadata_then_the_media() {
        let (content_type, body) = multipart(&json!({ "name": "x" }), "text/plain", b"hello");
        let boundary = content_type.split_once("boundary=").unwrap().1;
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("{\"name\":\"x\"}"));
        assert!(text.contains("Content-Type: text/plain\r\n\r\nhello\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
