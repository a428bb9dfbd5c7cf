//! Google Workspace backup, restore and export end to end: the API starts a
//! run, connector-google follows the simulator's Gmail, Drive and Calendar,
//! the worker stores what it publishes, on real PostgreSQL, RabbitMQ and
//! Garage; restores are checked through the Google APIs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arkiv_cloud_sim::SimConfig;
use arkiv_crypto::MasterKey;
use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use arkiv_store::ObjectStore;
use arkiv_tests::seed::scalar;
use arkiv_tests::TestConfig;
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::reader::Reader;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::api::{Org, TestApi};
use crate::stack::{plain, worker_task};

/// The API (in this process), an organisation with the simulator's Google
/// domain connected, and the worker and connector-google in this process.
struct GStack {
    api: TestApi,
    org: Org,
    stops: Vec<oneshot::Sender<()>>,
    store: ObjectStore,
    reader: Reader,
    key: yup_oauth2::ServiceAccountKey,
    admin: String,
    domain: String,
    tokens: Arc<Mutex<HashMap<String, String>>>,
}

const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/calendar",
];

impl GStack {
    async fn start(dataset: SimConfig, tune: impl FnOnce(&mut TestConfig)) -> Self {
        let api = TestApi::start_with(dataset, |c| {
            c.set("worker.pack_max_age_ms", 100);
            c.set("worker.retry_delay_ms", 500);
            c.set("google.backup.lease_ttl_secs", 4);
            c.set("google.backup.settle_timeout_secs", 120);
            tune(c);
        })
        .await;
        let org = api.org("Northwind").await;
        let g = api.manifest["google"][0].clone();
        let domain = g["domain"].as_str().unwrap().to_owned();
        let admin = g["admin"].as_str().unwrap().to_owned();
        let connected = api
            .ok(
                &org.tenant_admin,
                &format!("/v1/tenants/{}/connections/google", org.tenant),
                json!({ "domain": domain, "admin_email": admin }),
            )
            .await;
        assert_eq!(connected["status"], "active", "{connected}");
        let settings = api.config.settings();
        let store = ObjectStore::new(settings.s3().unwrap());
        let master = MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
        let keys = Arc::new(KeyRing::new(
            api.db.conn.clone(),
            master,
            Duration::from_secs(60),
        ));
        let reader = Reader::new(api.db.conn.clone(), store.clone(), keys);
        let key = yup_oauth2::parse_service_account_key(g["service_account"].to_string()).unwrap();
        Self {
            api,
            org,
            stops: Vec::new(),
            store,
            reader,
            key,
            admin,
            domain,
            tokens: Arc::default(),
        }
    }

