//! Microsoft 365 backup end to end: the API starts a run, connector-m365
//! walks the simulator's Graph deltas, the worker stores what it publishes,
//! on real PostgreSQL, RabbitMQ and Garage.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arkiv_cloud_sim::SimConfig;
use arkiv_crypto::MasterKey;
use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use arkiv_store::ObjectStore;
use arkiv_tests::canary::{
    assert_absent_from_database, assert_absent_from_rabbitmq, assert_absent_from_store, contains,
};
use arkiv_tests::seed::scalar;
use arkiv_tests::TestConfig;
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::reader::Reader;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::api::{Org, TestApi};

/// The API (in this process), an organisation with a connected Microsoft
/// 365 tenant, and the worker and connector (in this process or as
/// processes).
struct Stack {
    api: TestApi,
    org: Org,
    stops: Vec<oneshot::Sender<()>>,
    store: ObjectStore,
    reader: Reader,
    graph_token: String,
}

impl Stack {
    async fn start(dataset: SimConfig, tune: impl FnOnce(&mut TestConfig)) -> Self {
        let api = TestApi::start_with(dataset, |c| {
            c.set("worker.pack_max_age_ms", 100);
            c.set("worker.retry_delay_ms", 500);
            c.set("m365.backup.lease_ttl_secs", 4);
            c.set("m365.backup.settle_timeout_secs", 120);
            tune(c);
        })
        .await;
        let org = api.org("Fabrikam").await;
        let domain = api.manifest["m365"][0]["domain"].as_str().unwrap();
        let started = api
            .ok(
                &org.tenant_admin,
                &format!("/v1/tenants/{}/connections/m365", org.tenant),
                json!({ "domain": domain }),
            )
            .await;
        let consent = reqwest::get(started["consent_url"].as_str().unwrap())
            .await
            .unwrap();
        let connected: Value = consent.json().await.unwrap();
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
        let graph_token = app_token(&api).await;
        Self {
            api,
            org,
            stops: Vec::new(),
            store,
            reader,
            graph_token,
        }
    }

    /// The worker and connector-m365 in this process.
    async fn run_services(&mut self) {
        let settings = self.api.config.settings();
        let worker = arkiv_worker::Application::build(&settings).await.unwrap();
        let connector = arkiv_connector_m365::Application::build(&settings)
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

    /// Start a run through the API and wait for it to end.
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
        self.await_run(&run_id, Duration::from_secs(240)).await
    }

