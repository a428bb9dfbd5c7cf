//! Restore jobs, the parts that do not depend on the provider.
//!
//! The API records a job in `restore_jobs` with its request sealed (it
//! may name a target mailbox and a folder), lists the versions to write
//! back in `restore_items`, and publishes `{job_id, tenant_id}` to
//! `{prefix}.restores.{provider}`. The provider's connector holds the
//! credentials and carries the job out with [`carry_out`], which asks a
//! [`RestoreTarget`] to write each version back.
//!
//! Idempotency: an item is marked `started` before the provider is written
//! to and `restored` or `skipped` after. A job that is carried out again
//! (a redelivery after a crash, or a retry of a failed job) passes over
//! what is done and tells the target which items were started, so it
//! looks for the copy it may already have made instead of making another.

use std::future::Future;
use std::sync::Arc;

use arkiv_crypto::ServiceKey;
use arkiv_db::audit::{self, Actor, Entry, Outcome};
use arkiv_domain::{Provider, Workload};
use arkiv_queue::{Broker, Publisher, QueueError};
use arkiv_vault::keyring::{KeyRing, TenantContext};
use arkiv_vault::search::{self, Found};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

/// What goes on the queue: ids only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreMessage {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
}

impl RestoreMessage {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a restore message: {e}"))
    }
}

/// The local name of a provider's restore queue.
pub fn queue(provider: Provider) -> String {
    format!("restores.{}", provider.as_str())
}

/// Declare a provider's restore queue (idempotent); returns its full name.
pub async fn declare(broker: &Broker, provider: Provider) -> Result<String, QueueError> {
    broker.declare_quorum_queue(&queue(provider)).await
}

/// Publish a restore job, confirmed.
pub async fn publish(
    broker: &Broker,
    publisher: &Publisher,
    provider: Provider,
    message: &RestoreMessage,
) -> Result<(), QueueError> {
    crate::jobs::publish_json(broker, publisher, &queue(provider), message).await
}

/// What to do when the target already holds the item (the same message,
/// a file of the same name at the path).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collision {
    /// Leave what is there; the item counts as skipped.
    #[default]
    Skip,
    /// Write the item beside it, under a new name (a second copy of mail).
    Rename,
    /// Replace what is there.
    Overwrite,
}

impl Collision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Collision::Skip => "skip",
            Collision::Rename => "rename",
            Collision::Overwrite => "overwrite",
        }
    }
}

impl std::str::FromStr for Collision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(Collision::Skip),
            "rename" => Ok(Collision::Rename),
            "overwrite" => Ok(Collision::Overwrite),
            other => Err(format!(
                "unknown collision policy {other:?}: skip, rename or overwrite"
            )),
        }
    }
}

/// What a job was asked, sealed in `restore_jobs.request_sealed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// What every item of the job is: mail, calendar or drive.
    pub workload: Workload,
    /// The protected account written to.
    pub target_account: Uuid,
    pub collision: Collision,
    /// A point-in-time restore: the folder (if one) and the time.
    pub folder: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

fn request_aad(job: Uuid) -> Vec<u8> {
    [b"arkiv restore request ".as_slice(), job.as_bytes()].concat()
}

impl RestoreRequest {
    pub fn seal(&self, key: &ServiceKey, job: Uuid) -> Vec<u8> {
        let plain = serde_json::to_vec(self).expect("a restore request serialises");
        key.seal(&plain, &request_aad(job))
    }

