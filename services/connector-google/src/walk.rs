//! Walking one account's Google workloads: Gmail (a full listing, then
//! `history.list` from the stored historyId), Drive (My Drive, and shared
//! drives once each, under a custodian account: a full listing, then
//! `changes.list` from the stored page token) and Calendar (every calendar
//! of the user: a full listing, then `events.list` with its sync token).
//!
//! Every page's items are published (content streamed) and confirmed
//! before the page's cursor is stored, so a crash replays at most one
//! page. A cursor Google no longer knows (Gmail 404, Drive 400 on the page
//! token, Calendar 410) starts that scope over: unchanged items make no
//! new version, and once the run is stored a sweep marks deleted what the
//! new listing no longer holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arkiv_backup::record::{RunErrorEntry, RunRecord};
use arkiv_backup::run::PendingSweep;
use arkiv_backup::sink::PageSink;
use arkiv_backup::{cursor, BackupError};
use arkiv_domain::{Provider, Region, Workload};
use arkiv_queue::{ItemKey, Metadata, WorkPublisher};
use arkiv_vault::upload::ItemState;
use base64::Engine;
use chrono::{DateTime, Utc};
use futures::stream::FuturesOrdered;
use futures::{StreamExt, TryStreamExt};
use md5::Digest;
use sea_orm::DatabaseConnection;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio_util::io::StreamReader;
use uuid::Uuid;

use crate::google::{Google, GoogleError, Response};

/// Drive's own kinds: folders, and the Docs editors' files with the
/// Office (or PDF) format each is exported as.
const FOLDER: &str = "application/vnd.google-apps.folder";
/// A folder in the backup, whatever the provider.
pub const FOLDER_MARKER: &str = "application/vnd.arkiv.folder";

pub fn export_format(google_type: &str) -> Option<(&'static str, &'static str)> {
    Some(match google_type {
        "application/vnd.google-apps.document" => (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "docx",
        ),
        "application/vnd.google-apps.spreadsheet" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        "application/vnd.google-apps.presentation" => (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "pptx",
        ),
        "application/vnd.google-apps.drawing" => ("application/pdf", "pdf"),
        _ => return None,
    })
}

/// The fields of a Drive file a backup reads.
const FILE_FIELDS: &str =
    "id,name,mimeType,parents,size,md5Checksum,modifiedTime,version,trashed,driveId";

/// What a run needs to walk its accounts.
#[derive(Clone)]
pub struct RunScope {
    pub db: DatabaseConnection,
    pub google: Arc<Google>,
    pub publisher: Arc<WorkPublisher>,
    pub region: Region,
    pub record: Arc<RunRecord>,
    pub page_size: u32,
    pub fetch_concurrency: usize,
    /// Containers to sweep once the run's items are stored.
    pub sweeps: Arc<Mutex<Vec<PendingSweep>>>,
}

impl std::fmt::Debug for RunScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunScope")
            .field("run", &self.record.run_id)
            .finish_non_exhaustive()
    }
}

/// A protected account: Arkiv's id and the user's address (Google acts
/// as a user by address).
#[derive(Clone, Debug)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Google(#[from] GoogleError),
    /// Our side failed (database, RabbitMQ): the run cannot go on.
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// A shared drive, walked once under its custodian.
#[derive(Clone, Debug)]
pub struct SharedDrive {
    pub id: String,
    pub name: String,
}

/// Which Drive a walk follows.
#[derive(Clone, Debug)]
enum DriveScope {
    Mine,
    Shared(SharedDrive),
}

impl DriveScope {
    fn cursor(&self) -> String {
        match self {
            DriveScope::Mine => "mydrive".into(),
            DriveScope::Shared(d) => format!("shared:{}", d.id),
        }
    }

    fn container(&self) -> String {
        match self {
            DriveScope::Mine => "mydrive".into(),
            DriveScope::Shared(d) => d.id.clone(),
        }
    }

    /// The query parameters that aim a listing at this drive.
    fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            DriveScope::Mine => vec![("supportsAllDrives", "true".into())],
            DriveScope::Shared(d) => vec![
                ("supportsAllDrives", "true".into()),
                ("includeItemsFromAllDrives", "true".into()),
                ("corpora", "drive".into()),
                ("driveId", d.id.clone()),
            ],
        }
    }
}

/// A stored cursor: a listing in progress (from the checkpoint it started
/// at, at a page) or a change feed position.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Position {
    /// A full listing; `at` is where changes are followed from after it.
    Listing {
        at: String,
        page: Option<String>,
    },
    Changes(String),
}