    async fn await_run(&self, run_id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
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

    async fn graph(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/v1.0{path}", self.sim()))
            .bearer_auth(&self.graph_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn graph_bytes(&self, path: &str) -> Vec<u8> {
        let response = reqwest::Client::new()
            .get(format!("{}/v1.0{path}", self.sim()))
            .bearer_auth(&self.graph_token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        response.bytes().await.unwrap().to_vec()
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.sim()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn sim_post(&self, path: &str, body: Value) {
        let response = self.sim_try(path, body).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await.unwrap()
        );
    }

    async fn sim_try(&self, path: &str, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.sim()))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    fn users(&self) -> Vec<(String, String)> {
        self.api.manifest["m365"][0]["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap().to_owned(),
                    u["userPrincipalName"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The latest version of an item, by the source's id.
    async fn version(&self, workload: &str, source_id: &str) -> Option<(Uuid, Option<String>)> {
        let row = self
            .api
            .db
            .conn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT v.id, i.deleted_at_source::text FROM items i
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

async fn worker_task(worker: arkiv_worker::Application, stop: oneshot::Receiver<()>) {
    let _ = worker
        .run_until_stopped(async move {
            let _ = stop.await;
        })
        .await;
}

/// An app-only token from the simulator, as a test client of Graph.
async fn app_token(api: &TestApi) -> String {
    let tenant = &api.manifest["m365"][0];
    let response: Value = reqwest::Client::new()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            api.sim.base_url(),
            tenant["tenant_id"].as_str().unwrap()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", tenant["client_id"].as_str().unwrap()),
            ("client_secret", tenant["client_secret"].as_str().unwrap()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_owned()
}

/// Every page of a Graph collection (none for a user without a mailbox).
async fn all_pages(stack: &Stack, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let response = reqwest::Client::new()
        .get(format!("{}/v1.0{path}", stack.sim()))
        .bearer_auth(&stack.graph_token)
        .send()
        .await
        .unwrap();
    if response.status() == 404 {
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "MailboxNotEnabledForRESTAPI",
            "{path}: {body}"
        );
        return items;
    }
    assert!(response.status().is_success(), "{path}");
    let mut page: Value = response.json().await.unwrap();
    loop {
        items.extend(page["value"].as_array().cloned().unwrap_or_default());
        match page["@odata.nextLink"].as_str() {
            Some(next) => {
                let rest = next.split_once("/v1.0").unwrap().1.to_owned();
                page = stack.graph(reqwest::Method::GET, &rest, None).await;
            }
            None => return items,
        }
    }
}

/// Without `@odata.*` annotations, which differ between list and delta.
fn plain(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with("@odata"));
    }
    v
}

/// What the simulator holds for a user: message ids, events, drive files
/// and folders (ids).
struct Source {
    messages: Vec<String>,
    events: Vec<Value>,
    files: Vec<String>,
    folders: Vec<String>,
    mail_folders: usize,
}

async fn source(stack: &Stack, user: &str) -> Source {
    let messages = all_pages(stack, &format!("/users/{user}/messages?$top=200"))
        .await
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    // Occurrences of recurring events are items of their own, as
    // calendarView gives them, in the connector's default window.
    let now = chrono::Utc::now();
    let window = format!(
        "startDateTime={}&endDateTime={}",
        (now - chrono::Duration::days(730)).format("%Y-%m-%dT00:00:00Z"),
        (now + chrono::Duration::days(365)).format("%Y-%m-%dT00:00:00Z")
    );
    let events = all_pages(stack, &format!("/users/{user}/calendarView?{window}")).await;
    let drive = all_pages(stack, &format!("/users/{user}/drive/root/delta")).await;
    let files = drive
        .iter()
        .filter(|i| i.get("file").is_some() && i.get("deleted").is_none())
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let folders = drive
        .iter()
        .filter(|i| {
            i.get("folder").is_some() && i.get("root").is_none() && i.get("deleted").is_none()
        })
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let mut mail_folders = 0;
    let mut pending = all_pages(stack, &format!("/users/{user}/mailFolders?$top=200")).await;
    while let Some(f) = pending.pop() {
        mail_folders += 1;
        if f["childFolderCount"].as_u64().unwrap_or(0) > 0 {
            let id = f["id"].as_str().unwrap();
            pending.extend(
                all_pages(
                    stack,
                    &format!("/users/{user}/mailFolders/{id}/childFolders?$top=200"),
                )
                .await,
            );
        }
    }
    Source {
        messages,
        events,
        files,
        folders,
        mail_folders,
    }
}

/// A full backup of the demo tenant holds every message (MIME), event
/// (JSON) and file (bytes) once and byte-identical; a second run with no
/// changes creates nothing and costs requests per folder and account, not
/// per item; changes made through Graph come back as exactly those changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_365_full_and_incremental_backups_hold_exactly_the_source() {
    let mut stack = Stack::start(SimConfig::demo(), |_| {}).await;
    stack.run_services().await;

    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["errors"], 0, "{run}");

    let mut expected_items = 0i64;
    let mut folders_total = 0usize;
    let mut with_mail = Vec::new();
    for (user, upn) in stack.users() {
        let src = source(&stack, &user).await;
        if src.messages.len() >= 3 && !src.events.is_empty() && !src.files.is_empty() {
            with_mail.push((user.clone(), upn.clone()));
        }
        folders_total += src.mail_folders;
        expected_items +=
            (src.messages.len() + src.events.len() + src.files.len() + src.folders.len()) as i64;
        for id in &src.messages {
            let mime = stack
                .graph_bytes(&format!("/users/{user}/messages/{id}/$value"))
                .await;
            assert!(
                stack.stored("mail", id).await == mime,
                "message {id} of {user}"
            );
        }
        for event in &src.events {
            let id = event["id"].as_str().unwrap();
            let stored: Value =
                serde_json::from_slice(&stack.stored("calendar", id).await).unwrap();
            assert_eq!(plain(stored), plain(event.clone()), "event {id}");
        }
        for id in &src.files {
            let bytes = stack
                .graph_bytes(&format!("/users/{user}/drive/items/{id}/content"))
                .await;
            assert!(
                stack.stored("drive", id).await == bytes,
                "file {id} of {user}"
            );
        }
    }
    assert_eq!(
        stack.count("SELECT count(*) FROM items").await,
        expected_items,
        "one item per message, event, file and folder"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected_items,
        "one version each"
    );
    assert_eq!(run["new_versions"], expected_items, "{run}");

    // Nothing changed: no versions, and requests per folder and account.
    let before = stack.stats().await["total_requests"].as_u64().unwrap();
    let again = stack.backup().await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["new_versions"], 0, "{again}");
    let requests = stack.stats().await["total_requests"].as_u64().unwrap() - before;
    let accounts = stack.users().len();
    let bound = (folders_total * 2 + accounts * 4 + 4) as u64;
    assert!(
        requests <= bound,
        "a no-change run made {requests} requests; folders {folders_total}, accounts {accounts}"
    );
    assert!(
        requests < expected_items as u64 / 2,
        "{requests} requests for {expected_items} items"
    );

    // Changes through Graph.
    let (a, a_upn) = with_mail[0].clone();
    let (b, _) = with_mail[1].clone();
    stack
        .sim_post(
            "/_sim/m365/deliver",
            json!({ "tenant": stack.api.manifest["m365"][0]["tenant_id"], "user": a_upn,
                    "from": "new.sender@example.test", "subject": "Added between runs", "body": "hello" }),
        )
        .await;
    let b_messages = source(&stack, &b).await.messages;
    let (edited, moved, deleted) = (&b_messages[0], &b_messages[1], &b_messages[2]);
    stack
        .graph(
            reqwest::Method::PATCH,
            &format!("/users/{b}/messages/{edited}"),
            Some(json!({ "isRead": true, "subject": "Edited between runs" })),
        )
        .await;
    let archive = stack
        .graph(
            reqwest::Method::GET,
            &format!("/users/{b}/mailFolders/archive"),
            None,
        )
        .await;
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{b}/messages/{moved}/move"),
            Some(json!({ "destinationId": archive["id"] })),
        )
        .await;
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{b}/messages/{deleted}/permanentDelete"),
            None,
        )
        .await;
    let a_source = source(&stack, &a).await;
    let event = a_source
        .events
        .iter()
        .find(|e| e.get("seriesMasterId").is_none())
        .expect("a single event")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stack
        .graph(
            reqwest::Method::PATCH,
            &format!("/users/{a}/events/{event}"),
            Some(json!({ "subject": "Moved to Thursday" })),
        )
        .await;
    let gone_file = a_source.files[0].clone();
    let response = reqwest::Client::new()
        .delete(format!(
            "{}/v1.0/users/{a}/drive/items/{gone_file}",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let response = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{a}/drive/root:/added-between-runs.txt:/content",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .body("a new file")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let added_file: Value = response.json().await.unwrap();

    let third = stack.backup().await;
    assert_eq!(third["status"], "succeeded", "{third}");
    // Added mail, edited mail, moved mail, edited event, added file.
    assert_eq!(third["new_versions"], 5, "{third}");
    assert_eq!(
        stack.version("mail", moved).await.unwrap().1,
        None,
        "a moved message is not deleted"
    );
    assert!(
        stack.version("mail", deleted).await.unwrap().1.is_some(),
        "deleted at source"
    );
    assert!(
        stack
            .version("drive", &gone_file)
            .await
            .unwrap()
            .1
            .is_some(),
        "deleted file"
    );
    assert_eq!(
        stack
            .stored("drive", added_file["id"].as_str().unwrap())
            .await,
        b"a new file"
    );
    let edited_mime = stack
        .graph_bytes(&format!("/users/{b}/messages/{edited}/$value"))
        .await;
    assert!(stack.stored("mail", edited).await == edited_mime);
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected_items + 5
    );
    arkiv_tests::seed::assert_refcounts_exact(&stack.api.db.conn).await;
}

/// Expired delta tokens resync without duplicates; a storm of 429s is
/// waited out to the second with no Retry-After violation; bursts of 503s
/// are retried; every run still succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_throttling_and_server_errors_do_not_break_a_run() {
    let mut stack = Stack::start(SimConfig::tiny(), |_| {}).await;
    stack.run_services().await;
    let (user, _) = stack.users()[0].clone();
    let doomed = stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/mailFolders"),
            Some(json!({ "displayName": "Doomed" })),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let in_doomed = stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/mailFolders/{doomed}/messages"),
            Some(json!({ "subject": "In a folder about to go",
                         "body": { "contentType": "text", "content": "soon gone" } })),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = stack.backup().await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let versions = stack.count("SELECT count(*) FROM item_versions").await;
    assert!(versions > 20);
    let deleted = "SELECT count(*) FROM items WHERE deleted_at_source IS NOT NULL";
    let deleted_before = stack.count(deleted).await;
    assert_eq!(stack.version("mail", &in_doomed).await.unwrap().1, None);

    // While the delta tokens expire, a folder goes, and with it its
    // message, and a message and a file are deleted for good: no delta
    // will ever report these one by one.
    let source = source(&stack, &user).await;
    let (gone_message, gone_file) = (
        source
            .messages
            .iter()
            .find(|m| **m != in_doomed)
            .unwrap()
            .clone(),
        source.files[0].clone(),
    );
    stack
        .graph(
            reqwest::Method::POST,
            &format!("/users/{user}/messages/{gone_message}/permanentDelete"),
            None,
        )
        .await;
    stack
        .graph(
            reqwest::Method::DELETE,
            &format!("/users/{user}/drive/items/{gone_file}"),
            None,
        )
        .await;
    stack
        .graph(
            reqwest::Method::DELETE,
            &format!("/users/{user}/mailFolders/{doomed}"),
            None,
        )
        .await;

    // Expired cursors: everything is listed again, nothing is new, and
    // what the new listing lacks is marked deleted at source.
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/expire-cursors", stack.sim()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let resync = stack.backup().await;
    assert_eq!(resync["status"], "succeeded", "{resync}");
    assert_eq!(resync["new_versions"], 0, "{resync}");
    assert!(
        resync["items"].as_i64().unwrap() >= versions - 3,
        "{resync}"
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        versions
    );
    for (workload, id) in [
        ("mail", &in_doomed),
        ("mail", &gone_message),
        ("drive", &gone_file),
    ] {
        assert!(
            stack.version(workload, id).await.unwrap().1.is_some(),
            "{workload} item {id} is marked deleted at source"
        );
    }
    assert_eq!(
        stack.count(deleted).await,
        deleted_before + 3,
        "nothing else is marked deleted"
    );
    assert_eq!(
        stack
            .count(&format!(
                "SELECT count(*) FROM cursors WHERE scope = '{doomed}'"
            ))
            .await,
        0,
        "the gone folder's cursor is dropped once it is swept"
    );

    // A throttling storm.
    stack
        .sim_post(
            "/_sim/faults",
            json!({ "throttle_burst": 25, "retry_after_secs": 1 }),
        )
        .await;
    let (_, upn) = stack.users()[0].clone();
    stack
        .sim_post(
            "/_sim/m365/deliver",
            json!({ "tenant": stack.api.manifest["m365"][0]["tenant_id"], "user": upn,
                    "from": "storm@example.test", "subject": "During the storm" }),
        )
        .await;
    let stormy = stack.backup().await;
    assert_eq!(stormy["status"], "succeeded", "{stormy}");
    assert_eq!(stormy["new_versions"], 1, "{stormy}");
    assert!(stormy["throttled_ms"].as_i64().unwrap() >= 1000, "{stormy}");
    let stats = stack.stats().await;
    assert!(stats["throttled"].as_u64().unwrap() >= 25, "{stats}");
    assert_eq!(stats["violations"], 0, "Retry-After honoured: {stats}");
    for (mailbox, n) in stats["max_concurrency"].as_object().unwrap() {
        assert!(n.as_u64().unwrap() <= 4, "{mailbox}: {n} in flight");
    }

    // 503 bursts.
    stack
        .sim_post(
            "/_sim/faults",
            json!({ "throttle_burst": 0, "error_rate": 0.15, "retry_after_secs": 1 }),
        )
        .await;
    let flaky = stack.backup().await;
    stack
        .sim_post("/_sim/faults", json!({ "error_rate": 0.0 }))
        .await;
    assert_eq!(flaky["status"], "succeeded", "{flaky}");
    assert_eq!(flaky["new_versions"], 0, "{flaky}");
    assert_eq!(stack.stats().await["violations"], 0);
}

/// A service as a process, with its log in a file.
struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    fn spawn(name: &'static str, config: &std::path::Path, log: &std::path::Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(arkiv_tests::bin_path(name));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ARKIV_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("--config")
            .arg(config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self { name, child }
    }

    fn kill(mut self) {
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("kill {}: {e}", self.name));
    }
}

