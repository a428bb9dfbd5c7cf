//! What every handler shares: the database, the keys, the regions, and
//! the providers' endpoints and Arkiv's own credentials with them.

use std::sync::Arc;

use arkiv_crypto::{BlindIndexKey, MasterKey, ServiceKey, SigningKey};
use arkiv_db::sea_orm::DatabaseConnection;
use arkiv_domain::{Provider, Region};
use arkiv_provider::google::ServiceAccount;
use arkiv_provider::m365::{AppCredentials, Endpoints};
use arkiv_queue::{Broker, Publisher};
use arkiv_runtime::{Settings, StartError};
use arkiv_store::ObjectStore;
use arkiv_vault::keyring::KeyRing;
use arkiv_vault::reader::Reader;
use url::Url;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub db: DatabaseConnection,
    pub master: MasterKey,
    pub service: ServiceKey,
    pub blind: BlindIndexKey,
    /// Signs OAuth `state` values.
    pub signing: SigningKey,
    pub regions: Vec<Region>,
    pub public_url: Url,
    pub m365: Endpoints,
    /// Arkiv's multi-tenant app registration, if configured.
    pub m365_app: Option<AppCredentials>,
    pub google_api_root: Url,
    /// Arkiv's service account, if configured.
    pub google_sa: Option<ServiceAccount>,
    pub http: reqwest::Client,
    /// Where run requests go.
    pub runs: RunQueue,
    /// Tenants' keys, for search and export (which open sealed metadata
    /// and content inside the tenant's scope).
    pub keys: Arc<KeyRing>,
    /// Streams versions' content back, verified.
    pub reader: Reader,
    /// Grace periods of ends and exclusions.
    pub lifecycle: arkiv_config::LifecycleSettings,
}

/// Publishes run requests and restore jobs to the providers' queues
/// (confirmed).
#[derive(Debug)]
pub struct RunQueue {
    broker: Arc<Broker>,
    publisher: Publisher,
    /// Restore queues declared so far (each on first use).
    restore_queues: tokio::sync::Mutex<Vec<Provider>>,
}

impl RunQueue {
    pub async fn new(broker: Arc<Broker>) -> Result<Self, StartError> {
        arkiv_backup::request::declare(&broker, Provider::M365).await?;
        let publisher = broker.publisher().await?;
        Ok(Self {
            broker,
            publisher,
            restore_queues: tokio::sync::Mutex::default(),
        })
    }

    pub async fn publish(
        &self,
        provider: Provider,
        request: &arkiv_backup::request::RunRequest,
    ) -> Result<(), arkiv_queue::QueueError> {
        arkiv_backup::request::publish(&self.broker, &self.publisher, provider, request).await
    }

    pub async fn publish_restore(
        &self,
        provider: Provider,
        message: &arkiv_backup::restore::RestoreMessage,
    ) -> Result<(), arkiv_queue::QueueError> {
        let mut declared = self.restore_queues.lock().await;
        if !declared.contains(&provider) {
            arkiv_backup::restore::declare(&self.broker, provider).await?;
            declared.push(provider);
        }
        drop(declared);
        arkiv_backup::restore::publish(&self.broker, &self.publisher, provider, message).await
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        settings: &Settings,
        db: DatabaseConnection,
        store: ObjectStore,
        runs: RunQueue,
    ) -> Result<Self, StartError> {
        let master = MasterKey::from_secret(&settings.keys()?.master_key()?);
        let keys = Arc::new(KeyRing::new(
            db.clone(),
            MasterKey::from_secret(&settings.keys()?.master_key()?),
            std::time::Duration::from_secs(60),
        ));
        let reader = Reader::new(db.clone(), store, keys.clone());
        let m365_app = match (&settings.m365.client_id, &settings.m365.client_secret) {
            (Some(id), Some(secret)) => Some(AppCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(arkiv_config::ConfigError::missing("m365.client_secret").into())
            }
            (None, Some(_)) => {
                return Err(arkiv_config::ConfigError::missing("m365.client_id").into())
            }
        };
        let google_sa = match &settings.google.service_account_file {
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
        Ok(Self(Arc::new(Inner {
            db,
            service: master.service_key(),
            blind: master.blind_index_key(),
            signing: master.signing_key(),
            master,
            regions: settings.regions()?,
            public_url: settings.api.public_url.clone(),
            m365: Endpoints {
                authority: settings.m365.authority_url.clone(),
                graph: settings.m365.graph_url.clone(),
            },
            m365_app,
            google_api_root: settings.google.api_root_url.clone(),
            google_sa,
            http: arkiv_provider::http_client(),
            runs,
            keys,
            reader,
            lifecycle: settings.lifecycle.clone(),
        })))
    }

    pub fn principal_keys(&self) -> arkiv_db::principals::PrincipalKeys<'_> {
        arkiv_db::principals::PrincipalKeys {
            blind: &self.blind,
            seal: &self.service,
        }
    }
}
