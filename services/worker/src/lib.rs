//! The encryption-and-storage worker: consumes work items from its regions'
//! queues, chunks, deduplicates, compresses, encrypts, packs and stores them
//! in S3, indexes them in PostgreSQL, and only then acks (see [`pipeline`]).
//!
//! Starts, connects to what it needs (PostgreSQL, RabbitMQ, S3), declares
//! its queues, serves `/healthz` and `/metrics` on `worker.listen`, and
//! stops cleanly on SIGTERM/SIGINT, finishing the batch in hand.

pub mod pipeline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arkiv_crypto::{MasterKey, TransportKey};
use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};
use arkiv_vault::keyring::KeyRing;
use pipeline::{Pipeline, Tuning};
use tokio::sync::watch;

pub const SERVICE: &str = "arkiv-worker";

const NEEDS: Needs = Needs::ALL;

/// How long unwrapped tenant keys stay in memory.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// A built, connected service, ready to run.
#[derive(Debug)]
pub struct Application {
    pipelines: Vec<Arc<Pipeline>>,
    ops: OpsServer,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let master = MasterKey::from_secret(&settings.keys()?.master_key()?);
        let transport = settings.keys()?.transport_key()?;
        let deps = Deps::connect(settings, NEEDS).await?;
        let regions = if settings.worker.regions.is_empty() {
            settings.regions()?
        } else {
            settings.worker.regions.clone()
        };
        let keys = Arc::new(KeyRing::new(deps.db().clone(), master, KEY_CACHE_TTL));
        let w = &settings.worker;
        let tuning = Tuning {
            prefetch: w.prefetch.max(1),
            pack_target_bytes: w.pack_target_bytes,
            pack_max_age: Duration::from_millis(w.pack_max_age_ms),
            max_attempts: w.max_attempts.max(1),
        };
        let mut pipelines = Vec::new();
        for region in &regions {
            let queues = arkiv_queue::topology::declare(
                deps.broker(),
                region,
                Duration::from_millis(w.retry_delay_ms),
            )
            .await?;
            pipelines.push(Arc::new(Pipeline {
                db: deps.db().clone(),
                store: deps.store().clone(),
                broker: deps.broker().clone(),
                keys: keys.clone(),
                transport: TransportKey::from_secret(&transport),
                queues,
                tuning: tuning.clone(),
            }));
        }
        let ops = OpsServer::bind(SERVICE, w.listen, "worker.listen", &deps).await?;
        Ok(Self { pipelines, ops })
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops.local_addr()
    }

    /// Consume until `shutdown` resolves; a pipeline that fails stops the
    /// service with its error (the supervisor restarts it).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut consumers = tokio::task::JoinSet::new();
        for pipeline in self.pipelines {
            let stop = stop_rx.clone();
            consumers.spawn(async move { pipeline.run(stop).await });
        }
        let (ops_stop_tx, ops_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ops = tokio::spawn(self.ops.serve(async move {
            let _ = ops_stop_rx.await;
        }));
        let failed = tokio::select! {
            _ = shutdown => None,
            Some(result) = consumers.join_next() => match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("a consumer panicked: {e}")),
            },
        };
        let _ = stop_tx.send(true);
        while consumers.join_next().await.is_some() {}
        let _ = ops_stop_tx.send(());
        ops.await
            .map_err(|e| StartError::Other(format!("the ops server panicked: {e}")))??;
        match failed {
            Some(reason) => Err(StartError::Other(format!("the worker stopped: {reason}"))),
            None => Ok(()),
        }
    }
}
