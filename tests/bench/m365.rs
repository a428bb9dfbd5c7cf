//! `BENCH m365`: a Microsoft 365 backup of the simulator's bench dataset
//! (by default 20 mailboxes × 2,000 messages of 2–200 KB and 10 files of up
//! to 2 MB each), with release-built arkiv-sim, connector-m365 and worker
//! processes on this machine's RabbitMQ, PostgreSQL and Garage.
//!
//! - `case=full`: `msgs_per_s`, `mb_per_s` (all content, MiB),
//!   `puts_per_1000_msgs`, each process's peak RSS;
//! - `case=no_change`: the second run's seconds and Graph requests;
//! - `case=latency`: the delta walked again from scratch (cursors dropped)
//!   with 50 ms per request and 4 requests in flight per mailbox;
//!   `ideal_s` = requests per mailbox × 50 ms / 4 (mailboxes in parallel),
//!   `ideal_ratio` = run time / ideal.

use std::time::{Duration, Instant};

use arkiv_crypto::MasterKey;
use arkiv_queue::Broker;
use arkiv_tests::seed;
use arkiv_tests::{TestConfig, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::process::Service;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    #[arg(long, default_value_t = 20)]
    pub users: u32,
    #[arg(long, default_value_t = 2000)]
    pub messages_per_user: u32,
    #[arg(long, default_value_t = 10)]
    pub files_per_user: u32,
    /// Latency of each Graph request in the latency case, ms.
    #[arg(long, default_value_t = 50)]
    pub latency_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            users: 20,
            messages_per_user: 2000,
            files_per_user: 10,
            latency_ms: 50,
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The simulator, a tenant connected to its Microsoft 365 tenant, and
/// release-built worker and connector-m365 processes.
pub struct M365Bench {
    pub sim: Service,
    pub sim_url: String,
    pub manifest: Value,
    pub db: TestDb,
    pub config: TestConfig,
    pub master: MasterKey,
    pub t: seed::SeededTenant,
    pub worker: Service,
    pub connector: Service,
    pub broker: Broker,
    publisher: arkiv_queue::Publisher,
}

impl M365Bench {
    pub async fn start(users: u32, messages_per_user: u32, files_per_user: u32) -> Self {
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
                &users.to_string(),
                "--messages-per-user",
                &messages_per_user.to_string(),
                "--files-per-user",
                &files_per_user.to_string(),
            ],
            &format!("{sim_url}/_sim/manifest"),
        )
        .await;
        let manifest: Value = get(&format!("{sim_url}/_sim/manifest")).await;
        let ms = &manifest["m365"][0];

        let db = TestDb::create().await;
        let mut config = TestConfig::isolated("bench-m365");
        config
            .set("database.url", db.url.clone())
            .set("log.filter", "warn")
            .set("m365.authority_url", format!("{sim_url}/"))
            .set("m365.graph_url", format!("{sim_url}/v1.0"))
            .set("m365.client_id", ms["client_id"].as_str().unwrap())
            .set("m365.client_secret", ms["client_secret"].as_str().unwrap())
            .set("m365.backup.accounts_in_parallel", i64::from(users))
            .set("m365.backup.requests_per_second", 5000)
            .set("m365.backup.settle_timeout_secs", 1800);
        let settings = config.settings();
        let master = MasterKey::from_secret(&settings.keys().unwrap().master_key().unwrap());
        let partner = seed::partner(&db.conn).await;
        let t = seed::tenant(&db.conn, &master, partner, "eu").await;
        // The seeded connection becomes the simulator's tenant; the connector
        // discovers its accounts from the directory.
        seed::exec(
            &db.conn,
            "UPDATE connections SET external_id = $2, status = 'active' WHERE id = $1",
            vec![
                t.connection.into(),
                ms["tenant_id"].as_str().unwrap().into(),
            ],
        )
        .await;
        seed::exec(
            &db.conn,
            "DELETE FROM protected_accounts WHERE connection_id = $1",
            vec![t.connection.into()],
        )
        .await;
        let consent = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!(
                "{sim_url}/{}/adminconsent?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=bench",
                ms["tenant_id"].as_str().unwrap(),
                ms["client_id"].as_str().unwrap()
            ))
            .send()
            .await
            .unwrap();
        assert!(
            consent.status().is_redirection(),
            "consent: {}",
            consent.status()
        );

        let worker = Service::start(&config, "arkiv-worker", "worker.listen").await;
        let connector = Service::start(&config, "arkiv-connector-m365", "m365.listen").await;
        let broker = Broker::connect(settings.rabbitmq().unwrap()).await.unwrap();
        let publisher = broker.publisher().await.unwrap();
        Self {
            sim,
            sim_url,
            manifest,
            db,
            config,
            master,
            t,
            worker,
            connector,
            broker,
            publisher,
        }
    }

    /// A backup run, requested as the API would, waited for to its end.
    pub async fn run(&self, label: &str) -> (Uuid, f64) {
        let (db, t) = (&self.db, &self.t);
        let run_id = Uuid::now_v7();
        seed::exec(
            &db.conn,
            "INSERT INTO runs (id, tenant_id, connection_id, trigger) VALUES ($1, $2, $3, 'api')",
            vec![run_id.into(), t.tenant.into(), t.connection.into()],
        )
        .await;
        let started = Instant::now();
        arkiv_backup::request::publish(
            &self.broker,
            &self.publisher,
            arkiv_domain::Provider::M365,
            &arkiv_backup::request::RunRequest {
                run_id,
                tenant_id: t.tenant,
                connection_id: t.connection,
            },
        )
        .await
        .unwrap();
        loop {
            let done = seed::scalar(
                &db.conn,
                "SELECT count(*) FROM runs WHERE id = $1 AND finished_at IS NOT NULL",
                vec![run_id.into()],
            )
            .await;
            if done == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let state = seed::text(
            &db.conn,
            "SELECT state FROM runs WHERE id = $1",
            vec![run_id.into()],
        )
        .await;
        eprintln!("{label} run: {state} in {seconds:.1}s");
        (run_id, seconds)
    }

    /// Stop the services and drop what the benchmark stored.
    pub async fn finish(self) {
        self.connector.stop();
        self.worker.stop();
        self.sim.stop();
        let settings = self.config.settings();
        let store = arkiv_store::ObjectStore::new(settings.s3().unwrap());
        for region in settings.regions().unwrap() {
            let _ = store.delete_prefix(&region, "").await;
            let queues = arkiv_queue::RegionQueues::new(&self.broker, &region);
            for queue in [queues.work, queues.retry, queues.parking] {
                let _ = self.broker.delete_queue(&queue).await;
            }
        }
        self.db.drop_database().await;
    }
}

