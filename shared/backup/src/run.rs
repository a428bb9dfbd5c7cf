//! Carrying out one backup run, whatever the provider: take the
//! connection's lease (renewed while working; losing it stops the run),
//! mark the run running, let the provider's [`Backup`] walk its accounts,
//! wait until the worker has stored what was published, send the sweeps
//! the walk asked for, and record how it went.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arkiv_domain::{Provider, Region, Workload};
use arkiv_queue::{ItemKey, WorkPublisher};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::watch;
use uuid::Uuid;

use crate::lease::Lease;
use crate::record::{RunErrorEntry, RunRecord};
use crate::request::RunRequest;
use crate::sink::PageSink;
use crate::{cursor, BackupError};

/// Deletions no listing reports one by one, to be sent as a
/// [`arkiv_queue::WorkItem::Sweep`] once every item of the run is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSweep {
    pub account: Uuid,
    pub workload: Workload,
    /// A mail folder, a calendar, a drive; `None` for the whole workload.
    pub container: Option<String>,
    /// The container was listed again in full (its cursor had expired):
    /// what this run saw stays. Otherwise the container is gone.
    pub resynced: bool,
    /// A gone container's cursor scope, dropped once its sweep is stored
    /// (until then a later run sends the sweep again).
    pub clear_cursor: Option<String>,
}

/// What a run's walk leaves to do once its items are stored.
#[derive(Debug)]
pub struct Walked {
    pub region: Region,
    pub sweeps: Vec<PendingSweep>,
}

/// A provider's side of a backup run.
pub trait Backup: Sync {
    /// Walk every included account of the run's connection, publishing
    /// work items through [`PageSink`]s and storing cursors after their
    /// pages are confirmed. `Err` is why the run failed as a whole (one
    /// account's failure is recorded against it and is not one).
    fn walk(&self, record: &Arc<RunRecord>) -> impl Future<Output = Result<Walked, String>> + Send;
}

/// Why a run could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("stopping")]
    Stopped,
}

/// What carrying out runs needs from the connector instance.
#[derive(Debug)]
pub struct Runner<'a> {
    pub db: &'a DatabaseConnection,
    pub publisher: &'a Arc<WorkPublisher>,
    pub provider: Provider,
    /// This instance's name in leases and runs.
    pub instance: &'a str,
    pub lease_ttl: Duration,
    /// How long a run waits for the worker to store what it published.
    pub settle_timeout: Duration,
}

impl Runner<'_> {
    /// Carry out a requested run to its end (or until `stop`). A run
    /// another instance started and abandoned is resumed from its cursors.
    pub async fn carry_out(
        &self,
        request: &RunRequest,
        mut stop: watch::Receiver<bool>,
        backup: &impl Backup,
    ) -> Result<(), RunError> {
        let ttl = self.lease_ttl.max(Duration::from_secs(3));
        let lease = loop {
            if let Some(lease) =
                Lease::try_acquire(self.db, request.connection_id, self.instance, ttl).await?
            {
                break lease;
            }
            tracing::info!(connection = %request.connection_id, "connection leased elsewhere; waiting");
            tokio::select! {
                _ = tokio::time::sleep(ttl / 4) => {}
                _ = stop.wait_for(|s| *s) => return Err(RunError::Stopped),
            }
        };
        let Some(record) = RunRecord::start(self.db, request.run_id, self.instance).await? else {
            tracing::info!(run = %request.run_id, "run already finished");
            lease.release().await?;
            return Ok(());
        };
        let record = Arc::new(record);
        tracing::info!(run = %record.run_id, connection = %record.connection_id, "run started");

        // Renew the lease while working; losing it stops the run.
        let (lost_tx, mut lost) = watch::channel(false);
        let renewer = {
            let lease = lease.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease.ttl / 3).await;
                    if !matches!(lease.renew().await, Ok(true)) {
                        let _ = lost_tx.send(true);
                        return;
                    }
                }
            })
        };
        let outcome = tokio::select! {
            r = backup.walk(&record) => r,
            _ = stop.wait_for(|s| *s) => {
                renewer.abort();
                return Err(RunError::Stopped);
            }
            _ = lost.wait_for(|l| *l) => {
                tracing::warn!(run = %record.run_id, "lease lost; another instance carries on");
                return Err(RunError::Stopped);
            }
        };
        renewer.abort();
        let fatal = match outcome {
            Ok(walked) => {
                self.settle(&record, &walked).await?;
                None
            }
            Err(reason) => Some(reason),
        };
        let result = record.finish(fatal).await?;
        tracing::info!(
            run = %record.run_id,
            outcome = result.as_str(),
            items = record.items(),
            errors = record.errors(),
            "run finished"
        );
        lease.release().await?;
        Ok(())
    }

    /// Wait for the worker, then send the sweeps. Sweeps judge what the run
    /// saw, so they wait until all of it is stored; a sweep not sent now is
    /// sent by a later run (a gone container keeps its cursor until swept).
    async fn settle(&self, record: &Arc<RunRecord>, walked: &Walked) -> Result<(), RunError> {
        let mut settled = record.wait_settled(self.settle_timeout).await?;
        if settled && !walked.sweeps.is_empty() {
            self.sweep(record, walked).await?;
            settled = record.wait_settled(self.settle_timeout).await?;
            if settled {
                for gone in &walked.sweeps {
                    if let Some(scope) = &gone.clear_cursor {
                        cursor::clear(self.db, gone.account, gone.workload, scope).await?;
                    }
                }
            }
        }
        if !settled {
            record
                .error(RunErrorEntry {
                    code: "notYetStored".into(),
                    message: format!(
                        "the worker had not stored every item {}s after the last was published; \
                         they are safe in the queue and will be stored",
                        self.settle_timeout.as_secs()
                    ),
                    ..RunErrorEntry::default()
                })
                .await?;
        }
        Ok(())
    }

    /// Publish the run's sweeps and wait for their confirms.
    async fn sweep(&self, record: &Arc<RunRecord>, walked: &Walked) -> Result<(), BackupError> {
        let mut sink = PageSink::new(
            self.publisher.clone(),
            walked.region.clone(),
            record.clone(),
        );
        for s in &walked.sweeps {
            let account = ItemKey {
                tenant_id: record.tenant_id,
                connection_id: record.connection_id,
                account_id: s.account,
                provider: self.provider,
                workload: s.workload,
                source_id: String::new(),
            };
            sink.sweep(&account, s.container.clone(), s.resynced)
                .await?;
        }
        sink.commit().await
    }
}
