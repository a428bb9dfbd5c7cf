//! The stack the end-to-end tests run on: the API (in this process), an
//! organisation with a connected Microsoft 365 tenant, the worker and
//! connector-m365 (in this process or as processes), and helpers to look
//! at the simulator and the index.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arkiv_cloud_sim::SimConfig;
use arkiv_crypto::MasterKey;
use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
use arkiv_store::ObjectStore;
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
pub(crate) struct Stack {
    pub(crate) api: TestApi,
    pub(crate) org: Org,
    pub(crate) stops: Vec<oneshot::Sender<()>>,
    pub(crate) store: ObjectStore,
    pub(crate) reader: Reader,
    pub(crate) graph_token: String,
}

impl Stack {
    pub(crate) async fn start(dataset: SimConfig, tune: impl FnOnce(&mut TestConfig)) -> Self {
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
    pub(crate) async fn run_services(&mut self) {
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

    pub(crate) fn sim(&self) -> String {
        self.api.sim.base_url()
    }

    /// Start a run through the API and wait for it to end.
    pub(crate) async fn backup(&self) -> Value {
        let run_id = self.start_backup().await;
        self.await_run(&run_id, Duration::from_secs(240)).await
    }

    /// Start a run through the API; its id.
    pub(crate) async fn start_backup(&self) -> String {
        let started = self
            .api
            .ok(
                &self.org.tenant_admin,
                &format!("/v1/tenants/{}/backups", self.org.tenant),
                json!({}),
            )
            .await;
        started["runs"][0]["run_id"].as_str().unwrap().to_owned()
    }

    /// Delete a OneDrive item through Graph.
    pub(crate) async fn delete_drive_item(&self, user: &str, item: &str) {
        let response = reqwest::Client::new()
            .delete(format!(
                "{}/v1.0/users/{user}/drive/items/{item}",
                self.sim()
            ))
            .bearer_auth(&self.graph_token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    pub(crate) async fn await_run(&self, run_id: &str, limit: Duration) -> Value {
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

    pub(crate) async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
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

    pub(crate) async fn graph_bytes(&self, path: &str) -> Vec<u8> {
        let response = reqwest::Client::new()
            .get(format!("{}/v1.0{path}", self.sim()))
            .bearer_auth(&self.graph_token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
        response.bytes().await.unwrap().to_vec()
    }

    pub(crate) async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_sim/stats", self.sim()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn sim_post(&self, path: &str, body: Value) {
        let response = self.sim_try(path, body).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await.unwrap()
        );
    }

    pub(crate) async fn sim_try(&self, path: &str, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.sim()))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) fn users(&self) -> Vec<(String, String)> {
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
    pub(crate) async fn version(
        &self,
        workload: &str,
        source_id: &str,
    ) -> Option<(Uuid, Option<String>)> {
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

    pub(crate) async fn stored(&self, workload: &str, source_id: &str) -> Vec<u8> {
        let (version, _) = self
            .version(workload, source_id)
            .await
            .unwrap_or_else(|| panic!("{workload} item {source_id} is in the index"));
        self.reader.read_all(version).await.unwrap()
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        scalar(&self.api.db.conn, sql, vec![]).await
    }
}

pub(crate) async fn worker_task(worker: arkiv_worker::Application, stop: oneshot::Receiver<()>) {
    let _ = worker
        .run_until_stopped(async move {
            let _ = stop.await;
        })
        .await;
}

/// An app-only token from the simulator, as a test client of Graph.
pub(crate) async fn app_token(api: &TestApi) -> String {
    arkiv_tests::graph_app_token(&api.sim.base_url(), &api.manifest["m365"][0]).await
}

/// Every page of a Graph collection (none for a user without a mailbox).
pub(crate) async fn all_pages(stack: &Stack, path: &str) -> Vec<Value> {
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
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    let mut page: Value = serde_json::from_str(&text).unwrap();
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
pub(crate) fn plain(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !k.starts_with("@odata"));
    }
    v
}

/// What the simulator holds for a user: message ids, events, drive files
/// and folders (ids).
pub(crate) struct Source {
    pub(crate) messages: Vec<String>,
    pub(crate) events: Vec<Value>,
    pub(crate) files: Vec<String>,
    pub(crate) folders: Vec<String>,
    pub(crate) mail_folders: usize,
}

pub(crate) async fn source(stack: &Stack, user: &str) -> Source {
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

/// Run the `arkiv` CLI against an API: its JSON output, or its error
/// message. It blocks its thread, so tests that use it run on a
/// multi-threaded runtime.
pub(crate) fn arkiv(api: &str, token: &str, args: &[&str]) -> Result<Value, String> {
    let mut command = std::process::Command::new(arkiv_tests::bin_path("arkiv"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ARKIV_") {
            command.env_remove(key);
        }
    }
    let output = command
        .env("ARKIV_API", api)
        .env("ARKIV_TOKEN", token)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout)
        .map_err(|e| format!("arkiv {args:?} printed no JSON ({e}): {stdout}"))
}

/// A service as a process, with its log in a file.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    pub(crate) fn spawn(
        name: &'static str,
        config: &std::path::Path,
        log: &std::path::Path,
    ) -> Self {
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

    pub(crate) fn kill(mut self) {
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