    pub fn open(key: &ServiceKey, job: Uuid, sealed: &[u8]) -> Result<Self, RestoreError> {
        let plain = key
            .open(sealed, &request_aad(job))
            .map_err(|e| RestoreError::Request(e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|e| RestoreError::Request(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("the job's request cannot be read: {0}")]
    Request(String),
    #[error(transparent)]
    Vault(#[from] arkiv_vault::VaultError),
    #[error(transparent)]
    Search(#[from] search::SearchError),
}

/// A job as a connector carries it out.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub request: RestoreRequest,
    /// The target account's id at the provider (a Graph user id, a Google
    /// user's numeric id).
    pub target_external_id: String,
    /// The target account's address (Google acts as a user by address).
    pub target_email: String,
}

/// One version to write back.
#[derive(Clone, Debug)]
pub struct Item {
    pub version: Found,
    /// An earlier attempt may have written it before it could be recorded:
    /// look for that copy first.
    pub maybe_written: bool,
}

/// What became of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// Written; the provider's id of the new item.
    Restored(String),
    /// Already there (the collision policy said so, or an earlier attempt
    /// wrote it); the provider's id of what is there.
    Skipped(Option<String>),
}

/// Why an item could not be restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// A short code (the provider's error code, or Arkiv's).
    pub code: String,
    /// What went wrong and what to do; no personal data.
    pub message: String,
    pub request_id: Option<String>,
    /// Every other item would fail the same way (no access to the target
    /// account): the job stops with this as its error.
    pub fatal: bool,
}

impl Failure {
    pub fn item(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            request_id: None,
            fatal: false,
        }
    }

    fn describe(&self) -> String {
        match &self.request_id {
            Some(id) => format!("{}: {} (request id {id})", self.code, self.message),
            None => format!("{}: {}", self.code, self.message),
        }
    }
}

/// A provider's side of a restore.
pub trait RestoreTarget: Sync {
    /// Check that the target account can be written before anything is;
    /// an error fails the job with nothing written.
    fn preflight(&self, job: &Job) -> impl Future<Output = Result<(), Failure>> + Send;

    /// Write one version back, as the job's collision policy says.
    fn restore(
        &self,
        job: &Job,
        ctx: &TenantContext,
        item: &Item,
    ) -> impl Future<Output = Result<Done, Failure>> + Send;
}

#[derive(Debug, FromQueryResult)]
struct JobRow {
    id: Uuid,
    tenant_id: Uuid,
    connection_id: Option<Uuid>,
    state: String,
    created_at: DateTime<Utc>,
    request_sealed: Vec<u8>,
}

#[derive(Debug, FromQueryResult)]
struct ItemRow {
    version_id: Uuid,
    state: String,
}

/// Items written side by side: the mailbox allows four requests at once,
/// and an item costs about two.
const IN_FLIGHT: usize = 2;

/// Carry out a job to its end. Returns `false` if there was nothing to do
/// (the job is finished or gone).
pub async fn carry_out(
    db: &DatabaseConnection,
    service: &ServiceKey,
    keys: &Arc<KeyRing>,
    actor: &str,
    job_id: Uuid,
    target: &impl RestoreTarget,
) -> Result<bool, RestoreError> {
    let Some(row) = JobRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, tenant_id, connection_id, state, created_at, request_sealed
           FROM restore_jobs WHERE id = $1",
        [job_id.into()],
    ))
    .one(db)
    .await?
    else {
        return Ok(false);
    };
    if !matches!(row.state.as_str(), "queued" | "running") {
        return Ok(false);
    }
    let request = RestoreRequest::open(service, row.id, &row.request_sealed)?;
    let account = target_account(db, service, request.target_account).await?;
    let (Some(connection_id), Some((target_external_id, target_email))) =
        (row.connection_id, account)
    else {
        let why = "the target account or its connection is gone: nothing was restored";
        finish(db, row.id, row.tenant_id, actor, Some(why.into())).await?;
        return Ok(true);
    };
    let job = Job {
        id: row.id,
        tenant_id: row.tenant_id,
        connection_id,
        created_at: row.created_at,
        request,
        target_external_id,
        target_email,
    };
    exec(
        db,
        "UPDATE restore_jobs SET state = 'running', attempts = attempts + 1,
             started_at = COALESCE(started_at, now()), error = NULL WHERE id = $1",
        vec![job.id.into()],
    )
    .await?;
    tracing::info!(job = %job.id, tenant = %job.tenant_id, "restore job started");
    if let Err(failure) = target.preflight(&job).await {
        tracing::warn!(job = %job.id, code = %failure.code, "restore target refused");
        finish(db, job.id, job.tenant_id, actor, Some(failure.describe())).await?;
        return Ok(true);
    }
    let ctx = keys.get(job.tenant_id).await?;
    let todo = ItemRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT version_id, state FROM restore_items
          WHERE job_id = $1 AND state IN ('pending', 'started') ORDER BY seq",
        [job.id.into()],
    ))
    .all(db)
    .await?;
    let mut fatal: Option<String> = None;
    let mut results = stream::iter(todo)
        .map(|row| {
            let (job, ctx) = (&job, &ctx);
            async move {
                let outcome = restore_one(db, target, job, ctx, &row).await;
                (row.version_id, outcome)
            }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((version, outcome)) = results.next().await {
        match outcome? {
            Ok(done) => {
                let (state, target_ref, column) = match done {
                    Done::Restored(r) => ("restored", Some(r), "items_done"),
                    Done::Skipped(r) => ("skipped", r, "items_skipped"),
                };
                mark(db, job.id, version, state, target_ref, None, column).await?;
            }
            Err(failure) => {
                tracing::warn!(job = %job.id, %version, code = %failure.code, "item not restored");
                mark(
                    db,
                    job.id,
                    version,
                    "failed",
                    None,
                    Some(failure.describe()),
                    "items_failed",
                )
                .await?;
                if failure.fatal {
                    fatal = Some(failure.describe());
                    break;
                }
            }
        }
    }
    drop(results);
    finish(db, job.id, job.tenant_id, actor, fatal).await?;
    Ok(true)
}

/// The connection a job restores through, if the job and it exist.
pub async fn connection_of(
    db: &DatabaseConnection,
    job: Uuid,
) -> Result<Option<arkiv_db::entity::connections::Model>, DbErr> {
    use sea_orm::EntityTrait;
    #[derive(FromQueryResult)]
    struct Row {
        connection_id: Option<Uuid>,
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT connection_id FROM restore_jobs WHERE id = $1",
        [job.into()],
    ))
    .one(db)
    .await?;
    match row.and_then(|r| r.connection_id) {
        Some(id) => {
            arkiv_db::entity::connections::Entity::find_by_id(id)
                .one(db)
                .await
        }
        None => Ok(None),
    }
}