impl Position {
    fn parse(s: &str) -> Option<Self> {
        if let Some(rest) = s.strip_prefix("full:") {
            let (at, page) = rest.split_once(':')?;
            return Some(Position::Listing {
                at: at.to_owned(),
                page: (!page.is_empty()).then(|| page.to_owned()),
            });
        }
        s.strip_prefix("at:")
            .map(|p| Position::Changes(p.to_owned()))
    }

    fn encode(&self) -> String {
        match self {
            Position::Listing { at, page } => {
                format!("full:{at}:{}", page.as_deref().unwrap_or(""))
            }
            Position::Changes(p) => format!("at:{p}"),
        }
    }
}

/// Base64url as Gmail sends it: padded or not.
fn base64url() -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    )
}

fn date(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// What one entry of a page turned into.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Upsert(ItemState, Body),
    Deleted(ItemKey, Option<String>),
    Skip,
    Failed(RunErrorEntry),
}

enum Body {
    Bytes(Vec<u8>),
    /// A download, and the MD5 Drive says it has.
    Stream(Response, Option<String>),
}

impl RunScope {
    fn key(&self, account: &Account, workload: Workload, source_id: &str) -> ItemKey {
        ItemKey {
            tenant_id: self.record.tenant_id,
            connection_id: self.record.connection_id,
            account_id: account.id,
            provider: Provider::Google,
            workload,
            source_id: source_id.to_owned(),
        }
    }

    fn state(
        &self,
        item: ItemKey,
        change_marker: Option<&str>,
        metadata: Metadata,
        container: Option<String>,
    ) -> ItemState {
        ItemState {
            item,
            change_marker: change_marker.map(str::to_owned),
            metadata,
            origin: arkiv_queue::Origin {
                run_id: Some(self.record.run_id),
                container,
            },
        }
    }

    fn sink(&self) -> PageSink {
        PageSink::new(
            self.publisher.clone(),
            self.region.clone(),
            self.record.clone(),
        )
    }

    fn failed(
        &self,
        account: &Account,
        workload: Workload,
        item: Option<&str>,
        e: &GoogleError,
    ) -> Prepared {
        Prepared::Failed(RunErrorEntry {
            account_id: Some(account.id),
            workload: Some(workload),
            item_ref: item.map(str::to_owned),
            code: e.reason(),
            request_id: None,
            message: e.to_string(),
        })
    }

    fn sweep_later(&self, account: &Account, workload: Workload, container: Option<String>) {
        self.sweeps.lock().expect("sweeps lock").push(PendingSweep {
            account: account.id,
            workload,
            container,
            resynced: true,
            clear_cursor: None,
        });
    }

    /// Publish a page's prepared items in order, at most
    /// `fetch_concurrency` being fetched at once, then wait for confirms.
    async fn publish<'a, F>(&self, entries: impl Iterator<Item = F>) -> Result<(), WalkError>
    where
        F: std::future::Future<Output = Prepared> + 'a,
    {
        let mut sink = self.sink();
        let mut entries = entries;
        let mut prepared = FuturesOrdered::new();
        loop {
            while prepared.len() < self.fetch_concurrency.max(1) {
                match entries.next() {
                    Some(f) => prepared.push_back(f),
                    None => break,
                }
            }
            let Some(item) = prepared.next().await else {
                break;
            };
            match item {
                Prepared::Upsert(state, Body::Bytes(bytes)) => {
                    sink.upsert_download(state, bytes.as_slice()).await?
                }
                // A download that breaks off or does not match its MD5 fails
                // that item; the page goes on.
                Prepared::Upsert(state, Body::Stream(response, md5)) => {
                    let stream = Md5Checked::new(
                        response.bytes_stream().map_err(std::io::Error::other),
                        md5,
                    );
                    sink.upsert_download(state, StreamReader::new(stream))
                        .await?
                }
                Prepared::Deleted(key, container) => {
                    let origin = sink.origin(container);
                    sink.deleted(key, None, Utc::now(), origin).await?;
                }
                Prepared::Skip => {}
                Prepared::Failed(entry) => self.record.error(entry).await?,
            }
        }
        drop(prepared);
        sink.commit().await?;
        Ok(())
    }

    // ---- Gmail ----

