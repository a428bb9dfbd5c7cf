//! Walking one account's workloads: the mail folder tree and each folder's
//! messages delta, the calendar's `calendarView/delta`, and the OneDrive
//! root delta. Every page's items are published (content streamed) and
//! confirmed before the page's link is stored as the cursor, so a crash
//! replays at most one page; an expired delta token (410) starts that
//! scope over, and the worker recognises what it already has.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arkiv_backup::record::RunErrorEntry;
use arkiv_backup::run::PendingSweep;
use arkiv_backup::sink::PageSink;
use arkiv_backup::{cursor, BackupError};
use arkiv_domain::{Provider, Region, Workload};
use arkiv_queue::{ItemKey, Metadata, WorkPublisher};
use arkiv_vault::upload::ItemState;
use chrono::{DateTime, Duration as Days, Utc};
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::{StreamExt, TryStreamExt};
use graph_http::api_impl::RequestHandler;
use graph_rs_sdk::header::{HeaderMap, HeaderValue};
use graph_rs_sdk::{GraphClient, ODataQuery};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio_util::io::StreamReader;
use uuid::Uuid;

use crate::graph::{request_id, Graph, GraphError};

/// What a run needs to walk its accounts.
#[derive(Clone)]
pub struct RunScope {
    pub db: DatabaseConnection,
    pub graph: Arc<Graph>,
    pub publisher: Arc<WorkPublisher>,
    pub region: Region,
    pub record: Arc<arkiv_backup::record::RunRecord>,
    pub page_size: u32,
    pub fetch_concurrency: usize,
    pub calendar_past_days: u32,
    pub calendar_future_days: u32,
    /// Containers to sweep once the run's items are stored.
    pub sweeps: Arc<Mutex<Vec<PendingSweep>>>,
}

impl std::fmt::Debug for RunScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunScope")
            .field("run", &self.record.run_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// A protected account: Arkiv's id and the directory's.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: Uuid,
    pub external_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Our side failed (database, RabbitMQ): the run cannot go on.
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// Which delta a walk follows.
#[derive(Clone, Debug)]
enum Scope {
    MailFolder { id: String, path: String },
    Calendar,
    Drive,
}

impl Scope {
    fn workload(&self) -> Workload {
        match self {
            Scope::MailFolder { .. } => Workload::Mail,
            Scope::Calendar => Workload::Calendar,
            Scope::Drive => Workload::Drive,
        }
    }

    fn cursor_scope(&self) -> &str {
        match self {
            Scope::MailFolder { id, .. } => id,
            _ => "",
        }
    }
}

/// One delta page.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Box<RawValue>>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta: Option<String>,
}

/// What an item of a page turned into (a handful at a time: the size of
/// the upsert variant costs nothing worth a box).
#[allow(clippy::large_enum_variant)]
enum Prepared {
    Upsert(ItemState, Body),
    Deleted(ItemKey, Option<String>, Option<String>),
    Skip,
    Failed(RunErrorEntry),
}

enum Body {
    Bytes(Vec<u8>),
    Stream(reqwest::Response),
}

impl RunScope {
    fn key(&self, account: &Account, workload: Workload, source_id: &str) -> ItemKey {
        ItemKey {
            tenant_id: self.record.tenant_id,
            connection_id: self.record.connection_id,
            account_id: account.id,
            provider: Provider::M365,
            workload,
            source_id: source_id.to_owned(),
        }
    }

    /// An item's state as this run saw it in `container`.
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

    fn prefer(&self, immutable_ids: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = if immutable_ids {
            format!(
                "odata.maxpagesize={},IdType=\"ImmutableId\"",
                self.page_size
            )
        } else {
            format!("odata.maxpagesize={}", self.page_size)
        };
        headers.insert(
            "prefer",
            HeaderValue::from_str(&value).expect("an ASCII header"),
        );
        headers
    }