/// Fail a job that cannot be started (its connection is broken), with the
/// reason; nothing was written.
pub async fn refuse(
    db: &DatabaseConnection,
    job: Uuid,
    actor: &str,
    why: &str,
) -> Result<(), RestoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        tenant_id: Uuid,
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT tenant_id FROM restore_jobs WHERE id = $1 AND state IN ('queued', 'running')",
        [job.into()],
    ))
    .one(db)
    .await?;
    if let Some(row) = row {
        finish(db, job, row.tenant_id, actor, Some(why.to_owned())).await?;
    }
    Ok(())
}

async fn restore_one(
    db: &DatabaseConnection,
    target: &impl RestoreTarget,
    job: &Job,
    ctx: &TenantContext,
    row: &ItemRow,
) -> Result<Result<Done, Failure>, RestoreError> {
    let Some(version) = search::version(db, ctx, row.version_id).await? else {
        return Ok(Err(Failure::item(
            "versionGone",
            "the version left the backup (retention or erasure) before it was restored",
        )));
    };
    exec(
        db,
        "UPDATE restore_items SET state = 'started', updated_at = now()
          WHERE job_id = $1 AND version_id = $2",
        vec![job.id.into(), row.version_id.into()],
    )
    .await?;
    let item = Item {
        version,
        maybe_written: row.state == "started",
    };
    Ok(target.restore(job, ctx, &item).await)
}

/// The target account's provider id and address (opened with the
/// service key, as `arkiv_db::accounts` seals it).
async fn target_account(
    db: &DatabaseConnection,
    service: &ServiceKey,
    account: Uuid,
) -> Result<Option<(String, String)>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        external_id: String,
        email_sealed: Vec<u8>,
    }
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT external_id, email_sealed FROM protected_accounts WHERE id = $1",
        [account.into()],
    ))
    .one(db)
    .await?;
    Ok(row.map(|r| {
        let email = service
            .open(&r.email_sealed, account.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        (r.external_id, email)
    }))
}

