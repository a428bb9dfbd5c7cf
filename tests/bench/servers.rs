//! `BENCH servers`: what Garage and RabbitMQ cost on their own, with no
//! Arkiv code in the path, so that the pipeline's figures can be read
//! against what this machine allows at all.
//!
//! - `case=s3_put`: random bytes (as incompressible as sealed chunks) PUT
//!   to Garage as 8 MiB objects, two in flight, as the worker writes packs;
//! - `case=rabbitmq`: the same bytes as 256 KiB persistent messages through
//!   a quorum queue, published with confirms and consumed with manual acks
//!   at once, as chunk messages travel;
//! - `case=ceiling`: the rate two cores would carry a stream through both
//!   servers if everything else (the connector, the worker, PostgreSQL)
//!   cost nothing: `cores / (garage + rabbitmq CPU seconds per MiB)`.
//!
//! CPU seconds are per GiB of payload, from `/proc` (see `cpu`).

use std::time::Instant;

use arkiv_queue::{Broker, ConfirmWindow};
use arkiv_store::ObjectStore;
use arkiv_tests::TestConfig;
use bytes::Bytes;
use futures::StreamExt;
use rand::{RngCore, SeedableRng};

use crate::cpu;

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Payload per case, MiB.
    #[arg(long, default_value_t = 1024)]
    pub mb: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { mb: 1024 }
    }
}

const MIB: usize = 1024 * 1024;
const OBJECT: usize = 8 * MIB;
const MESSAGE: usize = 256 * 1024;

pub async fn run(options: Options) {
    let config = TestConfig::isolated("bench-servers");
    let settings = config.settings();
    let total = options.mb as usize * MIB;
    let gib = total as f64 / (1024.0 * MIB as f64);

    let store = ObjectStore::new(settings.s3().expect("[s3] is set"));
    let region = settings.regions().expect("regions")[0].clone();
    let objects = random_pieces(total / OBJECT, OBJECT);
    let started = Instant::now();
    let before = cpu::Sample::now();
    futures::stream::iter(objects.into_iter().enumerate())
        .for_each_concurrent(2, |(i, body)| {
            let (store, region) = (&store, &region);
            async move {
                store
                    .put(region, &format!("servers/{i}"), body)
                    .await
                    .expect("Garage takes the PUT (make setup)");
            }
        })
        .await;
    let s3 = Measured::since(started, before, gib);
    let _ = store.delete_prefix(&region, "").await;
    println!(
        "BENCH servers case=s3_put mb={} object_mb=8 mb_per_s={:.0} {}",
        options.mb,
        options.mb as f64 / s3.seconds,
        s3.per_gib,
    );

    let broker = Broker::connect(settings.rabbitmq().expect("[rabbitmq] is set"))
        .await
        .expect("RabbitMQ is up (make setup)");
    let queue = broker
        .declare_quorum_queue("servers")
        .await
        .expect("declare a quorum queue");
    let messages = random_pieces(total / MESSAGE, MESSAGE);
    let count = messages.len();
    let publisher = broker.publisher().await.expect("a confirming channel");
    let mut consumer = broker.consume(&queue, 300).await.expect("a consumer");
    let started = Instant::now();
    let before = cpu::Sample::now();
    let consuming = async {
        for _ in 0..count {
            let delivery = consumer.next().await.expect("a delivery");
            arkiv_queue::ack(&delivery).await.expect("ack");
        }
    };
    let publishing = async {
        let mut window = ConfirmWindow::new(64);
        for body in &messages {
            let pending = publisher
                .send("", &queue, body, Default::default())
                .await
                .expect("publish");
            window.push(pending).await.expect("confirmed");
        }
        window.drain().await.expect("confirmed");
    };
    tokio::join!(consuming, publishing);
    let amqp = Measured::since(started, before, gib);
    let _ = broker.delete_queue(&queue).await;
    println!(
        "BENCH servers case=rabbitmq mb={} message_kb=256 mb_per_s={:.0} {}",
        options.mb,
        options.mb as f64 / amqp.seconds,
        amqp.per_gib,
    );

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let garage = s3.cpu_of("garage") / gib;
    let rabbitmq = amqp.cpu_of("rabbitmq") / gib;
    println!(
        "BENCH servers case=ceiling cores={cores} garage_cpu_s_per_gib={garage:.1} rabbitmq_cpu_s_per_gib={rabbitmq:.1} stream_ceiling_mb_per_s={:.0}",
        cores * 1024.0 / (garage + rabbitmq),
    );
}

struct Measured {
    seconds: f64,
    spent: cpu::Sample,
    /// `cpu_{component}_s_per_gib=...` pairs for the BENCH line.
    per_gib: String,
}

impl Measured {
    fn since(started: Instant, before: cpu::Sample, gib: f64) -> Self {
        let seconds = started.elapsed().as_secs_f64();
        let spent = cpu::Sample::now().minus(&before);
        let per_gib = spent
            .busiest()
            .into_iter()
            .map(|(name, s)| format!("cpu_{name}_s_per_gib={:.1}", s / gib))
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            seconds,
            spent,
            per_gib,
        }
    }

    fn cpu_of(&self, component: &str) -> f64 {
        self.spent.get(component)
    }
}

/// `n` pieces of `len` random bytes.
fn random_pieces(n: usize, len: usize) -> Vec<Bytes> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    (0..n)
        .map(|_| {
            let mut piece = vec![0u8; len];
            rng.fill_bytes(&mut piece);
            Bytes::from(piece)
        })
        .collect()
}
