//! `BENCH restore`: single-message restores, from the API request to the
//! message being visible in the mailbox through Graph, with release-built
//! arkiv-api, connector-m365, worker and simulator processes. A small
//! tenant is backed up; then, one at a time, a message is deleted for good
//! in the simulator, its restore requested with `POST /v1/restores`, and
//! Graph asked every 20 ms whether the mailbox holds it again. Prints p50
//! and p95 in milliseconds.

use std::time::{Duration, Instant};

use arkiv_tests::seed;
use serde_json::{json, Value};

use crate::m365::M365Bench;
use crate::process::Service;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Messages restored, one after the other.
    #[arg(long, default_value_t = 40)]
    pub restores: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { restores: 40 }
    }
}

pub async fn run(options: Options) {
    let bench = M365Bench::start(2, options.restores as u32, 1).await;
    let (run, _) = bench.run("restore bench backup").await;
    let state = seed::text(
        &bench.db.conn,
        "SELECT state FROM runs WHERE id = $1",
        vec![run.into()],
    )
    .await;
    assert_eq!(state, "succeeded");
    let api = Service::start(&bench.config, "arkiv-api", "api.listen").await;
    let token = crate::operator_token(&bench.db, &bench.master).await;
    let graph = GraphClient::new(&bench.sim_url, &bench.manifest["m365"][0]).await;
    let http = reqwest::Client::new();

    use arkiv_db::sea_orm::{ConnectionTrait, DbBackend, Statement};
    struct Row {
        id: uuid::Uuid,
        source_id: String,
        external_id: String,
    }
    let items: Vec<Row> = bench
        .db
        .conn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT i.id, i.source_id, a.external_id FROM items i
               JOIN protected_accounts a ON a.id = i.account_id
              WHERE i.workload = 'mail' ORDER BY i.id LIMIT $1",
            [(options.restores as i64).into()],
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| Row {
            id: r.try_get_by_index(0).unwrap(),
            source_id: r.try_get_by_index(1).unwrap(),
            external_id: r.try_get_by_index(2).unwrap(),
        })
        .collect();
    assert!(!items.is_empty(), "the backup holds mail");

    let mut times = Vec::new();
    for item in &items {
        let user = &item.external_id;
        let message = graph
            .get(&format!("/users/{user}/messages/{}", item.source_id))
            .await;
        let internet_id = message["internetMessageId"].as_str().unwrap().to_owned();
        graph
            .post(&format!(
                "/users/{user}/messages/{}/permanentDelete",
                item.source_id
            ))
            .await;
        let filter = url::form_urlencoded::byte_serialize(
            format!("internetMessageId eq '{internet_id}'").as_bytes(),
        )
        .collect::<String>();
        let lookup = format!("/users/{user}/messages?$filter={filter}&$select=id");
        let started = Instant::now();
        let response = http
            .post(format!("{}/v1/restores", api.url()))
            .bearer_auth(&token)
            .json(&json!({ "item_id": item.id }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        loop {
            let found = graph.get(&lookup).await;
            if found["value"].as_array().is_some_and(|v| !v.is_empty()) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "message {} not restored within a minute",
                item.id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "BENCH restore case=single_message restores={} p50_ms={:.0} p95_ms={:.0} max_ms={:.0}",
        times.len(),
        pct(50),
        pct(95),
        times.last().copied().unwrap_or(0.0),
    );
    api.stop();
    bench.finish().await;
}

/// Graph as a test client: an app-only token from the simulator.
struct GraphClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl GraphClient {
    async fn new(sim: &str, tenant: &Value) -> Self {
        Self {
            base: format!("{sim}/v1.0"),
            token: arkiv_tests::graph_app_token(sim, tenant).await,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
}