    async fn run_services(&mut self) {
        let settings = self.api.config.settings();
        let worker = arkiv_worker::Application::build(&settings).await.unwrap();
        let connector = arkiv_connector_google::Application::build(&settings)
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(worker_task(worker, rx));
        self.stops.push(tx);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = connector
                .run_until_stopped(async move {
                    let _ = rx.await;
                })
                .await;
        });
        self.stops.push(tx);
    }

    fn sim(&self) -> String {
        self.api.sim.base_url()
    }

    fn users(&self) -> Vec<String> {
        self.api.manifest["google"][0]["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["primaryEmail"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn backup(&self) -> Value {
        let started = self
            .api
            .ok(
                &self.org.tenant_admin,
                &format!("/v1/tenants/{}/backups", self.org.tenant),
                json!({}),
            )
            .await;
        let run_id = started["runs"][0]["run_id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (status, run) = self
                .api
                .get(&self.org.tenant_admin, &format!("/v1/runs/{run_id}"))
                .await;
            assert_eq!(status, 200, "{run}");
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                return run;
            }
            assert!(Instant::now() < deadline, "run still going: {run}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A token acting as `user`, as the official client gets one.
    async fn token(&self, user: &str) -> String {
        if let Some(t) = self.tokens.lock().unwrap().get(user) {
            return t.clone();
        }
        let auth = yup_oauth2::ServiceAccountAuthenticator::builder(self.key.clone())
            .subject(user)
            .build()
            .await
            .unwrap();
        let t = auth
            .token(SCOPES)
            .await
            .unwrap()
            .token()
            .unwrap()
            .to_owned();
        self.tokens
            .lock()
            .unwrap()
            .insert(user.to_owned(), t.clone());
        t
    }

    async fn call(
        &self,
        user: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/{path}", self.sim()))
            .bearer_auth(self.token(user).await);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn json(
        &self,
        user: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let response = self.call(user, method, path, body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn get(&self, user: &str, path: &str) -> Value {
        self.json(user, reqwest::Method::GET, path, None).await
    }

    async fn bytes(&self, user: &str, path: &str) -> Vec<u8> {
        let response = self.call(user, reqwest::Method::GET, path, None).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.bytes().await.unwrap().to_vec()
    }

    async fn sim_post(&self, path: &str, body: Value) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.sim()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap()
        );
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.sim()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The latest version of an item and whether it is deleted at source.
    async fn version(&self, workload: &str, source_id: &str) -> Option<(Uuid, bool)> {
        let row = self
            .api
            .db
            .conn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT v.id, i.deleted_at_source IS NOT NULL FROM items i
                   JOIN item_versions v ON v.item_id = i.id AND v.version = i.latest_version
                  WHERE i.workload = $1 AND i.source_id = $2",
                [workload.into(), source_id.into()],
            ))
            .await
            .unwrap()?;
        Some((
            row.try_get_by_index(0).unwrap(),
            row.try_get_by_index(1).unwrap(),
        ))
    }

    async fn stored(&self, workload: &str, source_id: &str) -> Vec<u8> {
        let (version, _) = self
            .version(workload, source_id)
            .await
            .unwrap_or_else(|| panic!("{workload} item {source_id} is in the index"));
        self.reader.read_all(version).await.unwrap()
    }

    /// The path in the sealed metadata of an item's latest version, as
    /// the API shows it.
    async fn stored_path(&self, workload: &str, source_id: &str) -> String {
        let item: Uuid = self
            .api
            .db
            .conn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id FROM items WHERE workload = $1 AND source_id = $2",
                [workload.into(), source_id.into()],
            ))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index(0)
            .unwrap();
        let (_, versions) = self
            .api
            .get(
                &self.org.tenant_admin,
                &format!("/v1/items/{item}/versions"),
            )
            .await;
        versions["versions"].as_array().unwrap().last().unwrap()["path"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn count(&self, sql: &str) -> i64 {
        scalar(&self.api.db.conn, sql, vec![]).await
    }
}

/// Every page of a Google collection under `field`.
async fn all(stack: &GStack, user: &str, path: &str, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &page {
            Some(p) => format!("{path}{sep}pageToken={p}"),
            None => path.to_owned(),
        };
        let body = stack.get(user, &url).await;
        items.extend(body[field].as_array().cloned().unwrap_or_default());
        match body["nextPageToken"].as_str() {
            Some(p) => page = Some(p.to_owned()),
            None => return items,
        }
    }
}

fn raw_of(message: &Value) -> Vec<u8> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(message["raw"].as_str().unwrap()).unwrap()
}

/// What the simulator holds: message ids, drive files (id, mime type)
/// outside shared drives, and events (with their calendar).
struct Source {
    messages: Vec<String>,
    files: Vec<(String, String)>,
    events: Vec<(String, Value)>,
}

async fn source(stack: &GStack, user: &str) -> Source {
    let messages = all(
        stack,
        user,
        "gmail/v1/users/me/messages?includeSpamTrash=true&maxResults=500",
        "messages",
    )
    .await
    .iter()
    .map(|m| m["id"].as_str().unwrap().to_owned())
    .collect();
    let files = all(
        stack,
        user,
        "drive/v3/files?pageSize=1000&q=trashed%20%3D%20false",
        "files",
    )
    .await
    .iter()
    .filter(|f| f.get("driveId").is_none())
    .map(|f| {
        (
            f["id"].as_str().unwrap().to_owned(),
            f["mimeType"].as_str().unwrap().to_owned(),
        )
    })
    .collect();
    let mut events = Vec::new();
    for cal in stack.get(user, "calendar/v3/users/me/calendarList").await["items"]
        .as_array()
        .unwrap()
    {
        let id = cal["id"].as_str().unwrap();
        let path = format!(
            "calendar/v3/calendars/{}/events?showDeleted=true&maxResults=2500",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        for e in all(stack, user, &path, "items").await {
            let gone = e["status"] == "cancelled" && e.get("recurringEventId").is_none();
            if !gone {
                events.push((id.to_owned(), e));
            }
        }
    }
    Source {
        messages,
        files,
        events,
    }
}

/// The Office format a Docs editors file is backed up as.
fn export_of(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "application/vnd.google-apps.document" => {
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        }
        "application/vnd.google-apps.spreadsheet" => {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }
        "application/vnd.google-apps.presentation" => {
            "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        }
        "application/vnd.google-apps.drawing" => "application/pdf",
        _ => return None,
    })
}

