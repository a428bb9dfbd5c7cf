//! The scheduler: starts backup runs on each connection's schedule (see
//! [`runs`]); retention, purges of ended subscriptions and erasure requests
//! come with later issues.
//!
//! Starts, connects to what it needs (PostgreSQL, RabbitMQ, S3), serves `/healthz` and
//! `/metrics` on `scheduler.listen`, and stops cleanly on SIGTERM/SIGINT.

pub mod runs;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use arkiv_domain::Provider;
use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};
use runs::Pacing;

pub const SERVICE: &str = "arkiv-scheduler";

const NEEDS: Needs = Needs::ALL;

/// A built, connected service, ready to run.
#[derive(Debug)]
pub struct Application {
    deps: Deps,
    publisher: arkiv_queue::Publisher,
    pacing: Pacing,
    ops: OpsServer,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
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
        let ops = OpsServer::bind(SERVICE, s.listen, "scheduler.listen", &deps).await?;
        Ok(Self {
            deps,
            publisher,
            pacing,
            ops,
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
        let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
        let Self {
            deps,
            publisher,
            pacing,
            ops,
        } = self;
        let ticking = tokio::spawn(async move {
            let mut every = tokio::time::interval(pacing.tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match runs::tick(deps.db(), deps.broker(), &publisher, &pacing).await {
                    Ok(t) if t == runs::Tick::default() => {}
                    Ok(t) => tracing::info!(started = t.started, deferred = t.deferred, "tick"),
                    Err(e) => tracing::warn!(error = %e, "tick failed; retrying at the next"),
                }
            }
        });
        let served = ops.serve(shutdown).await;
        let _ = stop_tx.send(true);
        let _ = ticking.await;
        served
    }
}
