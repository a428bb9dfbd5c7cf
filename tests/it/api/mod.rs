//! The API on a real PostgreSQL (a fresh database per test), RabbitMQ and
//! Garage, with the cloud simulator standing in for Microsoft and Google.

mod access;
mod cli;
mod connections;
mod input;
mod login;
mod openapi;

use arkiv_cloud_sim::{SimConfig, Simulator};
use arkiv_crypto::MasterKey;
use arkiv_db::principals::{NewPrincipal, PrincipalKeys};
use arkiv_domain::{PrincipalId, Role};
use arkiv_tests::{TestConfig, TestDb};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A running API, its database and the simulator it talks to.
pub struct TestApi {
    pub url: String,
    pub db: TestDb,
    pub sim: Simulator,
    pub manifest: Value,
    /// An operator's token.
    pub operator: String,
    /// The configuration the API runs with (other services can share it).
    pub config: TestConfig,
    _sa_file: arkiv_tests::ConfigFile,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApi {
    pub async fn start() -> Self {
        Self::start_with(SimConfig::tiny(), |_| {}).await
    }

    /// An API on a simulator with `dataset`, its configuration adjusted by
    /// `tune` before it starts.
    pub async fn start_with(dataset: SimConfig, tune: impl FnOnce(&mut TestConfig)) -> Self {
        let db = TestDb::create().await;
        let sim = arkiv_cloud_sim::start("127.0.0.1:0".parse().unwrap(), dataset)
            .await
            .unwrap();
        let manifest: Value = reqwest::get(format!("{}/_sim/manifest", sim.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sa_file = arkiv_tests::ConfigFile::with_contents(
            "sa",
            &manifest["google"][0]["service_account"].to_string(),
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let mut config = TestConfig::isolated("api");
        config
            .set("database.url", db.url.clone())
            .set("api.listen", format!("127.0.0.1:{port}"))
            // The consent callback comes back to this API.
            .set("api.public_url", format!("{url}/"))
            .set("m365.authority_url", format!("{}/", sim.base_url()))
            .set("m365.graph_url", format!("{}/v1.0", sim.base_url()))
            .set(
                "m365.client_id",
                manifest["m365"][0]["client_id"].as_str().unwrap(),
            )
            .set(
                "m365.client_secret",
                manifest["m365"][0]["client_secret"].as_str().unwrap(),
            )
            .set("google.api_root_url", format!("{}/", sim.base_url()))
            .set(
                "google.service_account_file",
                sa_file.path.to_str().unwrap(),
            );
        tune(&mut config);
        let settings = config.settings();
        let app = arkiv_api::Application::build(&settings)
            .await
            .expect("the API starts");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let operator = {
            let master = MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
            let (blind, seal) = (master.blind_index_key(), master.service_key());
            let keys = PrincipalKeys {
                blind: &blind,
                seal: &seal,
            };
            let p = arkiv_db::principals::create(
                &db.conn,
                &keys,
                NewPrincipal {
                    role: Role::Operator,
                    partner_id: None,
                    tenant_id: None,
                    email: "op@arkiv.test".into(),
                },
            )
            .await
            .unwrap();
            let (_, token) = arkiv_db::principals::issue_token(
                &db.conn,
                PrincipalId::from_uuid(p.id),
                "test",
                chrono::Duration::days(1),
            )
            .await
            .unwrap();
            token.expose().to_owned()
        };
        Self {
            url,
            db,
            sim,
            manifest,
            operator,
            config,
            _sa_file: sa_file,
            stop: Some(stop),
        }
    }

    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(token, reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(token, reqwest::Method::POST, path, Some(body))
            .await
    }

    /// `post` that must succeed; returns the body.
    pub async fn ok(&self, token: &str, path: &str, body: Value) -> Value {
        let (status, body) = self.post(token, path, body).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {body}");
        body
    }

    /// A partner with a partner admin, a tenant with a tenant admin, a
    /// support principal of the partner; their tokens.
    pub async fn org(&self, name: &str) -> Org {
        let partner = self
            .ok(
                &self.operator,
                "/v1/partners",
                json!({ "name": format!("{name} Partner") }),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let tenant = self.ok(&self.operator, "/v1/tenants", json!({ "partner_id": partner, "name": format!("{name} Customer"), "region": "eu" })).await["id"].as_str().unwrap().to_owned();
        let principal = |role: &str, email: String, scope: Value| {
            let mut body = json!({ "role": role, "email": email });
            body.as_object_mut()
                .unwrap()
                .extend(scope.as_object().unwrap().clone());
            body
        };
        let mut tokens = Vec::new();
        let lower = name.to_lowercase();
        for (role, scope) in [
            ("partner-admin", json!({ "partner_id": partner })),
            ("tenant-admin", json!({ "tenant_id": tenant })),
            ("support", json!({ "partner_id": partner })),
        ] {
            let id = self
                .ok(
                    &self.operator,
                    "/v1/principals",
                    principal(role, format!("{role}@{lower}.test"), scope),
                )
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let token = self
                .ok(
                    &self.operator,
                    &format!("/v1/principals/{id}/tokens"),
                    json!({}),
                )
                .await["token"]
                .as_str()
                .unwrap()
                .to_owned();
            tokens.push((id, token));
        }
        Org {
            partner,
            tenant,
            partner_admin: tokens[0].1.clone(),
            tenant_admin: tokens[1].1.clone(),
            tenant_admin_id: tokens[1].0.clone(),
            support: tokens[2].1.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Org {
    pub partner: String,
    pub tenant: String,
    pub partner_admin: String,
    pub tenant_admin: String,
    pub tenant_admin_id: String,
    pub support: String,
}

/// Rows in the tables that hold customer state (not the audit log).
pub async fn business_rows(db: &TestDb) -> i64 {
    use arkiv_db::sea_orm::{ConnectionTrait, Statement};
    let sql = "SELECT (SELECT count(*) FROM partners) + (SELECT count(*) FROM tenants) + (SELECT count(*) FROM principals) \
               + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM connections) + (SELECT count(*) FROM protected_accounts) \
               + (SELECT count(*) FROM support_grants) + (SELECT count(*) FROM retention_policies) + (SELECT count(*) FROM tenant_keys) \
               + (SELECT count(*) FROM consent_states) + (SELECT count(*) FROM restore_jobs) + (SELECT count(*) FROM export_jobs) AS n";
    let row = db
        .conn
        .query_one(Statement::from_string(db.conn.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}