/// A full backup of the Google domain holds every message (raw), file
/// (bytes, or the Office export of a Docs file), shared-drive file (once)
/// and event (JSON) exactly once; the one Docs file over Drive's export
/// limit is a clear item error; a no-change run costs requests per user,
/// not per item; changes made through the Google APIs come back as exactly
/// those changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_workspace_full_and_incremental_backups_hold_exactly_the_source() {
    let mut stack = GStack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;

    let run = stack.backup().await;
    assert_eq!(run["status"], "partially_failed", "{run}");
    let (_, detail) = stack
        .api
        .get(
            &stack.org.tenant_admin,
            &format!("/v1/runs/{}", run["run_id"].as_str().unwrap()),
        )
        .await;
    let errors = detail["error_list"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "exportSizeLimitExceeded");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .contains("export limit"));

    let mut expected = 0i64;
    let mut too_big = 0;
    for user in stack.users() {
        let src = source(&stack, &user).await;
        for id in &src.messages {
            let m = stack
                .get(
                    &user,
                    &format!("gmail/v1/users/me/messages/{id}?format=raw"),
                )
                .await;
            assert!(stack.stored("mail", id).await == raw_of(&m), "message {id}");
        }
        for (id, mime) in &src.files {
            if mime == "application/vnd.google-apps.folder" {
                assert!(stack.version("drive", id).await.is_some(), "folder {id}");
                continue;
            }
            let content = match export_of(mime) {
                Some(format) => {
                    let url = format!(
                        "drive/v3/files/{id}/export?mimeType={}",
                        url::form_urlencoded::byte_serialize(format.as_bytes()).collect::<String>()
                    );
                    let r = stack.call(&user, reqwest::Method::GET, &url, None).await;
                    if r.status() == 403 {
                        too_big += 1;
                        assert!(stack.version("drive", id).await.is_none());
                        continue;
                    }
                    r.bytes().await.unwrap().to_vec()
                }
                None => {
                    stack
                        .bytes(&user, &format!("drive/v3/files/{id}?alt=media"))
                        .await
                }
            };
            assert!(
                stack.stored("drive", id).await == content,
                "file {id} of {user}"
            );
        }
        for (_, event) in &src.events {
            let id = event["id"].as_str().unwrap();
            let stored: Value =
                serde_json::from_slice(&stack.stored("calendar", id).await).unwrap();
            assert_eq!(plain(stored), plain(event.clone()), "event {id}");
        }
        expected += (src.messages.len() + src.files.len() + src.events.len()) as i64;
    }
    assert_eq!(too_big, 1, "one Docs file is over the export limit");
    expected -= too_big;
    // The shared drive's files, once, whoever of its members walked it.
    let drives = stack
        .get(&stack.admin, "drive/v3/drives?useDomainAdminAccess=true")
        .await;
    for d in drives["drives"].as_array().unwrap() {
        let drive = d["id"].as_str().unwrap();
        let files = all(
            &stack,
            &stack.admin,
            &format!("drive/v3/files?driveId={drive}&corpora=drive&includeItemsFromAllDrives=true&supportsAllDrives=true&pageSize=1000"),
            "files",
        )
        .await;
        assert!(!files.is_empty());
        for f in &files {
            let id = f["id"].as_str().unwrap();
            let n = stack
                .count(&format!(
                    "SELECT count(*) FROM items WHERE source_id = '{id}'"
                ))
                .await;
            assert_eq!(n, 1, "shared-drive file {id} is backed up once");
        }
        expected += files.len() as i64;
    }
    assert_eq!(stack.count("SELECT count(*) FROM items").await, expected);
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected
    );

    // Nothing changed: no versions, and requests per user, not per item.
    let before = stack.stats().await["total_requests"].as_u64().unwrap();
    let again = stack.backup().await;
    assert_eq!(again["new_versions"], 0, "{again}");
    let requests = stack.stats().await["total_requests"].as_u64().unwrap() - before;
    let users = stack.users().len() as u64;
    assert!(
        requests <= users * 8 + 10,
        "a no-change run made {requests} requests for {users} users"
    );
    assert!(
        (requests as i64) < expected / 2,
        "{requests} for {expected} items"
    );

    // Changes through the Google APIs.
    let users = stack.users();
    let (a, b) = (users[1].clone(), users[2].clone());
    stack
        .sim_post(
            "/_sim/google/deliver",
            json!({ "domain": stack.domain, "user": a, "from": "new.sender@example.test",
                    "subject": "Added between runs", "body": "hello" }),
        )
        .await;
    let b_src = source(&stack, &b).await;
    let (relabelled, deleted) = (&b_src.messages[0], &b_src.messages[1]);
    stack
        .json(
            &b,
            reqwest::Method::POST,
            &format!("gmail/v1/users/me/messages/{relabelled}/modify"),
            Some(json!({ "addLabelIds": ["STARRED"] })),
        )
        .await;
    stack
        .call(
            &b,
            reqwest::Method::DELETE,
            &format!("gmail/v1/users/me/messages/{deleted}"),
            None,
        )
        .await;
    let a_src = source(&stack, &a).await;
    let binaries: Vec<&String> = a_src
        .files
        .iter()
        .filter(|(_, m)| !m.starts_with("application/vnd.google-apps."))
        .map(|(id, _)| id)
        .collect();
    let (edited, gone, moved) = (
        binaries[0].clone(),
        binaries[1].clone(),
        binaries[2].clone(),
    );
    let r = reqwest::Client::new()
        .patch(format!(
            "{}/upload/drive/v3/files/{edited}?uploadType=media",
            stack.sim()
        ))
        .bearer_auth(stack.token(&a).await)
        .body("edited between runs")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    stack
        .call(
            &a,
            reqwest::Method::DELETE,
            &format!("drive/v3/files/{gone}"),
            None,
        )
        .await;
    // A file moved into a folder of its own.
    let folder = stack
        .json(
            &a,
            reqwest::Method::POST,
            "drive/v3/files",
            Some(json!({ "name": "Moved here", "mimeType": "application/vnd.google-apps.folder" })),
        )
        .await;
    let moved_file = stack.get(&a, &format!("drive/v3/files/{moved}")).await;
    stack
        .json(
            &a,
            reqwest::Method::PATCH,
            &format!(
                "drive/v3/files/{moved}?addParents={}&removeParents={}",
                folder["id"].as_str().unwrap(),
                moved_file["parents"][0].as_str().unwrap()
            ),
            Some(json!({})),
        )
        .await;
    // A new user of the domain, backed up from the next run on.
    let newcomer = format!("new.hire@{}", stack.domain);
    stack
        .sim_post(
            "/_sim/google/users",
            json!({ "domain": stack.domain, "email": newcomer, "display_name": "New Hire" }),
        )
        .await;
    stack
        .sim_post(
            "/_sim/google/deliver",
            json!({ "domain": stack.domain, "user": newcomer, "from": "hr@example.test",
                    "subject": "Welcome aboard", "body": "hello" }),
        )
        .await;
    let (cal, event) = a_src
        .events
        .iter()
        .find(|(_, e)| e.get("recurrence").is_none() && e.get("recurringEventId").is_none())
        .cloned()
        .expect("a single event");
    let cal_path = format!(
        "calendar/v3/calendars/{}/events/{}",
        url::form_urlencoded::byte_serialize(cal.as_bytes()).collect::<String>(),
        event["id"].as_str().unwrap()
    );
    stack
        .json(
            &a,
            reqwest::Method::PATCH,
            &cal_path,
            Some(json!({ "summary": "Moved to Thursday" })),
        )
        .await;

    let third = stack.backup().await;
    // The Docs file over the export limit did not change: no error now.
    assert_eq!(third["status"], "succeeded", "{third}");
    // Added message, relabelled message, edited file, moved file and its
    // new folder, edited event, and the new user's message.
    assert_eq!(third["new_versions"], 7, "{third}");
    let moved_path = stack.stored_path("drive", &moved).await;
    assert!(
        moved_path.starts_with("/Moved here/"),
        "the moved file's path: {moved_path}"
    );
    let accounts = stack
        .api
        .get(
            &stack.org.tenant_admin,
            &format!("/v1/tenants/{}/accounts", stack.org.tenant),
        )
        .await
        .1;
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["email"] == newcomer.as_str() && a["included"] == true),
        "{accounts}"
    );
    assert!(
        stack.version("mail", deleted).await.unwrap().1,
        "deleted at source"
    );
    assert!(
        stack.version("drive", &gone).await.unwrap().1,
        "deleted file"
    );
    assert_eq!(stack.stored("drive", &edited).await, b"edited between runs");
    let stored: Value = serde_json::from_slice(
        &stack
            .stored("calendar", event["id"].as_str().unwrap())
            .await,
    )
    .unwrap();
    assert_eq!(stored["summary"], "Moved to Thursday");
    arkiv_tests::seed::assert_refcounts_exact(&stack.api.db.conn).await;
    let _ = &stack.store;
}