pub async fn run(options: Options) {
    let bench = M365Bench::start(
        options.users,
        options.messages_per_user,
        options.files_per_user,
    )
    .await;
    let (sim_url, db) = (bench.sim_url.clone(), &bench.db);
    let run = |label: &'static str| bench.run(label);

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
    let bytes = seed::scalar(
        &db.conn,
        "SELECT bytes FROM runs WHERE id = $1",
        vec![full.into()],
    )
    .await;
    let puts = seed::scalar(&db.conn, "SELECT count(*) FROM packs", vec![]).await;
    println!(
        "BENCH m365 case=full msgs={msgs} msgs_per_s={:.0} mb_per_s={:.1} puts_per_1000_msgs={:.1} requests={requests_full} seconds={seconds:.1} connector_rss_mb={:.0} worker_rss_mb={:.0} sim_rss_mb={:.0} {cpu}",
        msgs as f64 / seconds,
        bytes as f64 / MIB / seconds,
        puts as f64 * 1000.0 / msgs.max(1) as f64,
        bench.connector.peak_rss_mb(),
        bench.worker.peak_rss_mb(),
        bench.sim.peak_rss_mb(),
    );

    let before = total_requests(&sim_url).await;
    let (_, seconds) = run("no-change").await;
    let requests = total_requests(&sim_url).await - before;
    println!("BENCH m365 case=no_change seconds={seconds:.1} requests={requests}");

    // Realistic limits: the delta walked again from scratch.
    post(
        &format!("{sim_url}/_sim/faults"),
        json!({ "latency_ms": options.latency_ms, "mailbox_concurrency": 4 }),
    )
    .await;
    seed::exec(&db.conn, "DELETE FROM cursors", vec![]).await;
    let before = total_requests(&sim_url).await;
    let cpu = crate::cpu::Sample::now();
    let (_, seconds) = run("latency").await;
    let cpu = crate::cpu::Sample::now().minus(&cpu);
    let requests = total_requests(&sim_url).await - before;
    let per_mailbox = requests as f64 / f64::from(options.users);
    let ideal = per_mailbox * options.latency_ms as f64 / 1000.0 / 4.0;
    println!(
        "BENCH m365 case=latency latency_ms={} requests={requests} seconds={seconds:.1} ideal_s={ideal:.1} ideal_ratio={:.2} cpu_busy={:.2}",
        options.latency_ms,
        seconds / ideal,
        cpu.busy(seconds)
    );

    bench.finish().await;
}

async fn get(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn post(url: &str, body: Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{url}");
}

async fn total_requests(sim: &str) -> u64 {
    get(&format!("{sim}/_sim/stats")).await["total_requests"]
        .as_u64()
        .unwrap_or(0)
}
