//! The encryption-and-storage worker: consumes work items from its regions' queues, chunks, deduplicates, compresses, encrypts, stores in S3, indexes in PostgreSQL, and only then acks.
//!
//! Starts, connects to what it needs (PostgreSQL, RabbitMQ, S3), serves `/healthz` and
//! `/metrics` on `worker.listen`, and stops cleanly on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;

use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};

pub const SERVICE: &str = "arkiv-worker";

const NEEDS: Needs = Needs::ALL;

/// A built, connected service, ready to run.
#[derive(Debug)]
pub struct Application {
    #[allow(dead_code)] // used by the work loop of later issues
    deps: Deps,
    ops: OpsServer,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let deps = Deps::connect(settings, NEEDS).await?;
        let ops = OpsServer::bind(SERVICE, settings.worker.listen, "worker.listen", &deps).await?;
        Ok(Self { deps, ops })
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops.local_addr()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        self.ops.serve(shutdown).await
    }
}
