//! Carrying out one backup run of a Microsoft 365 connection: take the
//! connection's lease, refresh its accounts from the directory, walk every
//! included account's mail, calendar and OneDrive, wait until the worker
//! has stored what was published, and record how it went.

use std::sync::Arc;
use std::time::Duration;

use arkiv_backup::record::{RunErrorEntry, RunRecord};
use arkiv_backup::request::RunRequest;
use arkiv_backup::restore::RestoreError;
use arkiv_backup::run::{Backup, RunError, Runner, Walked};
use arkiv_config::ConnectorSettings;
use arkiv_crypto::{BlindIndexKey, ServiceKey};
use arkiv_db::accounts::{AccountKeys, SourceUser};
use arkiv_db::entity::{connections, protected_accounts, tenants};
use arkiv_db::sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use arkiv_domain::{Provider, Workload};
use arkiv_provider::m365::{AppCredentials, Endpoints};
use arkiv_provider::secrets::ConnectionSecrets;
use arkiv_queue::WorkPublisher;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use tokio::sync::watch;

use crate::graph::{Graph, GraphError, Limits};
use crate::walk::{Account, RunScope, WalkError};

/// Everything a connector instance shares between its runs.
#[derive(Debug)]
pub struct Connector {
    pub db: DatabaseConnection,
    pub publisher: Arc<WorkPublisher>,
    pub service: ServiceKey,
    pub blind: BlindIndexKey,
    pub endpoints: Endpoints,
    /// Arkiv's own app registration, for connections without their own.
    pub app: Option<AppCredentials>,
    pub settings: ConnectorSettings,
    /// Tenants' keys and the reader, for restores.
    pub keys: Arc<arkiv_vault::keyring::KeyRing>,
    pub reader: arkiv_vault::reader::Reader,
    /// This instance's name in leases and runs.
    pub instance: String,
}

impl Connector {
    /// Carry out a requested run to its end (or until `stop`). A run
    /// another instance started and abandoned is resumed from its cursors.
    pub async fn carry_out(
        &self,
        request: &RunRequest,
        stop: watch::Receiver<bool>,
    ) -> Result<(), RunError> {
        Runner {
            db: &self.db,
            publisher: &self.publisher,
            provider: Provider::M365,
            instance: &self.instance,
            lease_ttl: Duration::from_secs(self.settings.lease_ttl_secs),
            settle_timeout: Duration::from_secs(self.settings.settle_timeout_secs),
        }
        .carry_out(request, stop, self)
        .await
    }

    /// A Graph client for an active connection, with its own app
    /// registration or Arkiv's; `Err` says what is wrong with it.
    pub fn graph(
        &self,
        connection: &connections::Model,
        record: Option<Arc<RunRecord>>,
    ) -> Result<Graph, String> {
        let (ms_tenant, secrets) = ConnectionSecrets::of_active(
            &self.service,
            connection.id,
            &connection.status,
            connection.external_id.as_deref(),
            connection.credentials_sealed.as_deref(),
            "the connection has no Microsoft tenant yet: finish consent",
        )?;
        let credentials = match (secrets.m365_client_id, secrets.m365_client_secret) {
            (Some(client_id), Some(secret)) => AppCredentials {
                client_id,
                client_secret: secret.into(),
            },
            _ => self.app.clone().ok_or(
                "no app registration: this deployment has no m365.client_id and the connection none of its own",
            )?,
        };
        Ok(Graph::new(
            self.endpoints.clone(),
            ms_tenant,
            credentials,
            Limits {
                mailbox_concurrency: self.settings.mailbox_concurrency,
                requests_per_second: self.settings.requests_per_second,
                max_attempts: self.settings.max_attempts,
            },
            record,
        ))
    }

    /// Carry out a restore job. A job that cannot be started (its
    /// connection is gone or broken) is failed with the reason; `Err` only
    /// when our side fails (the database), for a later retry.
    pub async fn restore(&self, job_id: uuid::Uuid) -> Result<(), RestoreError> {
        let connection = arkiv_backup::restore::connection_of(&self.db, job_id).await?;
        let graph = match connection.as_ref().map(|c| self.graph(c, None)) {
            Some(Ok(g)) => Arc::new(g),
            Some(Err(why)) => {
                arkiv_backup::restore::refuse(&self.db, job_id, crate::SERVICE, &why).await?;
                return Ok(());
            }
            None => return Ok(()),
        };
        let target = crate::restore::GraphRestore::new(graph, self.reader.clone());
        arkiv_backup::restore::carry_out(
            &self.db,
            &self.service,
            &self.keys,
            crate::SERVICE,
            job_id,
            &target,
        )
        .await?;
        Ok(())
    }