async fn exec(
    db: &impl ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<(), DbErr> {
    db.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await?;
    Ok(())
}

async fn mark(
    db: &DatabaseConnection,
    job: Uuid,
    version: Uuid,
    state: &str,
    target_ref: Option<String>,
    error: Option<String>,
    counter: &str,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    exec(
        &txn,
        "UPDATE restore_items SET state = $3, target_ref = COALESCE($4, target_ref), error = $5,
             updated_at = now() WHERE job_id = $1 AND version_id = $2",
        vec![
            job.into(),
            version.into(),
            state.into(),
            target_ref.into(),
            error.into(),
        ],
    )
    .await?;
    // `counter` is one of three column names chosen above, never input.
    exec(
        &txn,
        &format!("UPDATE restore_jobs SET {counter} = {counter} + 1 WHERE id = $1"),
        vec![job.into()],
    )
    .await?;
    txn.commit().await
}

#[derive(Debug, FromQueryResult)]
struct Counts {
    restored: i64,
    skipped: i64,
    failed: i64,
    pending: i64,
    total: i64,
}

/// Settle the job's state from its items, and audit how it ended with the
/// items it touched.
async fn finish(
    db: &DatabaseConnection,
    job: Uuid,
    tenant: Uuid,
    actor: &str,
    error: Option<String>,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let counts = Counts::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT count(*) FILTER (WHERE state = 'restored') AS restored,
                count(*) FILTER (WHERE state = 'skipped') AS skipped,
                count(*) FILTER (WHERE state = 'failed') AS failed,
                count(*) FILTER (WHERE state IN ('pending', 'started')) AS pending,
                count(*) AS total
           FROM restore_items WHERE job_id = $1",
        [job.into()],
    ))
    .one(&txn)
    .await?
    .expect("an aggregate has a row");
    let done = counts.restored + counts.skipped;
    let state = if error.is_none() && counts.failed == 0 && counts.pending == 0 {
        "succeeded"
    } else if done > 0 {
        "partially_failed"
    } else {
        "failed"
    };
    let error = error.or_else(|| {
        (counts.failed > 0).then(|| {
            format!(
                "{} of {} items could not be restored (see the job's items); retry the job to try them again",
                counts.failed, counts.total
            )
        })
    });
    exec(
        &txn,
        "UPDATE restore_jobs SET state = $2, finished_at = now(), error = $3,
             items_done = $4, items_skipped = $5, items_failed = $6 WHERE id = $1",
        vec![
            job.into(),
            state.into(),
            error.clone().into(),
            counts.restored.into(),
            counts.skipped.into(),
            counts.failed.into(),
        ],
    )
    .await?;
    #[derive(FromQueryResult)]
    struct Touched {
        item_id: Uuid,
        state: String,
    }
    let touched = Touched::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT v.item_id, r.state FROM restore_items r JOIN item_versions v ON v.id = r.version_id
          WHERE r.job_id = $1 ORDER BY r.seq",
        [job.into()],
    ))
    .all(&txn)
    .await?;
    let ids = |s: &str| -> Vec<String> {
        touched
            .iter()
            .filter(|t| t.state == s)
            .map(|t| t.item_id.to_string())
            .collect()
    };
    audit::append(
        &txn,
        Entry {
            tenant_id: Some(tenant),
            actor: Actor {
                id: None,
                role: Some(actor.to_owned()),
            },
            target: Some(job.to_string()),
            details: json!({
                "state": state,
                "restored": ids("restored"),
                "skipped": ids("skipped"),
                "failed": ids("failed"),
            }),
            ..Entry::new(
                "restore.finish",
                if state == "failed" {
                    Outcome::Failed
                } else {
                    Outcome::Success
                },
            )
        },
    )
    .await?;
    txn.commit().await?;
    tracing::info!(%job, state, restored = counts.restored, skipped = counts.skipped, failed = counts.failed, "restore job finished");
    metrics::counter!("arkiv_restore_jobs_total", "state" => state).increment(1);
    metrics::counter!("arkiv_restore_items_total", "outcome" => "restored")
        .increment(counts.restored as u64);
    Ok(())
}