/// Expired history ids, page tokens and sync tokens: everything is listed
/// again with no new version, and what went while they were expired is
/// marked deleted; rate-limit storms and 5xx bursts are waited out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_cursors_rate_limits_and_server_errors_do_not_break_a_google_run() {
    let mut stack = GStack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let first = stack.backup().await;
    assert_eq!(first["status"], "partially_failed", "{first}");
    let versions = stack.count("SELECT count(*) FROM item_versions").await;
    let deleted = "SELECT count(*) FROM items WHERE deleted_at_source IS NOT NULL";
    assert_eq!(stack.count(deleted).await, 0);

    // While the cursors expire, a message, a file and an event go.
    let user = stack.users()[1].clone();
    let src = source(&stack, &user).await;
    let message = src.messages[0].clone();
    let file = src
        .files
        .iter()
        .find(|(_, m)| !m.starts_with("application/vnd.google-apps."))
        .unwrap()
        .0
        .clone();
    let (cal, event) = src
        .events
        .iter()
        .find(|(_, e)| e.get("recurrence").is_none() && e.get("recurringEventId").is_none())
        .cloned()
        .unwrap();
    stack
        .call(
            &user,
            reqwest::Method::DELETE,
            &format!("gmail/v1/users/me/messages/{message}"),
            None,
        )
        .await;
    stack
        .call(
            &user,
            reqwest::Method::DELETE,
            &format!("drive/v3/files/{file}"),
            None,
        )
        .await;
    stack
        .call(
            &user,
            reqwest::Method::DELETE,
            &format!(
                "calendar/v3/calendars/{}/events/{}",
                url::form_urlencoded::byte_serialize(cal.as_bytes()).collect::<String>(),
                event["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    stack.sim_post("/_sim/expire-cursors", json!({})).await;
    let resync = stack.backup().await;
    assert_eq!(resync["new_versions"], 0, "{resync}");
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        versions
    );
    for (workload, id) in [
        ("mail", message.as_str()),
        ("drive", file.as_str()),
        ("calendar", event["id"].as_str().unwrap()),
    ] {
        assert!(
            stack.version(workload, id).await.unwrap().1,
            "{workload} item {id} is marked deleted at source"
        );
    }
    assert_eq!(
        stack.count(deleted).await,
        3,
        "nothing else is marked deleted"
    );

    // Rate limits: a burst of 429s (on the first requests: the directory,
    // one after the other, so the backoff grows: about 1 + 2 + 4 + 8 s),
    // and a per-user budget (403 userRateLimitExceeded) while a message
    // arrives.
    stack
        .sim_post(
            "/_sim/faults",
            json!({ "throttle_burst": 4, "user_budget": { "requests": 8, "window_ms": 1000 } }),
        )
        .await;
    stack
        .sim_post(
            "/_sim/google/deliver",
            json!({ "domain": stack.domain, "user": user, "from": "storm@example.test",
                    "subject": "During the storm" }),
        )
        .await;
    let stormy = stack.backup().await;
    assert_eq!(stormy["status"], "succeeded", "{stormy}");
    assert_eq!(stormy["new_versions"], 1, "{stormy}");
    assert!(stormy["throttled_ms"].as_i64().unwrap() > 0, "{stormy}");
    let stats = stack.stats().await;
    assert!(stats["throttled"].as_u64().unwrap() >= 4, "{stats}");

    // 503 bursts.
    stack
        .sim_post(
            "/_sim/faults",
            json!({ "throttle_burst": 0, "user_budget": null, "error_rate": 0.15 }),
        )
        .await;
    let flaky = stack.backup().await;
    stack
        .sim_post("/_sim/faults", json!({ "error_rate": 0.0 }))
        .await;
    assert_eq!(flaky["status"], "succeeded", "{flaky}");
    assert_eq!(flaky["new_versions"], 0, "{flaky}");
}

async fn cli(stack: &GStack, args: &[&str]) -> Value {
    let (url, token) = (stack.api.url.clone(), stack.org.tenant_admin.clone());
    let all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        crate::stack::arkiv(&url, &token, &args)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("arkiv {args:?}: {e}"))
}