    /// The run's work; `Err` is why it failed as a whole.
    async fn backup(&self, record: &Arc<RunRecord>) -> Result<Walked, String> {
        let connection = connections::Entity::find_by_id(record.connection_id)
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the connection no longer exists")?;
        let tenant = tenants::Entity::find_by_id(record.tenant_id)
            .one(&self.db)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the tenant no longer exists")?;
        let graph = Arc::new(self.graph(&connection, Some(record.clone()))?);
        let region = tenant
            .region
            .parse()
            .map_err(|e| format!("tenant region: {e}"))?;

        // The directory first: new users become protected accounts.
        let users = graph.users().await.map_err(|e| match e {
            GraphError::Token(e) => format!("Microsoft refused Arkiv's access: {e}"),
            other => format!("the directory could not be read: {other}"),
        })?;
        let source: Vec<SourceUser> = users
            .into_iter()
            .map(|u| SourceUser {
                external_id: u.id,
                email: u.email,
            })
            .collect();
        arkiv_db::accounts::sync(
            &self.db,
            &AccountKeys {
                blind: &self.blind,
                seal: &self.service,
            },
            tenant.id,
            connection.id,
            &source,
            tenant.include_new_accounts,
        )
        .await
        .map_err(|e| e.to_string())?;
        let accounts: Vec<Account> = protected_accounts::Entity::find()
            .filter(protected_accounts::Column::ConnectionId.eq(connection.id))
            .filter(protected_accounts::Column::Included.eq(true))
            .filter(protected_accounts::Column::RemovedAtSource.is_null())
            .all(&self.db)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|a| Account {
                id: a.id,
                external_id: a.external_id,
            })
            .collect();

        let scope = RunScope {
            db: self.db.clone(),
            graph,
            publisher: self.publisher.clone(),
            region,
            record: record.clone(),
            page_size: self.settings.page_size,
            fetch_concurrency: self.settings.mailbox_concurrency,
            calendar_past_days: self.settings.calendar_past_days,
            calendar_future_days: self.settings.calendar_future_days,
            sweeps: Arc::default(),
        };
        let mut queue = accounts.iter();
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < self.settings.accounts_in_parallel.max(1) {
                match queue.next() {
                    Some(account) => running.push(account_backup(&scope, account)),
                    None => break,
                }
            }
            match running.next().await {
                Some(result) => result?,
                None => break,
            }
        }
        drop(running);
        let sweeps = std::mem::take(&mut *scope.sweeps.lock().expect("sweeps lock"));
        Ok(Walked {
            region: scope.region,
            sweeps,
        })
    }
}

impl Backup for Connector {
    async fn walk(&self, record: &Arc<RunRecord>) -> Result<Walked, String> {
        self.backup(record).await
    }
}

impl arkiv_backup::jobs::Connector for Connector {
    async fn run(&self, request: RunRequest, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        self.carry_out(&request, stop).await
    }

    async fn restore(&self, job: uuid::Uuid) -> Result<(), RestoreError> {
        Connector::restore(self, job).await
    }
}

/// One account's three workloads, side by side. A workload Graph refuses
/// is recorded against the account; the others carry on. `Err` only when
/// our side fails (database, RabbitMQ).
async fn account_backup(scope: &RunScope, account: &Account) -> Result<(), String> {
    let (mail, calendar, drive) = tokio::join!(
        scope.mail(account),
        scope.calendar(account),
        scope.drive(account)
    );
    for (workload, result) in [
        (Workload::Mail, mail),
        (Workload::Calendar, calendar),
        (Workload::Drive, drive),
    ] {
        match result {
            Ok(()) => {}
            // An unlicensed user has no mailbox (and so no calendar), or
            // no OneDrive: nothing to back up there, and not a failure.
            Err(WalkError::Graph(e)) if e.means_no_service(workload) => {
                tracing::info!(account = %account.id, %workload, code = %e.code(), "nothing to back up: the account has none");
            }
            Err(WalkError::Graph(e)) => scope
                .record
                .error(RunErrorEntry {
                    account_id: Some(account.id),
                    workload: Some(workload),
                    code: e.code(),
                    request_id: e.request_id(),
                    message: e.to_string(),
                    ..RunErrorEntry::default()
                })
                .await
                .map_err(|e| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}