impl Drop for Process {
    /// A failing test must not leave its services running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// kill -9 of the worker and, separately, of the connector in the middle
/// of a run: the run still ends with every item present once and every
/// pack whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_and_connector_mid_run_leave_every_item_once() {
    let stack = Stack::start(SimConfig::demo(), |_| {}).await;
    // Slow Graph down so that the run is still going when we strike.
    stack
        .sim_post("/_sim/faults", json!({ "latency_ms": 15 }))
        .await;
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("kill-log", "");
    let mut worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    let mut connector = Process::spawn("arkiv-connector-m365", &config.path, &log.path);

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
    connector = Process::spawn("arkiv-connector-m365", &config.path, &log.path);

    let run = stack.await_run(&run_id, Duration::from_secs(300)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let items = stack.count("SELECT count(*) FROM items").await;
    let mut expected = 0i64;
    for (user, _) in stack.users() {
        let src = source(&stack, &user).await;
        expected +=
            (src.messages.len() + src.events.len() + src.files.len() + src.folders.len()) as i64;
    }
    assert_eq!(items, expected, "every item: {run}");
    assert_eq!(
        stack.count("SELECT count(*) FROM item_versions").await,
        expected,
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

/// A canary in a subject, a body, an attachment name and a file name is
/// nowhere in S3, PostgreSQL, RabbitMQ's data or the services' logs; and a
/// 1 MB attachment sent to ten users is stored about once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_stay_sealed_and_a_shared_attachment_is_stored_once() {
    let dataset = SimConfig {
        spec: arkiv_cloud_sim::DatasetSpec::bench(12, 2, (2_000, 5_000), 1, (1_000, 2_000)),
        seed: 7,
    };
    let stack = Stack::start(dataset, |c| {
        c.set(
            "log.filter",
            "debug,sqlx=debug,lapin=info,h2=info,hyper=info",
        );
    })
    .await;
    let config = stack.api.config.write();
    let log = arkiv_tests::ConfigFile::with_contents("canary-log", "");
    let worker = Process::spawn("arkiv-worker", &config.path, &log.path);
    let connector = Process::spawn("arkiv-connector-m365", &config.path, &log.path);
    let run = stack.backup().await;
    assert_eq!(run["status"], "succeeded", "{run}");

    let tenant = stack.api.manifest["m365"][0]["tenant_id"].clone();
    let stored_before = stack.count("SELECT sum(size)::bigint FROM packs").await;
    let mut attachment = vec![0u8; 1024 * 1024];
    rand::RngCore::fill_bytes(
        &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(19),
        &mut attachment,
    );
    use base64::Engine as _;
    let attachment = base64::engine::general_purpose::STANDARD.encode(&attachment);
    // Ten users with a mailbox (an unlicensed user has none).
    let mut mailboxes = Vec::new();
    for (user, upn) in stack.users() {
        if mailboxes.len() == 10 {
            break;
        }
        let delivered = stack
            .sim_try(
                "/_sim/m365/deliver",
                json!({ "tenant": tenant, "user": upn, "from": "finance@example.test",
                        "subject": "Quarterly report", "body": "See attached.",
                        "attachment": { "name": "report.bin", "content_type": "application/octet-stream", "content": attachment } }),
            )
            .await;
        if delivered.status().is_success() {
            mailboxes.push((user, upn));
        }
    }
    assert_eq!(mailboxes.len(), 10);
    let shared = stack.backup().await;
    assert_eq!(shared["new_versions"], 10, "{shared}");
    let added = stack.count("SELECT sum(size)::bigint FROM packs").await - stored_before;
    assert!(
        added < 1_300_000,
        "a 1 MB attachment in 10 mailboxes added {added} bytes"
    );

    let canary = format!("CANARY{}", Uuid::new_v4().simple());
    let (user, upn) = mailboxes[3].clone();
    stack
        .sim_post(
            "/_sim/m365/deliver",
            json!({ "tenant": tenant, "user": upn, "from": "someone@example.test",
                    "subject": format!("Subject {canary}"), "body": format!("Body {canary} body"),
                    "attachment": { "name": format!("{canary}.txt"), "content_type": "text/plain",
                                    "content": base64::engine::general_purpose::STANDARD.encode(format!("attached {canary}")) } }),
        )
        .await;
    let response = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{user}/drive/root:/{canary}.docx:/content",
            stack.sim()
        ))
        .bearer_auth(&stack.graph_token)
        .body(format!("file body {canary}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let uploaded: Value = response.json().await.unwrap();
    let with_canary = stack.backup().await;
    assert_eq!(with_canary["status"], "succeeded", "{with_canary}");
    assert_eq!(with_canary["new_versions"], 2, "{with_canary}");

    // It is all there, sealed: the reader gives the canary back.
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

/// The scheduler starts a due connection's run once, however many
/// instances run side by side, and sets the next one `schedule_minutes`
/// on; a connection overdue after downtime is given a moment within the
/// catch-up window instead of starting at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_starts_due_runs_once_and_spreads_overdue_ones() {
    let mut stack = Stack::start(SimConfig::tiny(), |c| {
        c.set("scheduler.tick_secs", 1);
        c.set("scheduler.catch_up_window_secs", 3600);
    })
    .await;
    stack.run_services().await;
    let connection = "(SELECT id FROM connections WHERE provider = 'm365')";
    let db = &stack.api.db.conn;
    let exec = |sql: String| async move {
        db.execute_unprepared(&sql).await.unwrap();
    };
    // Not due yet: nothing happens.
    exec(format!(
        "UPDATE connections SET next_run_at = now() + interval '1 hour' WHERE id = {connection}"
    ))
    .await;
    for _ in 0..2 {
        let settings = stack.api.config.settings();
        let scheduler = arkiv_scheduler::Application::build(&settings)
            .await
            .unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(scheduler.run_until_stopped(async move {
            let _ = rx.await;
        }));
        stack.stops.push(tx);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let scheduled = "SELECT count(*) FROM runs WHERE trigger = 'schedule'";
    assert_eq!(stack.count(scheduled).await, 0, "nothing was due");

    // Due now: one run, by one of the two instances, and the next in 4 h.
    exec(format!(
        "UPDATE connections SET next_run_at = now() WHERE id = {connection}"
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let run_id = loop {
        let id = arkiv_tests::seed::text(
            db,
            "SELECT max(id::text) FROM runs WHERE trigger = 'schedule'",
            vec![],
        )
        .await;
        if !id.is_empty() {
            break id;
        }
        assert!(Instant::now() < deadline, "no scheduled run started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let run = stack.await_run(&run_id, Duration::from_secs(240)).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["new_versions"].as_i64().unwrap() > 20, "{run}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.count(scheduled).await, 1, "started once");
    let minutes_ahead = format!(
        "SELECT (extract(epoch FROM next_run_at - now()) / 60)::bigint FROM connections WHERE id = {connection}"
    );
    let ahead = stack.count(&minutes_ahead).await;
    assert!((235..=240).contains(&ahead), "next run in {ahead} minutes");

    // Overdue by a day (the scheduler was down): not started at once, but
    // given a moment within the hour.
    exec(format!(
        "UPDATE connections SET next_run_at = now() - interval '1 day' WHERE id = {connection}"
    ))
    .await;
    let seconds_ahead = format!(
        "SELECT extract(epoch FROM next_run_at - now())::bigint FROM connections WHERE id = {connection}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.count(&seconds_ahead).await < -3600 {
        assert!(
            Instant::now() < deadline,
            "the overdue connection was not seen"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ahead = stack.count(&seconds_ahead).await;
    assert!((-2..=3600).contains(&ahead), "caught up in {ahead} s");
    assert_eq!(stack.count(scheduled).await, 1, "not started at once");
}