    /// Mail: every folder of the tree, each folder's delta.
    pub async fn mail(&self, account: &Account) -> Result<(), WalkError> {
        let folders = self.folder_tree(account).await?;
        // A folder deleted since the last run is simply no longer listed;
        // its messages' deletions are never reported one by one.
        let listed: HashSet<&str> = folders.iter().map(|(id, _)| id.as_str()).collect();
        for gone in cursor::scopes(&self.db, account.id, Workload::Mail).await? {
            if !gone.is_empty() && !listed.contains(gone.as_str()) {
                tracing::info!(account = %account.id, "a mail folder is gone; its messages will be marked deleted");
                self.sweep_later(account, Workload::Mail, Some(gone), false);
            }
        }
        // Folders two at a time: with each folder's fetches four wide,
        // that keeps the mailbox's four request slots busy.
        let mut queue = folders.into_iter();
        let mut walks = FuturesUnordered::new();
        loop {
            while walks.len() < 2 {
                match queue.next() {
                    Some((id, path)) => {
                        walks.push(self.walk(account, Scope::MailFolder { id, path }))
                    }
                    None => break,
                }
            }
            match walks.next().await {
                Some(result) => result?,
                None => return Ok(()),
            }
        }
    }

    fn sweep_later(
        &self,
        account: &Account,
        workload: Workload,
        container: Option<String>,
        resynced: bool,
    ) {
        // A gone folder's cursor goes once its sweep is stored.
        let clear_cursor = if resynced { None } else { container.clone() };
        self.sweeps.lock().expect("sweeps lock").push(PendingSweep {
            account: account.id,
            workload,
            container,
            resynced,
            clear_cursor,
        });
    }

    pub async fn calendar(&self, account: &Account) -> Result<(), WalkError> {
        self.walk(account, Scope::Calendar).await
    }

    pub async fn drive(&self, account: &Account) -> Result<(), WalkError> {
        self.walk(account, Scope::Drive).await
    }

