//! connector-m365: carries out Microsoft 365 backup runs and restores. It
//! consumes run requests from `{prefix}.runs.m365`, takes the connection's
//! lease, walks Graph deltas for mail, calendars and OneDrive ([`walk`]),
//! and publishes work items for the worker through the pipeline's queues.
//! It consumes restore jobs from `{prefix}.restores.m365` and writes the
//! items back through Graph ([`restore`]).
//!
//! Starts, connects to what it needs (PostgreSQL, RabbitMQ), serves
//! `/healthz` and `/metrics` on `m365.listen`, and stops cleanly on
//! SIGTERM/SIGINT (runs in progress are resumed by the next instance once
//! their lease lapses: their requests stay unacknowledged until the end).

pub mod graph;
pub mod restore;
pub mod run;
pub mod walk;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arkiv_backup::jobs;
use arkiv_backup::request;
use arkiv_crypto::{MasterKey, TransportKey};
use arkiv_domain::Provider;
use arkiv_provider::m365::{AppCredentials, Endpoints};
use arkiv_queue::{Broker, WorkPublisher};
use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::reader::Reader;
use run::Connector;

pub const SERVICE: &str = "arkiv-connector-m365";

const NEEDS: Needs = Needs {
    database: true,
    rabbitmq: true,
    // Restores read the backup back.
    s3: true,
};

/// A built, connected service, ready to run.
#[derive(Debug)]
pub struct Application {
    connector: Arc<Connector>,
    broker: Arc<Broker>,
    queue: String,
    restores: String,
    ops: OpsServer,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let keys = settings.keys()?;
        let master = MasterKey::from_secret(&keys.master_key()?);
        let transport = TransportKey::from_secret(&keys.transport_key()?);
        let deps = Deps::connect(settings, NEEDS).await?;
        let broker = deps.broker().clone();
        for region in settings.regions()? {
            arkiv_queue::topology::declare(
                &broker,
                &region,
                std::time::Duration::from_millis(settings.worker.retry_delay_ms),
            )
            .await?;
        }
        let queue = request::declare(&broker, Provider::M365).await?;
        let restores = arkiv_backup::restore::declare(&broker, Provider::M365).await?;
        let keyring = Arc::new(KeyRing::new(
            deps.db().clone(),
            MasterKey::from_secret(&keys.master_key()?),
            std::time::Duration::from_secs(60),
        ));
        let reader = Reader::new(deps.db().clone(), deps.store().clone(), keyring.clone());
        let publisher = Arc::new(WorkPublisher::new(&broker, transport).await?);
        let m = &settings.m365;
        let app = match (&m.client_id, &m.client_secret) {
            (Some(id), Some(secret)) => Some(AppCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
            }),
            _ => None,
        };
        let connector = Arc::new(Connector {
            db: deps.db().clone(),
            publisher,
            service: master.service_key(),
            blind: master.blind_index_key(),
            endpoints: Endpoints {
                authority: m.authority_url.clone(),
                graph: m.graph_url.clone(),
            },
            app,
            settings: m.backup.clone(),
            keys: keyring,
            reader,
            instance: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "m365".into()),
                std::process::id()
            ),
        });
        let ops = OpsServer::bind(SERVICE, m.listen, "m365.listen", &deps).await?;
        Ok(Self {
            connector,
            broker,
            queue,
            restores,
            ops,
        })
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn ops_addr(&self) -> SocketAddr {
        self.ops.local_addr()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let (ops_stop_tx, ops_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ops = tokio::spawn(self.ops.serve(async move {
            let _ = ops_stop_rx.await;
        }));
        let served = jobs::serve_connector(
            self.connector.clone(),
            &self.broker,
            &self.queue,
            &self.restores,
            self.connector.settings.max_concurrent_runs,
            shutdown,
        )
        .await;
        let _ = ops_stop_tx.send(());
        ops.await
            .map_err(|e| StartError::Other(format!("the ops server panicked: {e}")))??;
        served.map_err(|e| StartError::Other(format!("the connector stopped: {e}")))
    }
}
