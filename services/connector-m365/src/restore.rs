//! Writing backed-up items back to Microsoft 365 (the provider side of
//! `arkiv_backup::restore`).
//!
//! - **Mail** goes back into the folder it was in (found by its path of
//!   display names), or, when that folder is gone, into the same path
//!   below a top-level folder "Restored by Arkiv {date of the job}". The
//!   message is created from its original MIME (same Message-ID, dates,
//!   attachments); its read state is set after. A copy already in the
//!   folder (same `internetMessageId`) is the collision: skip leaves it,
//!   rename writes a second copy, overwrite replaces it. Graph marks
//!   messages created from MIME as drafts; that flag cannot be cleared.
//! - **OneDrive** files go back to their path, created with
//!   `@microsoft.graph.conflictBehavior` = fail (skip), rename or replace:
//!   small files in one PUT, larger ones through an upload session in
//!   chunks of 320 KiB multiples, streamed from the backup. Folders are
//!   created where missing.
//! - **Events** are created again from the event as Graph sent it, without
//!   the read-only fields and without attendees (creating an event with
//!   attendees would send them invitations; they are listed in the body
//!   instead). Each carries a `transactionId` derived from the job and the
//!   version, so a retried create makes no second event.

use std::collections::HashMap;
use std::sync::Arc;

use arkiv_backup::restore::{Collision, Done, Failure, Item, Job, RestoreTarget};
use arkiv_domain::Workload;
use arkiv_vault::keyring::TenantContext;
use arkiv_vault::reader::Reader;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use graph_http::api_impl::RequestHandler;
use graph_rs_sdk::{GraphClient, ODataQuery};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use url::Url;

use crate::graph::{Graph, GraphError};

/// Files up to this size go up in one PUT (Graph allows 4 MB there).
const SIMPLE_UPLOAD_MAX: u64 = 4 * 1024 * 1024;
/// Upload-session chunks: a multiple of 320 KiB, as Graph asks.
const CHUNK: usize = 10 * 320 * 1024;

/// One job's writes to one target account.
pub struct GraphRestore {
    graph: Arc<Graph>,
    reader: Reader,
    /// Mail folder paths (lower case) → folder ids, as found or made.
    mail_folders: Mutex<HashMap<String, String>>,
    /// Drive folder paths (lower case) → item ids.
    drive_folders: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for GraphRestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphRestore").finish_non_exhaustive()
    }
}

/// A Graph error as an item's failure; access refused to the account
/// fails the whole job.
fn failure(e: GraphError) -> Failure {
    let fatal = matches!(e.status(), Some(401 | 403));
    let message = match e.status() {
        Some(403) => format!(
            "Microsoft 365 refused access to the target account ({}): check that Arkiv's app still \
             has its permissions there (an application access policy may exclude the mailbox)",
            e.code()
        ),
        _ => e.to_string(),
    };
    Failure {
        code: e.code(),
        message,
        request_id: e.request_id(),
        fatal,
    }
}

fn malformed(what: &str) -> Failure {
    Failure::item("malformedResponse", format!("Graph's answer had no {what}"))
}

