//! `BENCH google`: a Google Workspace backup of the simulator's bench
//! dataset (by default 10 users × 500 messages of 2–200 KB and 10 Drive
//! files of up to 2 MB each), with release-built arkiv-sim, arkiv-api,
//! connector-google and worker processes on this machine's RabbitMQ,
//! PostgreSQL and Garage. The domain is onboarded through the API, as a
//! customer's admin would connect it.
//!
//! - `case=full`: `msgs_per_s`, `mb_per_s` (all content, MiB),
//!   `puts_per_1000_msgs`, each process's peak RSS;
//! - `case=no_change`: the second run's seconds and API requests;
//! - `case=latency`: everything listed again from scratch (cursors
//!   dropped) with 50 ms per request; `ideal_s` = requests per user × 50 ms
//!   / 4 requests in flight per user (users in parallel), `ideal_ratio` =
//!   run time / ideal.

use std::time::{Duration, Instant};

use arkiv_crypto::MasterKey;
use arkiv_tests::seed;
use arkiv_tests::{ConfigFile, TestConfig, TestDb};
use serde_json::{json, Value};

use crate::process::Service;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    #[arg(long, default_value_t = 10)]
    pub users: u32,
    #[arg(long, default_value_t = 500)]
    pub messages_per_user: u32,
    #[arg(long, default_value_t = 10)]
    pub files_per_user: u32,
    /// Latency of each API request in the latency case, ms.
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users: 10,
            messages_per_user: 500,
            files_per_user: 10,
            latency_ms: 50,
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(options: Options) {
    let sim_port = crate::process::free_port();
    let sim_url = format!("http://127.0.0.1:{sim_port}");
    let sim = Service::start_plain(
        "arkiv-sim",
        &[
            "--listen",
            &format!("127.0.0.1:{sim_port}"),
            "--dataset",
            "bench",
            "--users",
            &options.users.to_string(),
            "--messages-per-user",
            &options.messages_per_user.to_string(),
            "--files-per-user",
            &options.files_per_user.to_string(),
        ],
        &format!("{sim_url}/_sim/manifest"),
    )
    .await;
    let manifest: Value = reqwest::get(format!("{sim_url}/_sim/manifest"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let g = &manifest["google"][0];
    let key = ConfigFile::with_contents("bench-google-sa", &g["service_account"].to_string());

    let db = TestDb::create().await;
    let mut config = TestConfig::isolated("bench-google");
    config
        .set("database.url", db.url.clone())
        .set("log.filter", "warn")
        .set("google.api_root_url", format!("{sim_url}/"))
        .set("google.service_account_file", key.path.to_str().unwrap())
        .set(
            "google.backup.accounts_in_parallel",
            i64::from(options.users),
        )
        .set("google.backup.requests_per_second", 5000)
        .set("google.backup.settle_timeout_secs", 1800);
    let settings = config.settings();
    let master = MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
    let api = Service::start(&config, "arkiv-api", "api.listen").await;
    let token = crate::operator_token(&db, &master).await;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let (http, token, base) = (http.clone(), token.clone(), api.url());
        async move {
            let r = http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let partner = post(
        "/v1/partners".into(),
        json!({ "name": format!("Bench {}", uuid::Uuid::new_v4().simple()) }),
    )
    .await;
    let tenant = post(
        "/v1/tenants".into(),
        json!({ "partner_id": partner["id"], "name": "Bench", "region": "eu" }),
    )
    .await;
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let connection = post(
        format!("/v1/tenants/{tenant_id}/connections/google"),
        json!({ "domain": g["domain"], "admin_email": g["admin"] }),
    )
    .await;
    assert_eq!(connection["status"], "active", "{connection}");

    let worker = Service::start(&config, "arkiv-worker", "worker.listen").await;
    let connector = Service::start(&config, "arkiv-connector-google", "google.listen").await;
    let run = |label: &'static str| {
        let (post, http, token, base, tenant_id) = (
            &post,
            http.clone(),
            token.clone(),
            api.url(),
            tenant_id.clone(),
        );
        async move {
            let started = Instant::now();
            let runs = post(format!("/v1/tenants/{tenant_id}/backups"), json!({})).await;
            let id = runs["runs"][0]["run_id"].as_str().unwrap().to_owned();
            let run = loop {
                let run: Value = http
                    .get(format!("{base}/v1/runs/{id}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                    break run;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            let seconds = started.elapsed().as_secs_f64();
            eprintln!("{label} run: {} in {seconds:.1}s", run["status"]);
            (run, seconds)
        }
    };

    let before = total_requests(&sim_url).await;
    let cpu = crate::cpu::Sample::now();
    let (full, seconds) = run("full").await;
    let cpu = crate::cpu::Sample::now().since(&cpu);
    let requests_full = total_requests(&sim_url).await - before;
    let msgs = seed::scalar(
        &db.conn,
        "SELECT count(*) FROM item_versions WHERE workload = 'mail'",
        vec![],
    )
    .await;
    let puts = seed::scalar(&db.conn, "SELECT count(*) FROM packs", vec![]).await;
    println!(
        "BENCH google case=full msgs={msgs} msgs_per_s={:.0} mb_per_s={:.1} puts_per_1000_msgs={:.1} requests={requests_full} seconds={seconds:.1} connector_rss_mb={:.0} worker_rss_mb={:.0} api_rss_mb={:.0} sim_rss_mb={:.0} {cpu}",
        msgs as f64 / seconds,
        full["bytes"].as_f64().unwrap_or(0.0) / MIB / seconds,
        puts as f64 * 1000.0 / msgs.max(1) as f64,
        connector.peak_rss_mb(),
        worker.peak_rss_mb(),
        api.peak_rss_mb(),
        sim.peak_rss_mb(),
    );

    let before = total_requests(&sim_url).await;
    let (_, seconds) = run("no-change").await;
    let requests = total_requests(&sim_url).await - before;
    println!("BENCH google case=no_change seconds={seconds:.1} requests={requests}");

    // Realistic latency: everything listed again from scratch.
    let r = http
        .post(format!("{sim_url}/_sim/faults"))
        .json(&json!({ "latency_ms": options.latency_ms }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    seed::exec(&db.conn, "DELETE FROM cursors", vec![]).await;
    let before = total_requests(&sim_url).await;
    let cpu = crate::cpu::Sample::now();
    let (_, seconds) = run("latency").await;
    let cpu = crate::cpu::Sample::now().minus(&cpu);
    let requests = total_requests(&sim_url).await - before;
    let per_user = requests as f64 / f64::from(options.users);
    let ideal = per_user * options.latency_ms as f64 / 1000.0 / 4.0;
    println!(
        "BENCH google case=latency latency_ms={} requests={requests} seconds={seconds:.1} ideal_s={ideal:.1} ideal_ratio={:.2} cpu_busy={:.2}",
        options.latency_ms,
        seconds / ideal,
        cpu.busy(seconds)
    );

    connector.stop();
    worker.stop();
    api.stop();
    sim.stop();
    let store = arkiv_store::ObjectStore::new(settings.s3().unwrap());
    for region in settings.regions().unwrap() {
        let _ = store.delete_prefix(&region, "").await;
    }
    db.drop_database().await;
}

async fn total_requests(sim: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{sim}/_sim/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["total_requests"].as_u64().unwrap_or(0)
}