    /// Every mail folder: (id, path of display names).
    async fn folder_tree(&self, account: &Account) -> Result<Vec<(String, String)>, WalkError> {
        let user = account.external_id.as_str();
        let mut folders = Vec::new();
        let mut pending: Vec<(Option<String>, String)> = vec![(None, String::new())];
        while let Some((parent, prefix)) = pending.pop() {
            let mut next: Option<String> = None;
            loop {
                let page = match (&next, &parent) {
                    (Some(link), _) => self.graph.json_at(user, link).await?,
                    (None, None) => {
                        self.graph
                            .json(user, |c| {
                                c.user(user).mail_folders().list_mail_folders().top("250")
                            })
                            .await?
                    }
                    (None, Some(parent)) => {
                        self.graph
                            .json(user, |c| {
                                c.user(user)
                                    .mail_folder(parent)
                                    .child_folders()
                                    .list_child_folders()
                                    .top("250")
                            })
                            .await?
                    }
                };
                for folder in page["value"].as_array().into_iter().flatten() {
                    let Some(id) = folder["id"].as_str() else {
                        continue;
                    };
                    let name = folder["displayName"].as_str().unwrap_or("");
                    let path = if prefix.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{prefix}/{name}")
                    };
                    if folder["childFolderCount"].as_u64().unwrap_or(0) > 0 {
                        pending.push((Some(id.to_owned()), path.clone()));
                    }
                    folders.push((id.to_owned(), path));
                }
                match page["@odata.nextLink"].as_str() {
                    Some(link) => next = Some(link.to_owned()),
                    None => break,
                }
            }
        }
        Ok(folders)
    }

    /// The first request of a delta round for `scope`.
    fn first_request(
        &self,
        account: &Account,
        scope: &Scope,
    ) -> impl Fn(&GraphClient) -> RequestHandler {
        let user = account.external_id.clone();
        let scope = scope.clone();
        let now = Utc::now();
        let start = (now - Days::days(i64::from(self.calendar_past_days)))
            .format("%Y-%m-%dT00:00:00Z")
            .to_string();
        let end = (now + Days::days(i64::from(self.calendar_future_days)))
            .format("%Y-%m-%dT00:00:00Z")
            .to_string();
        let mail_prefer = self.prefer(true);
        let prefer = self.prefer(false);
        move |c: &GraphClient| match &scope {
            Scope::MailFolder { id, .. } => c
                .user(&user)
                .mail_folder(id)
                .messages()
                .delta()
                .headers(mail_prefer.clone()),
            Scope::Calendar => c
                .user(&user)
                .calendar_views()
                .delta()
                .append_query_pair("startDateTime", start.as_str())
                .append_query_pair("endDateTime", end.as_str())
                .headers(prefer.clone()),
            Scope::Drive => c.user(&user).drive().root_delta().headers(prefer.clone()),
        }
    }

    /// Follow one scope's delta from its cursor to a new deltaLink.
    async fn walk(&self, account: &Account, scope: Scope) -> Result<(), WalkError> {
        let user = account.external_id.as_str();
        let workload = scope.workload();
        let mut link = cursor::get(&self.db, account.id, workload, scope.cursor_scope()).await?;
        let first = self.first_request(account, &scope);
        let mut resynced = false;
        let mut folders: HashMap<String, (String, String)> = HashMap::new();
        // The next page, fetched while this one's items were.
        let mut prefetched = None;
        loop {
            let fetched = match (prefetched.take(), &link) {
                (Some(page), _) => page,
                (None, Some(link)) => read_page(self.graph.get_link(user, link)).await,
                (None, None) => read_page(self.graph.send(user, &first)).await,
            };
            let (page_request, body) = match fetched {
                Err(e) if e.is_expired_cursor() && !resynced => {
                    tracing::info!(account = %account.id, %workload, "delta token expired; resyncing");
                    cursor::clear(&self.db, account.id, workload, scope.cursor_scope()).await?;
                    link = None;
                    resynced = true;
                    continue;
                }
                other => other?,
            };
            let page: Page = serde_json::from_slice(&body).map_err(|e| GraphError::Status {
                status: 200,
                code: "malformedResponse".into(),
                message: format!("a delta page that is not a page: {e}"),
                request_id: page_request.clone(),
            })?;

            let mut sink = self.sink();
            let mut learned = Vec::new();
            // The next page comes while this page's items are fetched and
            // published (one of the mailbox's request slots); its link
            // becomes the cursor only once this page is confirmed, as ever.
            let next_page = async {
                match &page.next {
                    Some(next) => Some(read_page(self.graph.get_link(user, next)).await),
                    None => None,
                }
            };
            let items = async {
                let mut entries = page.value.iter();
                let mut prepared = FuturesOrdered::new();
                loop {
                    while prepared.len() < self.fetch_concurrency.max(1) {
                        match entries.next() {
                            Some(raw) => prepared.push_back(self.prepare(
                                account,
                                &scope,
                                raw,
                                &page_request,
                                &folders,
                            )),
                            None => break,
                        }
                    }
                    let Some((item, folder)) = prepared.next().await else {
                        break;
                    };
                    if let Some(folder) = folder {
                        learned.push(folder);
                    }
                    match item {
                        Prepared::Upsert(state, Body::Bytes(bytes)) => {
                            sink.upsert_download(state, bytes.as_slice()).await?
                        }
                        Prepared::Upsert(state, Body::Stream(response)) => {
                            let stream = response.bytes_stream().map_err(std::io::Error::other);
                            sink.upsert_download(state, StreamReader::new(stream))
                                .await?
                        }
                        Prepared::Deleted(key, marker, container) => {
                            let origin = sink.origin(container);
                            sink.deleted(key, marker, Utc::now(), origin).await?;
                        }
                        Prepared::Skip => {}
                        Prepared::Failed(entry) => self.record.error(entry).await?,
                    }
                }
                drop(prepared);
                Ok::<_, WalkError>(())
            };
            let (next_response, items) = tokio::join!(next_page, items);
            items?;
            prefetched = next_response;
            folders.extend(learned);
            sink.commit().await?;
            let (next, done) = match (page.next, page.delta) {
                (Some(next), _) => (next, false),
                (None, Some(delta)) => (delta, true),
                (None, None) => {
                    return Err(GraphError::Status {
                        status: 200,
                        code: "malformedResponse".into(),
                        message: "a delta page with neither a nextLink nor a deltaLink".into(),
                        request_id: page_request.clone(),
                    }
                    .into())
                }
            };
            cursor::set(&self.db, account.id, workload, scope.cursor_scope(), &next).await?;
            if done {
                if resynced {
                    match &scope {
                        Scope::MailFolder { id, .. } => {
                            self.sweep_later(account, workload, Some(id.clone()), true)
                        }
                        Scope::Drive => self.sweep_later(account, workload, None, true),
                        // calendarView lists a window of time: an event a
                        // new listing misses may merely have left it.
                        Scope::Calendar => {}
                    }
                }
                return Ok(());
            }
            link = Some(next);
        }
    }

    /// Turn one delta entry into a work item, fetching its content. Also
    /// returns a drive folder's (id, (name, parent)) for paths.
    async fn prepare(
        &self,
        account: &Account,
        scope: &Scope,
        raw: &RawValue,
        page_request: &Option<String>,
        folders: &HashMap<String, (String, String)>,
    ) -> (Prepared, Option<(String, (String, String))>) {
        let workload = scope.workload();
        let failed = |item_ref: Option<String>, e: &GraphError| {
            Prepared::Failed(RunErrorEntry {
                account_id: Some(account.id),
                workload: Some(workload),
                item_ref,
                code: e.code(),
                request_id: e.request_id().or_else(|| page_request.clone()),
                message: e.to_string(),
            })
        };
        let v: Value = match serde_json::from_str(raw.get()) {
            Ok(v) => v,
            Err(e) => {
                return (
                    Prepared::Failed(RunErrorEntry {
                        account_id: Some(account.id),
                        workload: Some(workload),
                        code: "malformedItem".into(),
                        request_id: page_request.clone(),
                        message: format!("an entry of the delta page is not JSON: {e}"),
                        ..RunErrorEntry::default()
                    }),
                    None,
                )
            }
        };
        let Some(id) = v["id"].as_str().filter(|id| !id.is_empty()) else {
            return (
                Prepared::Failed(RunErrorEntry {
                    account_id: Some(account.id),
                    workload: Some(workload),
                    code: "malformedItem".into(),
                    request_id: page_request.clone(),
                    message: "an entry of the delta page has no id".into(),
                    ..RunErrorEntry::default()
                }),
                None,
            );
        };
        let key = self.key(account, workload, id);
        let user = account.external_id.as_str();
        if v.get("@removed").is_some() || v.get("deleted").is_some() {
            let container = match scope {
                Scope::MailFolder { id, .. } => Some(id.clone()),
                _ => None,
            };
            return (Prepared::Deleted(key, None, container), None);
        }
        match scope {
            Scope::MailFolder { id: folder, path } => {
                let metadata = Metadata {
                    subject: v["subject"].as_str().map(str::to_owned),
                    from: address(&v["from"]),
                    to: addresses(&v["toRecipients"]),
                    date: date(&v["receivedDateTime"]),
                    folder_path: Some(path.clone()),
                    read: v["isRead"].as_bool(),
                    labels: strings(&v["categories"]),
                    content_type: Some("message/rfc822".into()),
                    ..Metadata::default()
                };
                let marker = v["changeKey"].as_str();
                let state = self.state(key, marker, metadata, Some(folder.clone()));
                let mime = self
                    .graph
                    .send(user, |c| c.user(user).message(id).get_messages_content())
                    .await;
                match mime {
                    Ok(response) => (Prepared::Upsert(state, Body::Stream(response)), None),
                    // Gone since the page was made: the next delta says so.
                    Err(e) if e.status() == Some(404) => (Prepared::Skip, None),
                    Err(e) => (failed(Some(id.to_owned()), &e), None),
                }
            }
            Scope::Calendar => {
                let metadata = Metadata {
                    event_title: v["subject"].as_str().map(str::to_owned),
                    subject: v["subject"].as_str().map(str::to_owned),
                    from: address(&v["organizer"]),
                    to: v["attendees"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(address)
                        .collect(),
                    date: v["start"]["dateTime"].as_str().and_then(graph_local_time),
                    content_type: Some("application/json".into()),
                    ..Metadata::default()
                };
                let marker = v["changeKey"].as_str().or(v["@odata.etag"].as_str());
                let state = self.state(key, marker, metadata, None);
                // The event exactly as Graph sent it.
                let body = raw.get().as_bytes().to_vec();
                (Prepared::Upsert(state, Body::Bytes(body)), None)
            }
            Scope::Drive => {
                if v.get("root").is_some() {
                    return (Prepared::Skip, None);
                }
                let name = v["name"].as_str().unwrap_or("").to_owned();
                let parent = v["parentReference"]["id"].as_str().unwrap_or("").to_owned();
                let parent_path = match v["parentReference"]["path"].as_str() {
                    Some(p) => Some(drive_path(p)),
                    None => self.folder_path(user, &parent, folders).await,
                };
                let path = match &parent_path {
                    Some(p) if p.is_empty() || p == "/" => format!("/{name}"),
                    Some(p) => format!("{p}/{name}"),
                    None => format!("/{name}"),
                };
                let is_folder = v.get("folder").is_some();
                let metadata = Metadata {
                    file_name: Some(name.clone()),
                    file_path: Some(path),
                    date: date(&v["lastModifiedDateTime"]),
                    content_type: if is_folder {
                        Some("application/vnd.arkiv.folder".into())
                    } else {
                        v["file"]["mimeType"].as_str().map(str::to_owned)
                    },
                    ..Metadata::default()
                };
                let marker = v["cTag"].as_str().or(v["eTag"].as_str());
                let state = self.state(key, marker, metadata, None);
                if is_folder {
                    // A folder is its name and place; its childCount and
                    // tags change with every child and are not kept.
                    let learned = Some((id.to_owned(), (name, parent)));
                    return (Prepared::Upsert(state, Body::Bytes(Vec::new())), learned);
                }
                let content = self
                    .graph
                    .send(user, |c| c.user(user).drive().item(id).get_items_content())
                    .await;
                match content {
                    Ok(response) => (Prepared::Upsert(state, Body::Stream(response)), None),
                    Err(e) if e.status() == Some(404) => (Prepared::Skip, None),
                    Err(e) => (failed(Some(id.to_owned()), &e), None),
                }
            }
        }
    }

    /// A drive folder's path ("" for the root), from this round's folders
    /// or, for a folder not in it, from Graph.
    async fn folder_path(
        &self,
        user: &str,
        folder: &str,
        known: &HashMap<String, (String, String)>,
    ) -> Option<String> {
        let mut names = Vec::new();
        let mut at = folder.to_owned();
        for _ in 0..64 {
            match known.get(&at) {
                Some((name, parent)) => {
                    names.push(name.clone());
                    at = parent.clone();
                }
                None => break,
            }
        }
        let base = if known.contains_key(&at) || at.is_empty() {
            String::new()
        } else {
            let item = self
                .graph
                .json(user, |c| c.user(user).drive().item(&at).get_items())
                .await
                .ok()?;
            if item.get("root").is_some() {
                String::new()
            } else {
                let parent = item["parentReference"]["path"].as_str().map(drive_path)?;
                format!("{parent}/{}", item["name"].as_str().unwrap_or(""))
            }
        };
        names.reverse();
        let mut path = base.trim_end_matches('/').to_owned();
        for n in names {
            path.push('/');
            path.push_str(&n);
        }
        Some(path)
    }
}

/// A delta page, read whole: its request id and its body. Read at once,
/// also when the page was asked for ahead of time, so that no response waits
/// half-read on its connection while a page's items are fetched.
async fn read_page(
    response: impl std::future::Future<Output = Result<reqwest::Response, GraphError>>,
) -> Result<(Option<String>, bytes::Bytes), GraphError> {
    let response = response.await?;
    let request = request_id(response.headers());
    let body = response
        .bytes()
        .await
        .map_err(|e| GraphError::Transport(e.to_string()))?;
    Ok((request, body))
}

/// `/drive/root:/Docs/Sub` → `/Docs/Sub`.
fn drive_path(p: &str) -> String {
    match p.split_once("root:") {
        Some((_, rest)) => rest.to_owned(),
        None => p.to_owned(),
    }
}

fn address(v: &Value) -> Option<String> {
    v["emailAddress"]["address"]
        .as_str()
        .map(|a| a.to_lowercase())
}

fn addresses(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(address)
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn date(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Graph's `dateTimeTimeZone` in UTC: `2016-12-09T20:30:00.0000000`.
fn graph_local_time(s: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|d| d.and_utc())
}
