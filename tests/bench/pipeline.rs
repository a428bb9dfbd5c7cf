//! `BENCH pipeline`: (a) many small, mail-sized items and (b) one large
//! stream, published with confirms as a connector does and stored by a
//! release-built worker process running against RabbitMQ, Garage and
//! PostgreSQL on this machine.
//!
//! - `items_per_s`, `mb_per_s`: items and plaintext megabytes (MiB) stored
//!   per second, from the first publish until the last version is indexed;
//! - `puts_per_1000_items`: the worker's S3 PUTs (its
//!   `arkiv_worker_packs_written_total`) per 1,000 items;
//! - `worker_rss_mb`: the worker's peak resident memory (VmHWM).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arkiv_crypto::{MasterKey, TransportKey};
use arkiv_domain::{Provider, Workload};
use arkiv_queue::{Broker, ConfirmWindow, Content, ItemKey, Metadata, WorkItem, WorkPublisher};
use arkiv_store::ObjectStore;
use arkiv_tests::seed::{self, SeededTenant};
use arkiv_tests::{TestConfig, TestDb};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, RngCore, SeedableRng};
use tokio::io::AsyncRead;

use crate::process::Service;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Small items in part (a).
    #[arg(long, default_value_t = 100_000)]
    pub items: usize,
    /// Size of the stream in part (b), MiB.
    #[arg(long, default_value_t = 1024)]
    pub stream_mb: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            items: 100_000,
            stream_mb: 1024,
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(options: Options) {
    let bench = Setup::new().await;
    let small = bench.small_items(options.items).await;
    println!(
        "BENCH pipeline case=small_items items={} items_per_s={:.0} mb_per_s={:.1} puts_per_1000_items={:.2} worker_rss_mb={:.0} seconds={:.1} {}",
        small.items,
        small.items as f64 / small.seconds,
        small.bytes as f64 / MIB / small.seconds,
        small.puts as f64 * 1000.0 / small.items as f64,
        small.rss_mb,
        small.seconds,
        small.cpu,
    );
    let large = bench.large_stream(options.stream_mb).await;
    println!(
        "BENCH pipeline case=large_stream mb={} items_per_s={:.2} mb_per_s={:.1} puts_per_1000_items={:.0} worker_rss_mb={:.0} seconds={:.1} {}",
        options.stream_mb,
        1.0 / large.seconds,
        large.bytes as f64 / MIB / large.seconds,
        large.puts as f64 * 1000.0,
        large.rss_mb,
        large.seconds,
        large.cpu,
    );
    bench.clean_up().await;
}

/// An isolated world: database, queue prefix, S3 key prefix and tenants.
struct Setup {
    db: TestDb,
    config: TestConfig,
    store: ObjectStore,
    broker: Broker,
    publisher: Arc<WorkPublisher>,
    master: MasterKey,
    partner: uuid::Uuid,
}

struct Measured {
    items: usize,
    bytes: u64,
    seconds: f64,
    puts: u64,
    rss_mb: f64,
    /// CPU seconds by component during the measurement.
    cpu: String,
}

impl Setup {
    async fn new() -> Self {
        let db = TestDb::create().await;
        let mut config = TestConfig::isolated("bench");
        config.set("database.url", db.url.clone());
        config.set("log.format", "json");
        config.set("log.filter", "warn");
        let settings = config.settings();
        let store = ObjectStore::new(settings.s3().expect("[s3] is set"));
        let broker = Broker::connect(settings.rabbitmq().expect("[rabbitmq] is set"))
            .await
            .expect("RabbitMQ is up (make setup)");
        for region in settings.regions().expect("regions") {
            arkiv_queue::topology::declare(&broker, &region, Duration::from_secs(5))
                .await
                .expect("declare queues");
        }
        let keys = settings.keys().expect("[keys] is set");
        let transport = TransportKey::from_secret(&keys.transport_key().expect("transport key"));
        let publisher = Arc::new(
            WorkPublisher::new(&broker, transport)
                .await
                .expect("publisher"),
        );
        let master = MasterKey::from_secret(&keys.master_key().expect("master key"));
        let partner = seed::partner(&db.conn).await;
        Self {
            db,
            config,
            store,
            broker,
            publisher,
            master,
            partner,
        }
    }