/// A path segment of a drive path, percent-encoded for the URL.
fn encode_path(path: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// An OData string literal.
fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl GraphRestore {
    pub fn new(graph: Arc<Graph>, reader: Reader) -> Self {
        Self {
            graph,
            reader,
            mail_folders: Mutex::default(),
            drive_folders: Mutex::default(),
        }
    }

    async fn content(&self, item: &Item) -> Result<Vec<u8>, Failure> {
        self.reader
            .read_all(item.version.version_id)
            .await
            .map_err(|e| Failure::item("backupUnreadable", e.to_string()))
    }

    // ---- mail ----

    /// The folder's children (or the top-level folders): display name →
    /// id.
    async fn child_folders(
        &self,
        user: &str,
        parent: Option<&str>,
    ) -> Result<Vec<(String, String)>, Failure> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = match (&next, parent) {
                (Some(link), _) => self.graph.json_at(user, link).await,
                (None, None) => {
                    self.graph
                        .json(user, |c| {
                            c.user(user).mail_folders().list_mail_folders().top("250")
                        })
                        .await
                }
                (None, Some(p)) => {
                    self.graph
                        .json(user, |c| {
                            c.user(user)
                                .mail_folder(p)
                                .child_folders()
                                .list_child_folders()
                                .top("250")
                        })
                        .await
                }
            }
            .map_err(failure)?;
            for f in page["value"].as_array().into_iter().flatten() {
                if let (Some(name), Some(id)) = (f["displayName"].as_str(), f["id"].as_str()) {
                    out.push((name.to_owned(), id.to_owned()));
                }
            }
            match page["@odata.nextLink"].as_str() {
                Some(link) => next = Some(link.to_owned()),
                None => return Ok(out),
            }
        }
    }

    async fn find_child(
        &self,
        user: &str,
        parent: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, Failure> {
        Ok(self
            .child_folders(user, parent)
            .await?
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, id)| id))
    }

    /// The child folder `name` of `parent`, made if missing.
    async fn make_child(
        &self,
        user: &str,
        parent: Option<&str>,
        name: &str,
    ) -> Result<String, Failure> {
        if let Some(id) = self.find_child(user, parent, name).await? {
            return Ok(id);
        }
        let body = json!({ "displayName": name });
        let created = match parent {
            None => {
                self.graph
                    .json(user, |c| {
                        c.user(user).mail_folders().create_mail_folders(&body)
                    })
                    .await
            }
            Some(p) => {
                self.graph
                    .json(user, |c| {
                        c.user(user)
                            .mail_folder(p)
                            .child_folders()
                            .create_child_folders(&body)
                    })
                    .await
            }
        };
        match created {
            Ok(v) => v["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| malformed("folder id")),
            // Made meanwhile by someone else.
            Err(e) if e.status() == Some(409) => self
                .find_child(user, parent, name)
                .await?
                .ok_or_else(|| failure(e)),
            Err(e) => Err(failure(e)),
        }
    }

    /// The folder a message of `path` goes into: the path itself if it is
    /// still there, otherwise the path below the job's restore folder.
    async fn mail_folder(&self, job: &Job, path: &str) -> Result<String, Failure> {
        let user = job.target_external_id.as_str();
        let key = path.to_lowercase();
        let mut cache = self.mail_folders.lock().await;
        if let Some(id) = cache.get(&key) {
            return Ok(id.clone());
        }
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut at: Option<String> = None;
        let mut found = true;
        for seg in &segments {
            match self.find_child(user, at.as_deref(), seg).await? {
                Some(id) => at = Some(id),
                None => {
                    found = false;
                    break;
                }
            }
        }
        let id = match (found, at) {
            (true, Some(id)) => id,
            _ => {
                let root = format!("Restored by Arkiv {}", job.created_at.format("%Y-%m-%d"));
                let mut at = self.make_child(user, None, &root).await?;
                for seg in &segments {
                    at = self.make_child(user, Some(&at), seg).await?;
                }
                at
            }
        };
        cache.insert(key, id.clone());
        Ok(id)
    }

    /// Messages of the folder with this Message-ID.
    async fn copies(
        &self,
        user: &str,
        folder: &str,
        message_id: &str,
    ) -> Result<Vec<String>, Failure> {
        let filter = format!("internetMessageId eq {}", odata_string(message_id));
        let page = self
            .graph
            .json(user, |c| {
                c.user(user)
                    .mail_folder(folder)
                    .messages()
                    .list_messages()
                    .filter(&[&filter])
                    .select(&["id"])
            })
            .await
            .map_err(failure)?;
        Ok(page["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect())
    }

    async fn delete_message(&self, user: &str, id: &str) -> Result<(), Failure> {
        match self
            .graph
            .send(user, |c| c.user(user).message(id).delete_messages())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(failure(e)),
        }
    }

    async fn mail(&self, job: &Job, item: &Item) -> Result<Done, Failure> {
        let user = job.target_external_id.as_str();
        let m = &item.version.metadata;
        let path = m.folder_path.as_deref().unwrap_or("Inbox");
        let folder = self.mail_folder(job, path).await?;
        let mime = self.content(item).await?;
        let message_id = mail_parser::MessageParser::default()
            .parse_headers(&mime)
            .and_then(|p| p.message_id().map(|id| format!("<{id}>")));
        let existing = match &message_id {
            Some(id) => self.copies(user, &folder, id).await?,
            None => Vec::new(),
        };
        if let Some(there) = existing.first() {
            if item.maybe_written {
                // An earlier attempt wrote it before it could say so.
                return Ok(Done::Restored(there.clone()));
            }
            if job.request.collision == Collision::Skip {
                return Ok(Done::Skipped(Some(there.clone())));
            }
        }
        let body = Bytes::from(base64::engine::general_purpose::STANDARD.encode(&mime));
        let created = self
            .graph
            .json(user, |c| {
                c.user(user)
                    .mail_folder(&folder)
                    .messages()
                    .create_messages(reqwest::Body::from(body.clone()))
                    .header(CONTENT_TYPE, HeaderValue::from_static("text/plain"))
            })
            .await
            .map_err(failure)?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| malformed("message id"))?
            .to_owned();
        // Graph creates messages read; put back an unread one as unread.
        // If that fails the copy is taken away again: nothing half-done.
        let read = m.read.unwrap_or(true);
        if created["isRead"].as_bool() != Some(read) {
            let patch = json!({ "isRead": read });
            if let Err(e) = self
                .graph
                .send(user, |c| c.user(user).message(&id).update_messages(&patch))
                .await
            {
                let _ = self.delete_message(user, &id).await;
                return Err(failure(e));
            }
        }
        if job.request.collision == Collision::Overwrite {
            for old in &existing {
                self.delete_message(user, old).await?;
            }
        }
        Ok(Done::Restored(id))
    }

    // ---- OneDrive ----

    /// The drive item at `path`, if there is one.
    async fn drive_item(&self, user: &str, path: &str) -> Result<Option<Value>, Failure> {
        let rid = format!(":/{}:", encode_path(path));
        match self
            .graph
            .json(user, |c| {
                c.user(user).drive().item_by_path(&rid).get_items()
            })
            .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(failure(e)),
        }
    }

    /// The folder at `path` ("" for the root), made where missing.
    async fn drive_folder(&self, user: &str, path: &str) -> Result<String, Failure> {
        let mut cache = self.drive_folders.lock().await;
        let mut at = "root".to_owned();
        let mut walked = String::new();
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            walked.push('/');
            walked.push_str(seg);
            let key = walked.to_lowercase();
            if let Some(id) = cache.get(&key) {
                at = id.clone();
                continue;
            }
            let id = match self.drive_item(user, &walked).await? {
                Some(v) => v["id"].as_str().map(str::to_owned),
                None => {
                    let body = json!({
                        "name": seg,
                        "folder": {},
                        "@microsoft.graph.conflictBehavior": "fail",
                    });
                    let parent = at.clone();
                    let made = self
                        .graph
                        .json(user, |c| {
                            c.user(user).drive().item(&parent).create_children(&body)
                        })
                        .await;
                    match made {
                        Ok(v) => v["id"].as_str().map(str::to_owned),
                        Err(e) if e.status() == Some(409) => self
                            .drive_item(user, &walked)
                            .await?
                            .and_then(|v| v["id"].as_str().map(str::to_owned)),
                        Err(e) => return Err(failure(e)),
                    }
                }
            }
            .ok_or_else(|| malformed("folder id"))?;
            cache.insert(key, id.clone());
            at = id;
        }
        Ok(at)
    }

    async fn drive(&self, job: &Job, item: &Item) -> Result<Done, Failure> {
        let user = job.target_external_id.as_str();
        let m = &item.version.metadata;
        let path = m
            .file_path
            .clone()
            .or_else(|| m.file_name.as_ref().map(|n| format!("/{n}")))
            .ok_or_else(|| Failure::item("noPath", "the backup does not say where the file was"))?;
        let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) => (p.to_owned(), n.to_owned()),
            None => (String::new(), path.clone()),
        };
        if m.content_type.as_deref() == Some("application/vnd.arkiv.folder") {
            let existed = self.drive_item(user, &path).await?;
            let id = self.drive_folder(user, &path).await?;
            return Ok(match existed {
                Some(_) => Done::Skipped(Some(id)),
                None => Done::Restored(id),
            });
        }
        let size = item.version.size as u64;
        if let Some(there) = self.drive_item(user, &path).await? {
            let same_size = there["size"].as_u64() == Some(size);
            if item.maybe_written && same_size {
                return Ok(Done::Restored(
                    there["id"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            if job.request.collision == Collision::Skip {
                return Ok(Done::Skipped(there["id"].as_str().map(str::to_owned)));
            }
        }
        let behavior = match job.request.collision {
            Collision::Skip => "fail",
            Collision::Rename => "rename",
            Collision::Overwrite => "replace",
        };
        let parent_id = self.drive_folder(user, &parent).await?;
        let written = if size <= SIMPLE_UPLOAD_MAX {
            let body = Bytes::from(self.content(item).await?);
            self.graph
                .json(user, |c| {
                    let mut request = c
                        .user(user)
                        .drive()
                        .item(&parent_id)
                        .update_items_content(reqwest::Body::from(body.clone()));
                    // `PUT /items/{parent}:/{name}:/content`: the SDK has
                    // no path-below-an-item form, so the URL is set here.
                    let url = request.as_mut().clone();
                    *request.as_mut() = child_content_url(&url, &name, behavior);
                    request
                })
                .await
                .map_err(failure)?
        } else {
            self.upload_session(user, &parent_id, &name, behavior, item)
                .await?
        };
        if written["size"].as_u64() != Some(size) {
            return Err(Failure::item(
                "sizeMismatch",
                format!(
                    "OneDrive holds {} bytes after the upload, the backup {size}",
                    written["size"].as_u64().unwrap_or(0)
                ),
            ));
        }
        written["id"]
            .as_str()
            .map(|id| Done::Restored(id.to_owned()))
            .ok_or_else(|| malformed("item id"))
    }

    /// A large file through an upload session, streamed from the backup.
    async fn upload_session(
        &self,
        user: &str,
        parent: &str,
        name: &str,
        behavior: &str,
        item: &Item,
    ) -> Result<Value, Failure> {
        let body =
            json!({ "item": { "@microsoft.graph.conflictBehavior": behavior, "name": name } });
        let session = self
            .graph
            .json(user, |c| {
                let mut request = c
                    .user(user)
                    .drive()
                    .item(parent)
                    .create_upload_session(&body);
                let url = request.as_mut().clone();
                *request.as_mut() = child_action_url(&url, name, "createUploadSession");
                request
            })
            .await
            .map_err(failure)?;
        let upload_url = session["uploadUrl"]
            .as_str()
            .ok_or_else(|| malformed("uploadUrl"))?
            .to_owned();
        let total = item.version.size as u64;
        let mut stream = self
            .reader
            .stream(item.version.version_id)
            .await
            .map_err(|e| Failure::item("backupUnreadable", e.to_string()))?;
        let mut buffer = BytesMut::new();
        let mut sent: u64 = 0;
        let mut finished = false;
        let mut last = Value::Null;
        while !finished {
            while buffer.len() < CHUNK {
                match stream.next().await {
                    Some(Ok(piece)) => buffer.extend_from_slice(&piece),
                    Some(Err(e)) => return Err(Failure::item("backupUnreadable", e.to_string())),
                    None => {
                        finished = true;
                        break;
                    }
                }
            }
            let take = buffer.len().min(CHUNK);
            if take == 0 {
                break;
            }
            let chunk = buffer.split_to(take).freeze();
            let end = sent + chunk.len() as u64 - 1;
            // The upload URL is pre-authenticated and must not carry our
            // token, so it is not a Graph request for the SDK.
            let response = self
                .graph
                .put_upload_chunk(user, &upload_url, chunk, sent, end, total)
                .await
                .map_err(failure)?;
            sent = end + 1;
            last = response;
            if !buffer.is_empty() {
                finished = false;
            }
        }
        if sent != total {
            return Err(Failure::item(
                "sizeMismatch",
                format!("the backup gave {sent} bytes of {total}"),
            ));
        }
        Ok(last)
    }

    // ---- calendar ----

    async fn calendar(&self, job: &Job, item: &Item) -> Result<Done, Failure> {
        let user = job.target_external_id.as_str();
        let original: Value = serde_json::from_slice(&self.content(item).await?).map_err(|e| {
            Failure::item("backupUnreadable", format!("the event is not JSON: {e}"))
        })?;
        // Still there (the same account, the event not deleted)?
        if job.request.collision == Collision::Skip && !item.maybe_written {
            if let Some(id) = original["id"].as_str() {
                match self
                    .graph
                    .send(user, |c| c.user(user).event(id).get_events())
                    .await
                {
                    Ok(_) => return Ok(Done::Skipped(Some(id.to_owned()))),
                    Err(e) if e.status() == Some(404) => {}
                    Err(e) => return Err(failure(e)),
                }
            }
        }
        let body = event_for_create(
            &original,
            &format!(
                "arkiv-{}-{}",
                job.id.simple(),
                item.version.version_id.simple()
            ),
        );
        let created = self
            .graph
            .json(user, |c| c.user(user).events().create_events(&body))
            .await
            .map_err(failure)?;
        created["id"]
            .as_str()
            .map(|id| Done::Restored(id.to_owned()))
            .ok_or_else(|| malformed("event id"))
    }
}

/// `.../items/{parent}/content` → `.../items/{parent}:/{name}:/content`.
fn child_content_url(url: &Url, name: &str, behavior: &str) -> Url {
    let mut url = child_action_url(url, name, "content");
    url.query_pairs_mut()
        .append_pair("@microsoft.graph.conflictBehavior", behavior);
    url
}

/// `.../items/{parent}/{anything}` → `.../items/{parent}:/{name}:/{action}`.
fn child_action_url(url: &Url, name: &str, action: &str) -> Url {
    let mut url = url.clone();
    let path = url.path().to_owned();
    let base = path.rsplit_once('/').map_or(path.as_str(), |(b, _)| b);
    url.set_path(&format!("{base}:/{}:/{action}", encode_path(name)));
    url
}

/// The event as a create request: what Graph lets a client set, with the
/// attendees moved into the body so that nobody is invited again.
pub fn event_for_create(original: &Value, transaction_id: &str) -> Value {
    const KEEP: [&str; 10] = [
        "subject",
        "start",
        "end",
        "location",
        "isAllDay",
        "showAs",
        "importance",
        "sensitivity",
        "categories",
        "isReminderOn",
    ];
    let mut out = serde_json::Map::new();
    for key in KEEP {
        if let Some(v) = original.get(key).filter(|v| !v.is_null()) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    // A series master keeps its recurrence; an occurrence is restored as
    // the single event it was.
    if original["type"] == "seriesMaster" {
        if let Some(r) = original.get("recurrence").filter(|r| !r.is_null()) {
            out.insert("recurrence".into(), r.clone());
        }
    }
    let attendees: Vec<String> = original["attendees"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let e = &a["emailAddress"];
            let address = e["address"].as_str()?;
            Some(match e["name"].as_str().filter(|n| !n.is_empty()) {
                Some(name) => format!("{name} &lt;{address}&gt;"),
                None => address.to_owned(),
            })
        })
        .collect();
    let mut content = original["body"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !attendees.is_empty() {
        content.push_str(&format!(
            "<p>Restored by Arkiv. Attendees: {}</p>",
            attendees.join(", ")
        ));
    }
    out.insert(
        "body".into(),
        json!({ "contentType": original["body"]["contentType"].as_str().unwrap_or("html"), "content": content }),
    );
    out.insert("transactionId".into(), Value::from(transaction_id));
    Value::Object(out)
}

impl RestoreTarget for GraphRestore {
    async fn preflight(&self, job: &Job) -> Result<(), Failure> {
        let user = job.target_external_id.as_str();
        let probe = |c: &GraphClient| -> RequestHandler {
            match job.request.workload {
                Workload::Mail => c.user(user).mail_folder("inbox").get_mail_folders(),
                Workload::Calendar => c.user(user).default_calendar().get_calendar(),
                Workload::Drive => c.user(user).get_drive(),
            }
        };
        self.graph.send(user, probe).await.map(|_| ()).map_err(|e| {
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
    fn child_urls_address_a_name_below_the_parent() {
        let url = Url::parse("http://sim/v1.0/users/u1/drive/items/P1/content").unwrap();
        assert_eq!(
            child_content_url(&url, "Q3 report#1.xlsx", "rename").as_str(),
            "http://sim/v1.0/users/u1/drive/items/P1:/Q3%20report%231.xlsx:/content?%40microsoft.graph.conflictBehavior=rename"
        );
        let url =
            Url::parse("http://sim/v1.0/users/u1/drive/items/P1/createUploadSession").unwrap();
        assert_eq!(
            child_action_url(&url, "big.bin", "createUploadSession").as_str(),
            "http://sim/v1.0/users/u1/drive/items/P1:/big.bin:/createUploadSession"
        );
    }

    #[test]
    fn a_restored_event_invites_nobody_and_keeps_what_can_be_set() {
        let original = json!({
            "id": "AAMk1", "changeKey": "ck", "type": "occurrence", "seriesMasterId": "M",
            "subject": "Planning", "body": { "contentType": "html", "content": "<p>Agenda</p>" },
            "start": { "dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC" },
            "end": { "dateTime": "2026-11-24T11:00:00.0000000", "timeZone": "UTC" },
            "location": { "displayName": "Room 4" },
            "recurrence": { "pattern": {} },
            "attendees": [{ "emailAddress": { "name": "Bob", "address": "bob@example.com" } }],
            "organizer": { "emailAddress": { "address": "alice@example.com" } },
        });
        let body = event_for_create(&original, "arkiv-t1");
        assert_eq!(body["subject"], "Planning");
        assert_eq!(body["start"], original["start"]);
        assert_eq!(body["transactionId"], "arkiv-t1");
        assert!(body.get("attendees").is_none() && body.get("id").is_none());
        assert!(
            body.get("recurrence").is_none(),
            "an occurrence restores as one event"
        );
        let content = body["body"]["content"].as_str().unwrap();
        assert!(content.starts_with("<p>Agenda</p>") && content.contains("bob@example.com"));
    }

    #[test]
    fn odata_strings_double_their_quotes() {
        assert_eq!(odata_string("<a'b@x>"), "'<a''b@x>'");
    }
}