/// A deleted Gmail message (its labels and date kept), a file of a shared
/// drive and a cancelled event are found in the backup and restored,
/// checked through the Google APIs; the exports parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_gmail_shared_drive_files_and_cancelled_events_come_back() {
    let mut stack = GStack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let tenant = stack.org.tenant.clone();
    let user = stack.users()[1].clone();

    // A message with a user label of its own.
    let labels = stack.get(&user, "gmail/v1/users/me/labels").await;
    let projects = labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["type"] == "user")
        .expect("a user label")
        .clone();
    let src = source(&stack, &user).await;
    let id = src.messages[0].clone();
    stack
        .json(
            &user,
            reqwest::Method::POST,
            &format!("gmail/v1/users/me/messages/{id}/modify"),
            Some(json!({ "addLabelIds": [projects["id"]] })),
        )
        .await;
    let message = stack
        .get(
            &user,
            &format!("gmail/v1/users/me/messages/{id}?format=raw"),
        )
        .await;
    let raw = raw_of(&message);
    let subject = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap()
        .subject()
        .unwrap()
        .to_owned();
    let message_id = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap()
        .message_id()
        .unwrap()
        .to_owned();
    // A shared drive's file, and an event.
    let drives = stack
        .get(&stack.admin, "drive/v3/drives?useDomainAdminAccess=true")
        .await;
    let drive = drives["drives"][0]["id"].as_str().unwrap().to_owned();
    let shared = all(
        &stack,
        &stack.admin,
        &format!("drive/v3/files?driveId={drive}&corpora=drive&includeItemsFromAllDrives=true&supportsAllDrives=true"),
        "files",
    )
    .await;
    let file = shared
        .iter()
        .find(|f| f["mimeType"] == "application/pdf")
        .expect("a PDF in the shared drive")
        .clone();
    let file_id = file["id"].as_str().unwrap().to_owned();
    let file_bytes = stack
        .bytes(
            &stack.admin,
            &format!("drive/v3/files/{file_id}?alt=media&supportsAllDrives=true"),
        )
        .await;
    // A Google Doc of the user's own.
    let doc = all(
        &stack,
        &user,
        "drive/v3/files?q=mimeType%20%3D%20%27application%2Fvnd.google-apps.document%27",
        "files",
    )
    .await
    .into_iter()
    .find(|f| f.get("driveId").is_none())
    .expect("a Google Doc");
    let (cal, event) = src
        .events
        .iter()
        .find(|(_, e)| e.get("recurrence").is_none() && e.get("recurringEventId").is_none())
        .cloned()
        .unwrap();
    let event_path = format!(
        "calendar/v3/calendars/{}/events/{}",
        url::form_urlencoded::byte_serialize(cal.as_bytes()).collect::<String>(),
        event["id"].as_str().unwrap()
    );

    let first = stack.backup().await;
    assert_ne!(first["status"], "failed", "{first}");
    stack
        .call(
            &user,
            reqwest::Method::DELETE,
            &format!("gmail/v1/users/me/messages/{id}"),
            None,
        )
        .await;
    let r = stack
        .call(
            &stack.admin,
            reqwest::Method::DELETE,
            &format!("drive/v3/files/{file_id}?supportsAllDrives=true"),
            None,
        )
        .await;
    assert!(r.status().is_success());
    stack
        .call(&user, reqwest::Method::DELETE, &event_path, None)
        .await;
    stack
        .call(
            &user,
            reqwest::Method::DELETE,
            &format!("drive/v3/files/{}", doc["id"].as_str().unwrap()),
            None,
        )
        .await;
    let second = stack.backup().await;
    assert_eq!(second["status"], "succeeded", "{second}");

    // Gmail: found as deleted, restored with its labels and date.
    let words: String = subject
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let hits = cli(
        &stack,
        &[
            "search",
            "--tenant",
            &tenant,
            "--account",
            &user,
            "--workload",
            "mail",
            "--deleted",
            "--text",
            &words,
        ],
    )
    .await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    let job = cli(
        &stack,
        &[
            "restore",
            "--item",
            hits[0]["item_id"].as_str().unwrap(),
            "--wait",
        ],
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let q = url::form_urlencoded::byte_serialize(format!("rfc822msgid:{message_id}").as_bytes())
        .collect::<String>();
    let found = stack
        .get(
            &user,
            &format!("gmail/v1/users/me/messages?q={q}&includeSpamTrash=true"),
        )
        .await;
    let back = found["messages"].as_array().unwrap();
    assert_eq!(back.len(), 1, "{found}");
    let restored = stack
        .get(
            &user,
            &format!(
                "gmail/v1/users/me/messages/{}?format=raw",
                back[0]["id"].as_str().unwrap()
            ),
        )
        .await;
    assert!(raw_of(&restored) == raw, "the restored message differs");
    let restored_labels: Vec<&str> = restored["labelIds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        restored_labels.contains(&projects["id"].as_str().unwrap()),
        "{restored_labels:?}"
    );
    for l in message["labelIds"].as_array().unwrap() {
        assert!(
            restored_labels.contains(&l.as_str().unwrap()),
            "label {l} kept"
        );
    }
    assert_eq!(restored["internalDate"], message["internalDate"]);

    // The shared drive's file: back in the shared drive, same bytes.
    let name = file["name"].as_str().unwrap();
    let hits = cli(
        &stack,
        &[
            "search",
            "--tenant",
            &tenant,
            "--workload",
            "drive",
            "--deleted",
            "--text",
            name,
        ],
    )
    .await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    let job = cli(
        &stack,
        &[
            "restore",
            "--item",
            hits[0]["item_id"].as_str().unwrap(),
            "--wait",
        ],
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let now_there = all(
        &stack,
        &stack.admin,
        &format!("drive/v3/files?driveId={drive}&corpora=drive&includeItemsFromAllDrives=true&supportsAllDrives=true"),
        "files",
    )
    .await;
    let again = now_there
        .iter()
        .find(|f| f["name"] == name)
        .expect("the file is back in the shared drive");
    assert_eq!(again["driveId"], drive.as_str());
    let bytes = stack
        .bytes(
            &stack.admin,
            &format!(
                "drive/v3/files/{}?alt=media&supportsAllDrives=true",
                again["id"].as_str().unwrap()
            ),
        )
        .await;
    assert!(bytes == file_bytes, "the restored file differs");

    // The Google Doc: restored as a Google Doc (Drive converts the Office
    // export it was backed up as), in its folder.
    let doc_name = doc["name"].as_str().unwrap();
    let hits = cli(
        &stack,
        &[
            "search",
            "--tenant",
            &tenant,
            "--account",
            &user,
            "--workload",
            "drive",
            "--deleted",
            "--text",
            doc_name,
        ],
    )
    .await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    let job = cli(
        &stack,
        &[
            "restore",
            "--item",
            hits[0]["item_id"].as_str().unwrap(),
            "--wait",
        ],
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let docs = all(
        &stack,
        &user,
        "drive/v3/files?q=trashed%20%3D%20false",
        "files",
    )
    .await;
    let back_doc = docs
        .iter()
        .find(|f| f["name"] == doc_name)
        .expect("the Doc is back");
    assert_eq!(back_doc["mimeType"], "application/vnd.google-apps.document");
    assert_eq!(back_doc["parents"], doc["parents"], "in its folder");

    // The cancelled event: confirmed again, as it was.
    let hits = cli(
        &stack,
        &[
            "search",
            "--tenant",
            &tenant,
            "--account",
            &user,
            "--workload",
            "calendar",
            "--deleted",
        ],
    )
    .await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    let job = cli(
        &stack,
        &[
            "restore",
            "--item",
            hits[0]["item_id"].as_str().unwrap(),
            "--wait",
        ],
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let back = stack.get(&user, &event_path).await;
    assert_eq!(back["status"], "confirmed", "{back}");
    assert_eq!(back["summary"], event["summary"]);
    assert_eq!(back["start"], event["start"]);

    // Exports of the Google account parse.
    let dir = std::env::temp_dir().join(format!("arkiv-gexport-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mbox = dir.join("g.mbox");
    let out = cli(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &user,
            "--workload",
            "mail",
            "--format",
            "mbox",
            "--out",
            mbox.to_str().unwrap(),
        ],
    )
    .await;
    let bytes = std::fs::read(&mbox).unwrap();
    let parsed: Vec<_> = mail_parser::mailbox::mbox::MessageIterator::new(&bytes[..])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(parsed.len() as u64, out["items"].as_u64().unwrap());
    for m in &parsed {
        assert!(mail_parser::MessageParser::default()
            .parse(m.contents())
            .is_some());
    }
    let ics = dir.join("g.ics");
    let out = cli(
        &stack,
        &[
            "export",
            "--tenant",
            &tenant,
            "--account",
            &user,
            "--workload",
            "calendar",
            "--format",
            "ics",
            "--out",
            ics.to_str().unwrap(),
        ],
    )
    .await;
    let calendar: icalendar::Calendar = std::fs::read_to_string(&ics).unwrap().parse().unwrap();
    assert_eq!(
        calendar.events().count() as u64,
        out["items"].as_u64().unwrap()
    );
    assert!(out["items"].as_u64().unwrap() > 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// kill -9 of the worker and, separately, of connector-google in the
/// middle of a run: the run still ends with every item present once and
/// every pack whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_and_google_connector_mid_run_leave_every_item_once() {
    use crate::stack::Process;
    let stack = GStack::start(SimConfig::demo(), |_| {}).await;
    // Slow the APIs down so that the run is still going when we strike.
    stack
        .sim_post("/_sim/faults", json!({ "latency_ms": 15 }))
        .await;
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("gkill-log", "");
    let mut worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    let mut connector = Process::spawn("arkiv-connector-google", &config.path, &log.path);
    let started = stack
        .api
        .ok(
            &stack.org.tenant_admin,
            &format!("/v1/tenants/{}/backups", stack.org.tenant),
            json!({}),
        )
        .await;
    let run_id = started["runs"][0]["run_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    worker.kill();
    worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    connector.kill();
    connector = Process::spawn("arkiv-connector-google", &config.path, &log.path);
    let deadline = Instant::now() + Duration::from_secs(300);
    let run = loop {
        let (_, run) = stack
            .api
            .get(&stack.org.tenant_admin, &format!("/v1/runs/{run_id}"))
            .await;
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            break run;
        }
        assert!(Instant::now() < deadline, "run still going: {run}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_ne!(run["status"], "failed", "{run}");
    let mut expected = 0i64;
    for user in stack.users() {
        let src = source(&stack, &user).await;
        expected += (src.messages.len() + src.files.len() + src.events.len()) as i64;
    }
    let drives = stack
        .get(&stack.admin, "drive/v3/drives?useDomainAdminAccess=true")
        .await;
    for d in drives["drives"].as_array().unwrap() {
        let drive = d["id"].as_str().unwrap();
        expected += all(
            &stack,
            &stack.admin,
            &format!("drive/v3/files?driveId={drive}&corpora=drive&includeItemsFromAllDrives=true&supportsAllDrives=true&pageSize=1000"),
            "files",
        )
        .await
        .len() as i64;
    }
    // Docs files over the export limit are item errors, not items.
    let unexportable = stack
        .count(&format!(
            "SELECT count(DISTINCT item_ref) FROM run_errors WHERE code = 'exportSizeLimitExceeded' AND run_id = '{run_id}'"
        ))
        .await;
    let items = stack.count("SELECT count(*) FROM items").await;
    assert_eq!(items, expected - unexportable, "every item: {run}");
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        items,
        "once"
    );
    let rows = stack
        .api
        .db
        .conn
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT region, object_key, size FROM packs",
        ))
        .await
        .unwrap();
    for row in rows {
        let region: String = row.try_get_by_index(0).unwrap();
        let key: String = row.try_get_by_index(1).unwrap();
        let size: i64 = row.try_get_by_index(2).unwrap();
        let body = stack
            .store
            .get(&region.parse().unwrap(), &key)
            .await
            .unwrap();
        assert_eq!(body.len() as i64, size, "pack {key} is whole");
    }
    arkiv_tests::seed::assert_refcounts_exact(&stack.api.db.conn).await;
    worker.kill();
    connector.kill();
}

/// A canary in a Gmail subject, body and attachment name and in a Drive
/// file name is nowhere in S3, PostgreSQL, RabbitMQ's data or the
/// services' logs; a 1 MB attachment sent to ten users is stored about
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_canaries_stay_sealed_and_a_shared_attachment_is_stored_once() {
    use crate::stack::Process;
    use arkiv_tests::canary::{
        assert_absent_from_database, assert_absent_from_rabbitmq, assert_absent_from_store,
        contains,
    };
    let dataset = SimConfig {
        spec: arkiv_cloud_sim::DatasetSpec::bench(12, 2, (2_000, 5_000), 1, (1_000, 2_000)),
        seed: 7,
    };
    let stack = GStack::start(dataset, |c| {
        c.set(
            "log.filter",
            "debug,sqlx=debug,lapin=info,h2=info,hyper=info",
        );
    })
    .await;
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("gcanary-log", "");
    let worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    let connector = Process::spawn("arkiv-connector-google", &config.path, &log.path);
    let run = stack.backup().await;
    assert_ne!(run["status"], "failed", "{run}");

    let stored_before = stack.count("SELECT sum(size)::bigint FROM packs").await;
    let mut attachment = vec![0u8; 1024 * 1024];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(23),
        &mut attachment,
    );
    let attachment = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let users = stack.users();
    for user in users.iter().take(10) {
        stack
            .sim_post(
                "/_sim/google/deliver",
                json!({ "domain": stack.domain, "user": user, "from": "finance@example.test",
                        "subject": "Quarterly report", "body": "See attached.",
                        "attachment": { "name": "report.bin", "content_type": "application/octet-stream", "content": attachment } }),
            )
            .await;
    }
    let shared = stack.backup().await;
    assert_eq!(shared["new_versions"], 10, "{shared}");
    let added = stack.count("SELECT sum(size)::bigint FROM packs").await - stored_before;
    assert!(
        added < 1_300_000,
        "a 1 MB attachment in 10 mailboxes added {added} bytes"
    );

    let canary = format!("CANARY{}", Uuid::new_v4().simple());
    let user = users[3].clone();
    stack
        .sim_post(
            "/_sim/google/deliver",
            json!({ "domain": stack.domain, "user": user, "from": "someone@example.test",
                    "subject": format!("Subject {canary}"), "body": format!("Body {canary} body"),
                    "attachment": { "name": format!("{canary}.txt"), "content_type": "text/plain",
                                    "content": base64::engine::general_purpose::STANDARD.encode(format!("attached {canary}")) } }),
        )
        .await;
    let boundary = "canaryboundary";
    let body = format!(
        "--{boundary}\r\nContent-Type: application/json\r\n\r\n{{\"name\": \"{canary}.docx\"}}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\nfile body {canary}\r\n--{boundary}--\r\n"
    );
    let r = reqwest::Client::new()
        .post(format!(
            "{}/upload/drive/v3/files?uploadType=multipart",
            stack.sim()
        ))
        .bearer_auth(stack.token(&user).await)
        .header(
            "content-type",
            format!("multipart/related; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let uploaded: Value = r.json().await.unwrap();
    let with_canary = stack.backup().await;
    assert_eq!(with_canary["status"], "succeeded", "{with_canary}");
    assert_eq!(with_canary["new_versions"], 2, "{with_canary}");
    assert_eq!(
        stack
            .stored("drive", uploaded["id"].as_str().unwrap())
            .await,
        format!("file body {canary}").into_bytes()
    );

    let broker = arkiv_queue::Broker::connect(stack.api.config.settings().rabbitmq().unwrap())
        .await
        .unwrap();
    worker.kill();
    connector.kill();
    let objects = assert_absent_from_store(&stack.store, &canary).await;
    assert!(objects > 0, "the packs were listed");
    assert_absent_from_database(&stack.api.db.url, &stack.org.tenant, &canary);
    assert_absent_from_rabbitmq(&broker, &canary).await;
    let logs = std::fs::read(&log.path).unwrap();
    assert!(contains(&logs, b"run finished"), "the services logged");
    assert!(!contains(&logs, canary.as_bytes()), "service logs");
}