    /// Gmail: from the stored position, or a full listing.
    pub async fn gmail(&self, account: &Account) -> Result<(), WalkError> {
        let labels = self.labels(account).await?;
        let stored = cursor::get(&self.db, account.id, Workload::Mail, "").await?;
        match stored.as_deref().and_then(Position::parse) {
            Some(Position::Changes(history)) => {
                match self.gmail_history(account, &labels, &history).await {
                    Err(WalkError::Google(e)) if e.is_expired_cursor() => {
                        tracing::info!(account = %account.id, "Gmail history id expired; listing again");
                        cursor::clear(&self.db, account.id, Workload::Mail, "").await?;
                        self.gmail_listing(account, &labels, None).await?;
                        self.sweep_later(account, Workload::Mail, None);
                        Ok(())
                    }
                    other => other,
                }
            }
            Some(listing @ Position::Listing { .. }) => {
                self.gmail_listing(account, &labels, Some(listing)).await
            }
            None => self.gmail_listing(account, &labels, None).await,
        }
    }

    /// Label ids → names (ids differ between mailboxes; names do not).
    async fn labels(&self, account: &Account) -> Result<HashMap<String, String>, WalkError> {
        let user = account.email.as_str();
        let body = self
            .google
            .get_json(user, "gmail/v1/users/me/labels", &[])
            .await?;
        Ok(body["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| Some((l["id"].as_str()?.to_owned(), l["name"].as_str()?.to_owned())))
            .collect())
    }

    /// Every message, a page at a time; then the history id taken before
    /// the listing began becomes the cursor.
    async fn gmail_listing(
        &self,
        account: &Account,
        labels: &HashMap<String, String>,
        resume: Option<Position>,
    ) -> Result<(), WalkError> {
        let user = account.email.as_str();
        let (at, mut page) = match resume {
            Some(Position::Listing { at, page }) => (at, page),
            _ => {
                let profile = self
                    .google
                    .get_json(user, "gmail/v1/users/me/profile", &[])
                    .await?;
                let at = match &profile["historyId"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (at, None)
            }
        };
        let size = self.page_size.clamp(1, 500).to_string();
        loop {
            let mut query = vec![("maxResults", size.as_str()), ("includeSpamTrash", "true")];
            if let Some(p) = &page {
                query.push(("pageToken", p.as_str()));
            }
            let body = self
                .google
                .get_json(user, "gmail/v1/users/me/messages", &query)
                .await?;
            let ids: Vec<String> = body["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect();
            self.publish(ids.iter().map(|id| self.gmail_message(account, labels, id)))
                .await?;
            page = body["nextPageToken"].as_str().map(str::to_owned);
            let position = match &page {
                Some(_) => Position::Listing {
                    at: at.clone(),
                    page: page.clone(),
                },
                None => Position::Changes(at.clone()),
            };
            cursor::set(&self.db, account.id, Workload::Mail, "", &position.encode()).await?;
            if page.is_none() {
                return Ok(());
            }
        }
    }

    /// The changes since `start`: added and relabelled messages are
    /// fetched again, deleted ones marked.
    async fn gmail_history(
        &self,
        account: &Account,
        labels: &HashMap<String, String>,
        start: &str,
    ) -> Result<(), WalkError> {
        let user = account.email.as_str();
        let size = self.page_size.clamp(1, 500).to_string();
        let mut page: Option<String> = None;
        loop {
            let mut query = vec![("startHistoryId", start), ("maxResults", size.as_str())];
            if let Some(p) = &page {
                query.push(("pageToken", p.as_str()));
            }
            let body = self
                .google
                .get_json(user, "gmail/v1/users/me/history", &query)
                .await?;
            // The last change of each message in the page wins.
            let mut order: Vec<String> = Vec::new();
            let mut last: HashMap<String, bool> = HashMap::new();
            let mut last_record = None;
            for record in body["history"].as_array().into_iter().flatten() {
                last_record = record["id"].as_str().map(str::to_owned);
                let mut note = |list: &str, deleted: bool| {
                    for m in record[list].as_array().into_iter().flatten() {
                        if let Some(id) = m["message"]["id"].as_str() {
                            if !last.contains_key(id) {
                                order.push(id.to_owned());
                            }
                            last.insert(id.to_owned(), deleted);
                        }
                    }
                };
                note("messagesAdded", false);
                note("labelsAdded", false);
                note("labelsRemoved", false);
                note("messagesDeleted", true);
            }
            self.publish(order.iter().map(|id| {
                let deleted = last[id];
                async move {
                    if deleted {
                        Prepared::Deleted(self.key(account, Workload::Mail, id), None)
                    } else {
                        self.gmail_message(account, labels, id).await
                    }
                }
            }))
            .await?;
            page = body["nextPageToken"].as_str().map(str::to_owned);
            let next = match (&page, last_record) {
                (Some(_), Some(record)) => record,
                _ => match &body["historyId"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            };
            cursor::set(
                &self.db,
                account.id,
                Workload::Mail,
                "",
                &Position::Changes(next).encode(),
            )
            .await?;
            if page.is_none() {
                return Ok(());
            }
        }
    }

    /// One message as raw RFC 822, with its labels.
    async fn gmail_message(
        &self,
        account: &Account,
        labels: &HashMap<String, String>,
        id: &str,
    ) -> Prepared {
        let user = account.email.as_str();
        let path = format!("gmail/v1/users/me/messages/{id}");
        let body = match self
            .google
            .get_json(user, &path, &[("format", "raw")])
            .await
        {
            Ok(b) => b,
            // Gone since it was listed: the history says so.
            Err(e) if e.status() == Some(404) => return Prepared::Skip,
            Err(e) => return self.failed(account, Workload::Mail, Some(id), &e),
        };
        let Some(raw) = body["raw"]
            .as_str()
            .and_then(|r| base64url().decode(r.trim()).ok())
        else {
            return Prepared::Failed(RunErrorEntry {
                account_id: Some(account.id),
                workload: Some(Workload::Mail),
                item_ref: Some(id.to_owned()),
                code: "malformedResponse".into(),
                request_id: None,
                message: "a message without readable raw content".into(),
            });
        };
        let label_ids: Vec<&str> = body["labelIds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let headers = mail_parser::MessageParser::default().parse_headers(&raw);
        let address = |a: Option<&mail_parser::Address>| {
            a.and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_lowercase)
        };
        let internal = body["internalDate"]
            .as_str()
            .and_then(|ms| ms.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_millis);
        let metadata = Metadata {
            subject: headers
                .as_ref()
                .and_then(|h| h.subject())
                .map(str::to_owned),
            from: headers.as_ref().and_then(|h| address(h.from())),
            to: headers
                .as_ref()
                .and_then(|h| h.to())
                .map(|to| {
                    to.iter()
                        .filter_map(|a| a.address().map(str::to_lowercase))
                        .collect()
                })
                .unwrap_or_default(),
            date: internal,
            labels: label_ids
                .iter()
                .map(|l| labels.get(*l).cloned().unwrap_or_else(|| (*l).to_owned()))
                .collect(),
            read: Some(!label_ids.contains(&"UNREAD")),
            content_type: Some("message/rfc822".into()),
            thread_id: body["threadId"].as_str().map(str::to_owned),
            ..Metadata::default()
        };
        let marker = body["historyId"].as_str().map(str::to_owned);
        let state = self.state(
            self.key(account, Workload::Mail, id),
            marker.as_deref(),
            metadata,
            None,
        );
        Prepared::Upsert(state, Body::Bytes(raw))
    }

    // ---- Drive ----

    /// My Drive.
    pub async fn drive(&self, account: &Account) -> Result<(), WalkError> {
        self.drive_scope(account, DriveScope::Mine).await
    }

    /// A shared drive, under the account chosen as its custodian.
    pub async fn shared_drive(
        &self,
        custodian: &Account,
        drive: SharedDrive,
    ) -> Result<(), WalkError> {
        self.drive_scope(custodian, DriveScope::Shared(drive)).await
    }

    async fn drive_scope(&self, account: &Account, scope: DriveScope) -> Result<(), WalkError> {
        let stored = cursor::get(&self.db, account.id, Workload::Drive, &scope.cursor()).await?;
        let mut folders = Folders::default();
        match stored.as_deref().and_then(Position::parse) {
            Some(Position::Changes(token)) => {
                match self
                    .drive_changes(account, &scope, &token, &mut folders)
                    .await
                {
                    Err(WalkError::Google(e)) if e.is_expired_cursor() => {
                        tracing::info!(account = %account.id, "Drive page token expired; listing again");
                        cursor::clear(&self.db, account.id, Workload::Drive, &scope.cursor())
                            .await?;
                        self.drive_listing(account, &scope, None, &mut folders)
                            .await?;
                        self.sweep_later(account, Workload::Drive, Some(scope.container()));
                        Ok(())
                    }
                    other => other,
                }
            }
            Some(listing @ Position::Listing { .. }) => {
                self.drive_listing(account, &scope, Some(listing), &mut folders)
                    .await
            }
            None => {
                self.drive_listing(account, &scope, None, &mut folders)
                    .await
            }
        }
    }

    async fn drive_listing(
        &self,
        account: &Account,
        scope: &DriveScope,
        resume: Option<Position>,
        folders: &mut Folders,
    ) -> Result<(), WalkError> {
        let user = account.email.as_str();
        let params = scope.params();
        let pairs = |extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
            params
                .iter()
                .cloned()
                .chain(extra.iter().cloned())
                .collect()
        };
        let (at, mut page) = match resume {
            Some(Position::Listing { at, page }) => (at, page),
            _ => {
                let q: Vec<(&str, String)> = match scope {
                    DriveScope::Mine => pairs(&[]),
                    DriveScope::Shared(d) => vec![
                        ("supportsAllDrives", "true".into()),
                        ("driveId", d.id.clone()),
                    ],
                };
                let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let token = self
                    .google
                    .get_json(user, "drive/v3/changes/startPageToken", &q)
                    .await?;
                let at = token["startPageToken"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (at, None)
            }
        };
        let size = self.page_size.clamp(1, 1000).to_string();
        loop {
            let mut q = pairs(&[
                ("pageSize", size.clone()),
                ("q", "trashed = false".into()),
                ("fields", format!("nextPageToken,files({FILE_FIELDS})")),
            ]);
            if let Some(p) = &page {
                q.push(("pageToken", p.clone()));
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body = self.google.get_json(user, "drive/v3/files", &q).await?;
            let files: Vec<Value> = body["files"].as_array().cloned().unwrap_or_default();
            self.drive_page(account, scope, &files, folders).await?;
            page = body["nextPageToken"].as_str().map(str::to_owned);
            let position = match &page {
                Some(_) => Position::Listing {
                    at: at.clone(),
                    page: page.clone(),
                },
                None => Position::Changes(at.clone()),
            };
            cursor::set(
                &self.db,
                account.id,
                Workload::Drive,
                &scope.cursor(),
                &position.encode(),
            )
            .await?;
            if page.is_none() {
                return Ok(());
            }
        }
    }

    async fn drive_changes(
        &self,
        account: &Account,
        scope: &DriveScope,
        start: &str,
        folders: &mut Folders,
    ) -> Result<(), WalkError> {
        let user = account.email.as_str();
        let size = self.page_size.clamp(1, 1000).to_string();
        let mut token = start.to_owned();
        loop {
            let mut q = scope.params();
            q.retain(|(k, _)| *k != "corpora");
            q.extend([
                ("pageToken", token.clone()),
                ("pageSize", size.clone()),
                ("includeRemoved", "true".into()),
                (
                    "fields",
                    format!("nextPageToken,newStartPageToken,changes(fileId,removed,file({FILE_FIELDS}))"),
                ),
            ]);
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body = self.google.get_json(user, "drive/v3/changes", &q).await?;
            let mut files = Vec::new();
            let mut gone = Vec::new();
            for change in body["changes"].as_array().into_iter().flatten() {
                let Some(id) = change["fileId"].as_str() else {
                    continue;
                };
                let removed = change["removed"].as_bool().unwrap_or(false)
                    || change["file"]["trashed"].as_bool().unwrap_or(false);
                if removed {
                    gone.push(id.to_owned());
                } else {
                    files.push(change["file"].clone());
                }
            }
            for id in &gone {
                folders.forget(id);
            }
            let deleted = gone.iter().map(|id| {
                let key = self.key(account, Workload::Drive, id);
                let container = Some(scope.container());
                async move { Prepared::Deleted(key, container) }
            });
            self.publish(deleted).await?;
            self.drive_page(account, scope, &files, folders).await?;
            let (next, done) = match (
                body["nextPageToken"].as_str(),
                body["newStartPageToken"].as_str(),
            ) {
                (Some(next), _) => (next.to_owned(), false),
                (None, Some(fresh)) => (fresh.to_owned(), true),
                (None, None) => {
                    return Err(GoogleError::Status {
                        status: 200,
                        reason: "malformedResponse".into(),
                        message: "a changes page with neither a next nor a new start token".into(),
                        location: None,
                    }
                    .into())
                }
            };
            cursor::set(
                &self.db,
                account.id,
                Workload::Drive,
                &scope.cursor(),
                &Position::Changes(next.clone()).encode(),
            )
            .await?;
            if done {
                return Ok(());
            }
            token = next;
        }
    }

    /// One page of Drive files: folders first (their names make paths).
    async fn drive_page(
        &self,
        account: &Account,
        scope: &DriveScope,
        files: &[Value],
        folders: &mut Folders,
    ) -> Result<(), WalkError> {
        for f in files {
            if f["mimeType"] == FOLDER {
                if let Some(id) = f["id"].as_str() {
                    folders.learn(id, f);
                }
            }
        }
        let mut prepared = Vec::with_capacity(files.len());
        for f in files {
            let path = self.drive_path(account, scope, f, folders).await;
            prepared.push((f, path));
        }
        self.publish(
            prepared
                .into_iter()
                .map(|(f, path)| self.drive_file(account, scope, f, path)),
        )
        .await
    }

    /// The file's path: its folders' names from the drive's root.
    async fn drive_path(
        &self,
        account: &Account,
        scope: &DriveScope,
        file: &Value,
        folders: &mut Folders,
    ) -> String {
        let user = account.email.as_str();
        let root = match scope {
            DriveScope::Mine => folders.my_root(self, user).await,
            DriveScope::Shared(d) => Some(d.id.clone()),
        };
        let prefix = match scope {
            DriveScope::Mine => String::new(),
            DriveScope::Shared(d) => format!("/{}", d.name),
        };
        let mut names = Vec::new();
        let mut at = file["parents"][0].as_str().map(str::to_owned);
        for _ in 0..64 {
            let Some(id) = at.clone() else { break };
            if Some(&id) == root.as_ref() {
                break;
            }
            match folders.get(self, user, &id).await {
                Some((name, parent)) => {
                    names.push(name);
                    at = parent;
                }
                None => break,
            }
        }
        names.reverse();
        let name = file["name"].as_str().unwrap_or_default();
        let mut path = prefix;
        for n in names {
            path.push('/');
            path.push_str(&n);
        }
        path.push('/');
        path.push_str(name);
        path
    }

    async fn drive_file(
        &self,
        account: &Account,
        scope: &DriveScope,
        file: &Value,
        path: String,
    ) -> Prepared {
        let user = account.email.as_str();
        let Some(id) = file["id"].as_str() else {
            return Prepared::Skip;
        };
        let mime = file["mimeType"].as_str().unwrap_or_default();
        let key = self.key(account, Workload::Drive, id);
        let container = Some(scope.container());
        let name = file["name"].as_str().unwrap_or_default().to_owned();
        let metadata = Metadata {
            file_name: Some(name),
            file_path: Some(path),
            date: date(&file["modifiedTime"]),
            content_type: Some(if mime == FOLDER {
                FOLDER_MARKER.to_owned()
            } else {
                mime.to_owned()
            }),
            container_id: match scope {
                DriveScope::Mine => None,
                DriveScope::Shared(d) => Some(d.id.clone()),
            },
            ..Metadata::default()
        };
        let marker = file["version"].as_str().or(file["md5Checksum"].as_str());
        let state = self.state(key, marker, metadata, container);
        if mime == FOLDER {
            return Prepared::Upsert(state, Body::Bytes(Vec::new()));
        }
        if mime.starts_with("application/vnd.google-apps.") {
            let Some((format, _)) = export_format(mime) else {
                // Forms, sites, shortcuts, maps: nothing Drive can export.
                return Prepared::Skip;
            };
            let path = format!("drive/v3/files/{id}/export");
            let url = self.google.url(&path);
            let response = self
                .google
                .send(user, |http, token| {
                    http.get(url.clone())
                        .query(&[("mimeType", format)])
                        .bearer_auth(token)
                })
                .await;
            return match response {
                Ok(r) => Prepared::Upsert(state, Body::Stream(r, None)),
                Err(e) if e.reason() == "exportSizeLimitExceeded" => {
                    Prepared::Failed(RunErrorEntry {
                        account_id: Some(account.id),
                        workload: Some(Workload::Drive),
                        item_ref: Some(id.to_owned()),
                        code: "exportSizeLimitExceeded".into(),
                        request_id: None,
                        message: "Google Drive will not export this Docs file: it is over the \
                                  10 MB export limit. It is not in the backup; split it, or keep \
                                  a copy in an Office format in Drive"
                            .into(),
                    })
                }
                Err(e) if e.status() == Some(404) => Prepared::Skip,
                Err(e) => self.failed(account, Workload::Drive, Some(id), &e),
            };
        }
        let path = format!("drive/v3/files/{id}");
        let url = self.google.url(&path);
        let response = self
            .google
            .send(user, |http, token| {
                http.get(url.clone())
                    .query(&[("alt", "media"), ("supportsAllDrives", "true")])
                    .bearer_auth(token)
            })
            .await;
        match response {
            Ok(r) => Prepared::Upsert(
                state,
                Body::Stream(r, file["md5Checksum"].as_str().map(str::to_owned)),
            ),
            Err(e) if e.status() == Some(404) => Prepared::Skip,
            Err(e) => self.failed(account, Workload::Drive, Some(id), &e),
        }
    }

    // ---- Calendar ----

    /// Every calendar of the user.
    pub async fn calendar(&self, account: &Account) -> Result<(), WalkError> {
        let user = account.email.as_str();
        let list = self
            .google
            .get_json(user, "calendar/v3/users/me/calendarList", &[])
            .await?;
        for cal in list["items"].as_array().into_iter().flatten() {
            let Some(id) = cal["id"].as_str() else {
                continue;
            };
            self.calendar_scope(account, id).await?;
        }
        Ok(())
    }

    async fn calendar_scope(&self, account: &Account, calendar: &str) -> Result<(), WalkError> {
        let stored = cursor::get(&self.db, account.id, Workload::Calendar, calendar).await?;
        let result = self
            .calendar_events(
                account,
                calendar,
                stored.as_deref().and_then(Position::parse),
            )
            .await;
        match result {
            Err(WalkError::Google(e)) if e.is_expired_cursor() => {
                tracing::info!(account = %account.id, "calendar sync token expired; listing again");
                cursor::clear(&self.db, account.id, Workload::Calendar, calendar).await?;
                self.calendar_events(account, calendar, None).await?;
                self.sweep_later(account, Workload::Calendar, Some(calendar.to_owned()));
                Ok(())
            }
            other => other,
        }
    }

    /// `events.list`: in full (a page token kept as `Listing`), or from a
    /// sync token (`Changes`); deleted and cancelled events included.
    async fn calendar_events(
        &self,
        account: &Account,
        calendar: &str,
        from: Option<Position>,
    ) -> Result<(), WalkError> {
        let user = account.email.as_str();
        let path = format!("calendar/v3/calendars/{}/events", encode(calendar));
        let size = self.page_size.clamp(1, 2500).to_string();
        let (sync, mut page) = match from {
            Some(Position::Changes(token)) => (Some(token), None),
            Some(Position::Listing { page, .. }) => (None, page),
            None => (None, None),
        };
        loop {
            let mut q = vec![("showDeleted", "true"), ("maxResults", size.as_str())];
            if let Some(p) = &page {
                q.push(("pageToken", p.as_str()));
            } else if let Some(s) = &sync {
                q.push(("syncToken", s.as_str()));
            }
            let url = self.google.url(&path);
            let response = self
                .google
                .send(user, |http, token| {
                    http.get(url.clone()).query(&q).bearer_auth(token)
                })
                .await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|e| GoogleError::Transport(e.to_string()))?;
            let page_body: EventsPage =
                serde_json::from_slice(&bytes).map_err(|e| GoogleError::Status {
                    status: 200,
                    reason: "malformedResponse".into(),
                    message: format!("an events page that is not a page: {e}"),
                    location: None,
                })?;
            self.publish(
                page_body
                    .items
                    .iter()
                    .map(|raw| self.calendar_event(account, calendar, raw)),
            )
            .await?;
            let position = match (&page_body.next_page_token, &page_body.next_sync_token) {
                (Some(next), _) => {
                    page = Some(next.clone());
                    Position::Listing {
                        at: String::new(),
                        page: page.clone(),
                    }
                }
                (None, Some(s)) => Position::Changes(s.clone()),
                (None, None) => {
                    return Err(GoogleError::Status {
                        status: 200,
                        reason: "malformedResponse".into(),
                        message: "an events page with neither a next page nor a sync token".into(),
                        location: None,
                    }
                    .into())
                }
            };
            // A sync round's later pages are followed by page token alone;
            // only its last page's sync token is a place to resume from.
            if sync.is_none() || matches!(position, Position::Changes(_)) {
                cursor::set(
                    &self.db,
                    account.id,
                    Workload::Calendar,
                    calendar,
                    &position.encode(),
                )
                .await?;
            }
            if matches!(position, Position::Changes(_)) {
                return Ok(());
            }
        }
    }

    async fn calendar_event(&self, account: &Account, calendar: &str, raw: &RawValue) -> Prepared {
        let v: Value = match serde_json::from_str(raw.get()) {
            Ok(v) => v,
            Err(e) => {
                return Prepared::Failed(RunErrorEntry {
                    account_id: Some(account.id),
                    workload: Some(Workload::Calendar),
                    code: "malformedItem".into(),
                    message: format!("an event of the page is not JSON: {e}"),
                    ..RunErrorEntry::default()
                })
            }
        };
        let Some(id) = v["id"].as_str() else {
            return Prepared::Skip;
        };
        let key = self.key(account, Workload::Calendar, id);
        let cancelled = v["status"] == "cancelled";
        // A cancelled event is gone; a cancelled instance of a series is an
        // exception of it, kept as it is.
        if cancelled && v.get("recurringEventId").is_none() {
            return Prepared::Deleted(key, Some(calendar.to_owned()));
        }
        let start = &v["start"];
        let metadata = Metadata {
            event_title: v["summary"].as_str().map(str::to_owned),
            subject: v["summary"].as_str().map(str::to_owned),
            from: v["organizer"]["email"].as_str().map(str::to_lowercase),
            to: v["attendees"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["email"].as_str().map(str::to_lowercase))
                .collect(),
            date: date(&start["dateTime"]).or_else(|| {
                start["date"]
                    .as_str()
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
            }),
            content_type: Some("application/json".into()),
            container_id: Some(calendar.to_owned()),
            ..Metadata::default()
        };
        let marker = v["etag"].as_str().or(v["updated"].as_str());
        let state = self.state(key, marker, metadata, Some(calendar.to_owned()));
        // The event exactly as Google sent it.
        Prepared::Upsert(state, Body::Bytes(raw.get().as_bytes().to_vec()))
    }
}

/// A calendar id in a path (it holds `@` and may hold `#`).
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsPage {
    #[serde(default)]
    items: Vec<Box<RawValue>>,
    next_page_token: Option<String>,
    next_sync_token: Option<String>,
}

/// Drive folders met in a walk, for paths: id → (name, parent).
#[derive(Default)]
struct Folders {
    known: HashMap<String, (String, Option<String>)>,
    my_root: Option<Option<String>>,
}

impl Folders {
    fn learn(&mut self, id: &str, f: &Value) {
        self.known.insert(
            id.to_owned(),
            (
                f["name"].as_str().unwrap_or_default().to_owned(),
                f["parents"][0].as_str().map(str::to_owned),
            ),
        );
    }

    fn forget(&mut self, id: &str) {
        self.known.remove(id);
    }

    /// A folder's name and parent, from the walk or from Drive.
    async fn get(
        &mut self,
        scope: &RunScope,
        user: &str,
        id: &str,
    ) -> Option<(String, Option<String>)> {
        if let Some(f) = self.known.get(id) {
            return Some(f.clone());
        }
        let f = scope
            .google
            .get_json(
                user,
                &format!("drive/v3/files/{id}"),
                &[("supportsAllDrives", "true"), ("fields", "id,name,parents")],
            )
            .await
            .ok()?;
        self.learn(id, &f);
        self.known.get(id).cloned()
    }

    /// The id of the user's My Drive root.
    async fn my_root(&mut self, scope: &RunScope, user: &str) -> Option<String> {
        if let Some(root) = &self.my_root {
            return root.clone();
        }
        let root = scope
            .google
            .get_json(user, "drive/v3/files/root", &[("fields", "id")])
            .await
            .ok()
            .and_then(|r| r["id"].as_str().map(str::to_owned));
        self.my_root = Some(root.clone());
        root
    }
}

/// A download checked against the MD5 Drive gave for the file: the
/// stream fails at its end if the bytes differ, so the item is recorded
/// as failed rather than stored wrong.
struct Md5Checked<S> {
    inner: S,
    want: Option<String>,
    hasher: md5::Md5,
}

impl<S> Md5Checked<S> {
    fn new(inner: S, want: Option<String>) -> Self {
        Self {
            inner,
            want,
            hasher: md5::Md5::new(),
        }
    }
}

impl<S> futures::Stream for Md5Checked<S>
where
    S: futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(piece))) => {
                self.hasher.update(&piece);
                Poll::Ready(Some(Ok(piece)))
            }
            Poll::Ready(None) => match self.want.take() {
                Some(want) => {
                    let got = hex::encode(std::mem::take(&mut self.hasher).finalize());
                    if got.eq_ignore_ascii_case(&want) {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Err(std::io::Error::other(format!(
                            "the download's MD5 is {got}, Drive says {want}"
                        )))))
                    }
                }
                None => Poll::Ready(None),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        for p in [
            Position::Listing {
                at: "123".into(),
                page: None,
            },
            Position::Listing {
                at: "123".into(),
                page: Some("abc:def".into()),
            },
            Position::Changes("9".into()),
        ] {
            assert_eq!(Position::parse(&p.encode()), Some(p));
        }
        assert_eq!(Position::parse("garbage"), None);
    }

    #[tokio::test]
    async fn a_download_that_does_not_match_its_md5_fails_at_its_end() {
        let body = || {
            futures::stream::iter(vec![
                Ok(bytes::Bytes::from_static(b"hello ")),
                Ok(bytes::Bytes::from_static(b"world")),
            ])
        };
        let right = hex::encode(md5::Md5::digest(b"hello world"));
        let ok: Vec<_> = Md5Checked::new(body(), Some(right)).collect().await;
        assert!(ok.iter().all(Result::is_ok));
        let bad: Vec<_> = Md5Checked::new(body(), Some("00".repeat(16)))
            .collect()
            .await;
        assert!(bad.last().unwrap().is_err());
    }
}
