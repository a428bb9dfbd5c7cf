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
    let (edited, gone) = (binaries[0].clone(), binaries[1].clone());
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
    // Added message, relabelled message, edited file, edited event.
    assert_eq!(third["new_versions"], 4, "{third}");
    assert!(stack.version("mail", deleted).await.unwrap().1, "deleted at source");
    assert!(stack.version("drive", &gone).await.unwrap().1, "deleted file");
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