    async fn tenant(&self) -> SeededTenant {
        seed::tenant(&self.db.conn, &self.master, self.partner, "eu").await
    }

    /// Part (a): `n` mail-sized items, published 1,000 in flight.
    async fn small_items(&self, n: usize) -> Measured {
        let t = self.tenant().await;
        eprintln!("generating {n} items");
        let contents = generate_mail(n);
        let bytes: u64 = contents.iter().map(|c| c.len() as u64).sum();
        let worker = Service::start(&self.config, "arkiv-worker", "worker.listen").await;
        let started = Instant::now();
        let cpu = crate::cpu::Sample::now();
        let publisher = self.publisher.clone();
        let region = t.region.clone();
        let tenant = t.clone();
        let publishing = tokio::spawn(async move {
            let mut window = ConfirmWindow::new(1000);
            for (i, content) in contents.into_iter().enumerate() {
                let item = WorkItem::Upsert {
                    item: key(&tenant, &format!("msg-{i}")),
                    change_marker: Some(format!("ck-{i}")),
                    metadata: Metadata {
                        subject: Some(format!("Bench message {i}")),
                        ..Metadata::default()
                    },
                    content: Content::Inline(content.into()),
                    origin: Default::default(),
                };
                let pending = publisher.send(&region, &item).await.expect("publish");
                window.push(pending).await.expect("confirmed");
            }
            window.drain().await.expect("confirmed");
        });
        self.await_versions(&worker, &t, n as i64).await;
        publishing.await.expect("publisher");
        let seconds = started.elapsed().as_secs_f64();
        let cpu = crate::cpu::Sample::now().since(&cpu);
        let puts = worker.metric("arkiv_worker_packs_written_total").await as u64;
        let rss_mb = worker.peak_rss_mb();
        worker.stop();
        Measured {
            items: n,
            bytes,
            seconds,
            puts,
            rss_mb,
            cpu,
        }
    }

    /// Part (b): one stream of `mb` MiB, as a connector publishes a file.
    async fn large_stream(&self, mb: u64) -> Measured {
        let t = self.tenant().await;
        let worker = Service::start(&self.config, "arkiv-worker", "worker.listen").await;
        let started = Instant::now();
        let cpu = crate::cpu::Sample::now();
        let mut window = ConfirmWindow::new(16);
        let size = arkiv_vault::upload::publish_item(
            &self.publisher,
            &mut window,
            &t.region,
            arkiv_vault::upload::ItemState {
                item: key(&t, "large-file"),
                change_marker: None,
                metadata: Metadata {
                    file_name: Some("large.bin".into()),
                    ..Metadata::default()
                },
                origin: Default::default(),
            },
            RandomReader::new(mb * 1024 * 1024),
        )
        .await
        .expect("publish the stream");
        window.drain().await.expect("confirmed");
        self.await_versions(&worker, &t, 1).await;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = crate::cpu::Sample::now().since(&cpu);
        let puts = worker.metric("arkiv_worker_packs_written_total").await as u64;
        let rss_mb = worker.peak_rss_mb();
        worker.stop();
        Measured {
            items: 1,
            bytes: size,
            seconds,
            puts,
            rss_mb,
            cpu,
        }
    }

