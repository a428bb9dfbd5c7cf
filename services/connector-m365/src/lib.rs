//! connector-m365: consumes Microsoft 365 run and restore requests, polls Microsoft Graph deltas for mail, calendars and OneDrive, and publishes work items.
//!
//! Starts, connects to what it needs (PostgreSQL, RabbitMQ), serves `/healthz` and
//! `/metrics` on `m365.listen`, and stops cleanly on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;

use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};

pub const SERVICE: &str = "arkiv-connector-m365";

const NEEDS: Needs = Needs {
    database: true,
    rabbitmq: true,
    s3: false,
};

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
        let ops = OpsServer::bind(SERVICE, settings.m365.listen, "m365.listen", &deps).await?;
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
