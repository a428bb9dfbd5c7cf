//! connector-google: carries out Google Workspace backup runs and
//! restores. It consumes run requests from `{prefix}.runs.google`, takes
//! the connection's lease, lists the domain's users into protected
//! accounts, follows each account's Gmail history, Drive changes (My Drive,
//! and every shared drive once) and Calendar sync tokens ([`walk`]), and
//! publishes work items for the worker through the pipeline's queues. It
//! consumes restore jobs from `{prefix}.restores.google` and writes items
//! back ([`restore`]).
//!
//! Starts, connects to what it needs (PostgreSQL, RabbitMQ, S3), serves
//! `/healthz` and `/metrics` on `google.listen`, and stops cleanly on
//! SIGTERM/SIGINT (runs and restores in progress are resumed by the next
//! instance: their messages stay unacknowledged until they end).

pub mod google;
pub mod restore;
pub mod run;
pub mod walk;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arkiv_backup::jobs;
use arkiv_crypto::{MasterKey, TransportKey};
use arkiv_domain::Provider;
use arkiv_provider::google::ServiceAccount;
use arkiv_queue::{Broker, WorkPublisher};
use arkiv_runtime::{Deps, Needs, OpsServer, Settings, StartError};
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::reader::Reader;
use run::Connector;

pub const SERVICE: &str = "arkiv-connector-google";

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
    runs: String,
    restores: String,
    ops: OpsServer,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let keys = settings.keys()?;
        let master = MasterKey::from_secret(&keys.master_key()?);
        let transport = TransportKey::from_secret(&keys.transport_key()?);
        let g = &settings.google;
        let account = match &g.service_account_file {
            None => None,
            Some(path) => {
                let json = std::fs::read_to_string(path).map_err(|e| {
                    arkiv_config::ConfigError::invalid(
                        "google.service_account_file",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                Some(ServiceAccount::parse(&json).map_err(|e| {
                    arkiv_config::ConfigError::invalid("google.service_account_file", e)
                })?)
            }
        };
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
        let runs = arkiv_backup::request::declare(&broker, Provider::Google).await?;
        let restores = arkiv_backup::restore::declare(&broker, Provider::Google).await?;
        let publisher = Arc::new(WorkPublisher::new(&broker, transport).await?);
        let keyring = Arc::new(KeyRing::new(
            deps.db().clone(),
            MasterKey::from_secret(&keys.master_key()?),
            std::time::Duration::from_secs(60),
        ));
        let connector = Arc::new(Connector {
            db: deps.db().clone(),
            publisher,
            service: master.service_key(),
            blind: master.blind_index_key(),
            api_root: g.api_root_url.clone(),
            account,
            settings: g.backup.clone(),
            reader: Reader::new(deps.db().clone(), deps.store().clone(), keyring.clone()),
            keys: keyring,
            instance: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "google".into()),
                std::process::id()
            ),
        });
        let ops = OpsServer::bind(SERVICE, g.listen, "google.listen", &deps).await?;
        Ok(Self {
            connector,
            broker,
            runs,
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
            &self.runs,
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