    /// Wait until the tenant has `n` versions. Progress is the worker's
    /// count of settled deliveries; the versions are counted (a scan of the
    /// tenant's versions, which would cost PostgreSQL as much as the work
    /// measured if polled throughout) only once that count says they could
    /// all be there.
    async fn await_versions(&self, worker: &Service, t: &SeededTenant, n: i64) {
        let bar = ProgressBar::new(n as u64).with_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:40}] {pos}/{len} deliveries settled")
                .expect("template")
                .progress_chars("=> "),
        );
        let mut last_change = Instant::now();
        let mut last = -1.0;
        loop {
            let settled = worker.metric("arkiv_worker_deliveries_total").await;
            bar.set_position((settled as u64).min(n as u64));
            if settled >= n as f64 {
                let have = seed::scalar(
                    &self.db.conn,
                    "SELECT count(*) FROM item_versions WHERE tenant_id = $1",
                    vec![t.tenant.into()],
                )
                .await;
                if have >= n {
                    bar.finish();
                    return;
                }
            }
            if settled != last {
                last = settled;
                last_change = Instant::now();
            }
            assert!(
                last_change.elapsed() < Duration::from_secs(120),
                "no progress for two minutes: {settled} deliveries settled, {n} items expected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn clean_up(self) {
        let settings = self.config.settings();
        for region in settings.regions().expect("regions") {
            let _ = self.store.delete_prefix(&region, "").await;
            let queues = arkiv_queue::RegionQueues::new(&self.broker, &region);
            for queue in [queues.work, queues.retry, queues.parking] {
                let _ = self.broker.delete_queue(&queue).await;
            }
        }
        self.db.drop_database().await;
    }
}

fn key(t: &SeededTenant, source_id: &str) -> ItemKey {
    ItemKey {
        tenant_id: t.tenant,
        connection_id: t.connection,
        account_id: t.account,
        provider: Provider::M365,
        workload: Workload::Mail,
        source_id: source_id.to_owned(),
    }
}

/// Mail-like content: sizes log-uniform from 1 KB to 100 KB (most mail is
/// small, a few messages are large), headers and a text body from a word
/// list, and for the larger ones a base64 attachment of random bytes.
fn generate_mail(n: usize) -> Vec<Vec<u8>> {
    const WORDS: &[&str] = &[
        "meeting", "project", "invoice", "please", "review", "attached", "thanks", "regards",
        "schedule", "quarter", "budget", "customer", "update", "report", "tomorrow", "team",
        "deadline", "contract", "approval", "draft", "the", "and", "for", "with", "this", "that",
        "we", "you", "will", "can", "our", "next", "week", "call", "notes", "follow", "up",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0061_726b_6976);
    (0..n)
        .map(|i| {
            let size = (1000.0 * 100f64.powf(rng.gen::<f64>())) as usize;
            let mut m = format!(
                "Message-ID: <bench-{i}-{}@example.test>\r\nFrom: sender{}@example.test\r\nTo: user@example.test\r\nSubject: Bench {i}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain\r\n\r\n",
                rng.gen::<u64>(),
                rng.gen_range(0..500),
            )
            .into_bytes();
            let text_until = if size > 20_000 { size / 3 } else { size };
            while m.len() < text_until {
                m.extend_from_slice(WORDS[rng.gen_range(0..WORDS.len())].as_bytes());
                m.push(if rng.gen_range(0..12) == 0 { b'\n' } else { b' ' });
            }
            if m.len() < size {
                let mut raw = vec![0u8; (size - m.len()) * 3 / 4];
                rng.fill_bytes(&mut raw);
                use base64::Engine as _;
                m.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(raw).as_bytes());
            }
            m.truncate(size.max(m.len().min(size)));
            m
        })
        .collect()
}

/// `len` pseudo-random bytes, generated as read (never all in memory), as
/// incompressible as an archive or a video. A fast generator (xoshiro), so
/// that making the stream costs the bench little of the CPU it measures
/// (ChaCha cost more than a quarter of a second per GiB).
struct RandomReader {
    left: u64,
    rng: rand::rngs::SmallRng,
}

impl RandomReader {
    fn new(len: u64) -> Self {
        Self {
            left: len,
            rng: rand::rngs::SmallRng::seed_from_u64(42),
        }
    }
}

impl AsyncRead for RandomReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left) as usize;
        let dest = buf.initialize_unfilled_to(n);
        self.rng.fill_bytes(dest);
        buf.advance(n);
        self.left -= n as u64;
        std::task::Poll::Ready(Ok(()))
    }
}
