//! The scheduler: starts backup runs on each connection's schedule (see
//! [`runs`]) and keeps each tenant's data lifecycle (see [`lifecycle`]):
//! erasure requests ([`erasure`]), purges of ended tenants and excluded
//! accounts and inactive tenants ([`tenants`]), retention ([`retention`])
//! and garbage collection ([`gc`]).
//!
//! Time comes from a [`clock::Clock`], so tests can move it on. Starts,
//! connects to what it needs (PostgreSQL, RabbitMQ, S3), serves `/healthz`
//! and `/metrics` on `scheduler.listen`, and stops cleanly on SIGTERM/SIGINT.

pub mod audit;
pub mod clock;
pub mod erasure;
pub mod gc;
pub mod index;
pub mod lifecycle;
pub mod retention;
pub mod runs;
pub mod tenants;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arkiv_crypto::TransportKey;
use arkiv_domain::Provider;
use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};
use clock::{Clock, SystemClock};
use lifecycle::Lifecycle;
use runs::Pacing;

pub const SERVICE: &str = "arkiv-scheduler";

const NEEDS: Needs = Needs::ALL;

/// Why a lifecycle step could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Store(#[from] arkiv_store::StoreError),
    #[error(transparent)]
    Queue(#[from] arkiv_queue::QueueError),
    #[error(transparent)]
    Gc(#[from] gc::GcError),
    #[error("{0}")]
    Refused(String),
}

/// A built, connected service, ready to run.
#[derive(Debug)]
pub struct Application {
    deps: Deps,
    publisher: arkiv_queue::Publisher,
    pacing: Pacing,
    lifecycle: Arc<Lifecycle>,
    lifecycle_tick: Duration,
    clock: Arc<dyn Clock>,
    ops: OpsServer,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// A lifecycle on connections of its own (tests run passes of it at
    /// the times they choose).
    pub async fn connect(settings: &Settings) -> Result<Self, StartError> {
        let deps = Deps::connect(settings, NEEDS).await?;
        Application::lifecycle_of(settings, &deps).await
    }
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Built with the clock given (tests move it on).
    pub async fn build_with_clock(
        settings: &Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let deps = Deps::connect(settings, NEEDS).await?;
        for provider in [Provider::M365, Provider::Google] {
            arkiv_backup::request::declare(deps.broker(), provider).await?;
        }
        let publisher = deps.broker().publisher().await?;
        let s = &settings.scheduler;
        let pacing = Pacing {
            tick: Duration::from_secs(s.tick_secs.max(1)),
            catch_up_window: Duration::from_secs(s.catch_up_window_secs),
        };
        let lifecycle = Arc::new(Self::lifecycle_of(settings, &deps).await?);
        let ops = OpsServer::bind(SERVICE, s.listen, "scheduler.listen", &deps).await?;
        Ok(Self {
            publisher,
            pacing,
            lifecycle,
            lifecycle_tick: Duration::from_secs(settings.lifecycle.tick_secs.max(1)),
            clock,
            ops,
            deps,
        })
    }

    /// The lifecycle of these settings, on these connections (tests run
    /// passes of it directly).
    pub async fn lifecycle_of(settings: &Settings, deps: &Deps) -> Result<Lifecycle, StartError> {
        let transport = TransportKey::from_secret(&settings.keys()?.transport_key()?);
        Ok(Lifecycle {
            db: deps.db().clone(),
            store: deps.store().clone(),
            broker: deps.broker().clone(),
            publisher: deps.broker().publisher().await?,
            transport,
            settings: settings.lifecycle.clone(),
            holder: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "scheduler".into()),
                uuid::Uuid::new_v4().simple()
            ),
            orphans_swept: Default::default(),
        })
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops.local_addr()
    }

    /// Tick until `shutdown` resolves. A failed tick is logged and retried
    /// at the next one: the database or the broker may come back.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let Self {
            deps,
            publisher,
            pacing,
            lifecycle,
            lifecycle_tick,
            clock,
            ops,
        } = self;
        let runs_clock = clock.clone();
        let mut runs_stop = stop.clone();
        let ticking = tokio::spawn(async move {
            let mut every = tokio::time::interval(pacing.tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = runs_stop.wait_for(|s| *s) => return,
                }
                let now = runs_clock.now();
                match runs::tick(deps.db(), deps.broker(), &publisher, &pacing, now).await {
                    Ok(t) if t == runs::Tick::default() => {}
                    Ok(t) => tracing::info!(started = t.started, deferred = t.deferred, "tick"),
                    Err(e) => tracing::warn!(error = %e, "tick failed; retrying at the next"),
                }
            }
        });
        let mut lifecycle_stop = stop;
        let passing = tokio::spawn(async move {
            let mut every = tokio::time::interval(lifecycle_tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = lifecycle_stop.wait_for(|s| *s) => return,
                }
                match lifecycle.pass(clock.now()).await {
                    Ok(p)
                        if p.led
                            && p != lifecycle::Pass {
                                led: true,
                                ..Default::default()
                            } =>
                    {
                        tracing::info!(pass = ?p, "lifecycle pass")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        metrics::counter!("arkiv_scheduler_lifecycle_failures_total").increment(1);
                        tracing::warn!(error = %e, "lifecycle pass failed; retrying at the next")
                    }
                }
            }
        });
        let served = ops.serve(shutdown).await;
        let _ = stop_tx.send(true);
        let _ = ticking.await;
        let _ = passing.await;
        served
    }
}
