use std::sync::Arc;

use arkiv_db::sea_orm::DatabaseConnection;
use arkiv_queue::Broker;
use arkiv_store::ObjectStore;

use crate::{Settings, StartError};

/// Which dependencies a service needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Needs {
    pub database: bool,
    pub rabbitmq: bool,
    pub s3: bool,
}

impl Needs {
    pub const ALL: Needs = Needs {
        database: true,
        rabbitmq: true,
        s3: true,
    };
}

/// The live connections of a service. A field is `Some` exactly when the
/// service asked for it in [`Needs`].
#[derive(Clone, Debug, Default)]
pub struct Deps {
    pub db: Option<DatabaseConnection>,
    pub broker: Option<Arc<Broker>>,
    pub store: Option<ObjectStore>,
}

impl Deps {
    /// Connect to what `needs` lists, failing on the first dependency that
    /// is missing from configuration or unreachable. Every needed setting is
    /// checked before anything is connected, so a configuration mistake is
    /// reported as such and not as whatever connection happened to fail.
    pub async fn connect(settings: &Settings, needs: Needs) -> Result<Self, StartError> {
        let database = needs.database.then(|| settings.database()).transpose()?;
        let rabbitmq = needs.rabbitmq.then(|| settings.rabbitmq()).transpose()?;
        let s3 = needs.s3.then(|| settings.s3()).transpose()?;

        let mut deps = Deps::default();
        if let Some(database) = database {
            let db = arkiv_db::connect(database).await?;
            arkiv_db::ensure_migrated(&db).await?;
            tracing::info!("connected to PostgreSQL");
            deps.db = Some(db);
        }
        if let Some(rabbitmq) = rabbitmq {
            let broker = Broker::connect(rabbitmq).await?;
            tracing::info!("connected to RabbitMQ");
            deps.broker = Some(Arc::new(broker));
        }
        if let Some(s3) = s3 {
            let store = ObjectStore::new(s3);
            store.check().await?;
            tracing::info!(regions = store.regions().count(), "S3 buckets reachable");
            deps.store = Some(store);
        }
        Ok(deps)
    }

    pub fn db(&self) -> &DatabaseConnection {
        self.db.as_ref().expect("service declared Needs::database")
    }

    pub fn broker(&self) -> &Arc<Broker> {
        self.broker
            .as_ref()
            .expect("service declared Needs::rabbitmq")
    }

    pub fn store(&self) -> &ObjectStore {
        self.store.as_ref().expect("service declared Needs::s3")
    }
}
