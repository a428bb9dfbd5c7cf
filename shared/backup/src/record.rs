//! A run's record: its state and counters in `runs`, errors in
//! `run_errors`. The connector that holds the run keeps the counters in
//! memory and writes them through [`RunRecord::flush`]; the worker adds
//! `settled`, `new_versions` and `bytes` in its own transactions.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use arkiv_domain::Workload;
use arkiv_queue::ItemKey;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::BackupError;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    PartiallyFailed,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::PartiallyFailed => "partially_failed",
            Outcome::Failed => "failed",
        }
    }
}

/// Items seen and bytes read, per workload (`runs.workload_counts`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadCounts {
    pub items: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counts {
    workloads: BTreeMap<String, WorkloadCounts>,
    published: u64,
    throttled_ms: u64,
    errors: u64,
}

/// One error of a run: an account's, or one item's.
#[derive(Clone, Debug, Default)]
pub struct RunErrorEntry {
    pub account_id: Option<Uuid>,
    pub workload: Option<Workload>,
    /// The provider's id of the item, if one item failed.
    pub item_ref: Option<String>,
    pub code: String,
    /// The provider's request id, for a support case.
    pub request_id: Option<String>,
    pub message: String,
}

#[derive(Debug, FromQueryResult)]
struct RunRow {
    tenant_id: Uuid,
    connection_id: Uuid,
    published: i64,
    errors: i32,
    throttled_ms: i64,
    workload_counts: serde_json::Value,
}

/// A run being carried out by this instance.
#[derive(Debug)]
pub struct RunRecord {
    db: DatabaseConnection,
    pub run_id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    counts: Mutex<Counts>,
}

impl RunRecord {
    /// Mark the run running (keeping its counters if another instance had
    /// started it and died). `None` if it has already finished: a request
    /// redelivered after its run completed.
    pub async fn start(
        db: &DatabaseConnection,
        run_id: Uuid,
        runner: &str,
    ) -> Result<Option<RunRecord>, BackupError> {
        let row = RunRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, now()), runner = $2
              WHERE id = $1 AND state IN ('queued', 'running')
             RETURNING tenant_id, connection_id, published, errors, throttled_ms, workload_counts",
            [run_id.into(), runner.into()],
        ))
        .one(db)
        .await?;
        let Some(row) = row else {
            let exists = db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT 1 FROM runs WHERE id = $1",
                    [run_id.into()],
                ))
                .await?;
            return match exists {
                Some(_) => Ok(None),
                None => Err(BackupError::UnknownRun(run_id)),
            };
        };
        let counts = Counts {
            workloads: serde_json::from_value(row.workload_counts).unwrap_or_default(),
            published: row.published.max(0) as u64,
            throttled_ms: row.throttled_ms.max(0) as u64,
            errors: row.errors.max(0) as u64,
        };
        Ok(Some(RunRecord {
            db: db.clone(),
            run_id,
            tenant_id: row.tenant_id,
            connection_id: row.connection_id,
            counts: Mutex::new(counts),
        }))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        f(&mut self.counts.lock().expect("run counters are never poisoned"))
    }

    /// An item seen at the source, with the bytes read for it.
    pub fn seen(&self, workload: Workload, bytes: u64) {
        self.with(|c| {
            let w = c.workloads.entry(workload.as_str().to_owned()).or_default();
            w.items += 1;
            w.bytes += bytes;
        });
        metrics::counter!("arkiv_connector_items_total", "workload" => workload.as_str())
            .increment(1);
        metrics::counter!("arkiv_connector_bytes_total", "workload" => workload.as_str())
            .increment(bytes);
    }

    /// Work items confirmed by RabbitMQ.
    pub fn published(&self, n: u64) {
        self.with(|c| c.published += n);
    }

    /// Time spent waiting because the provider throttled us.
    pub fn throttled(&self, waited: Duration) {
        self.with(|c| c.throttled_ms += waited.as_millis() as u64);
        metrics::counter!("arkiv_connector_throttled_seconds_total").increment(waited.as_secs());
    }

    pub fn errors(&self) -> u64 {
        self.with(|c| c.errors)
    }

    pub fn items(&self) -> u64 {
        self.with(|c| c.workloads.values().map(|w| w.items).sum())
    }

    /// Record an error against the run (and an account or item).
    pub async fn error(&self, entry: RunErrorEntry) -> Result<(), DbErr> {
        tracing::warn!(
            run = %self.run_id,
            account = ?entry.account_id,
            workload = ?entry.workload,
            item = ?entry.item_ref,
            code = %entry.code,
            request_id = ?entry.request_id,
            "{}", entry.message
        );
        metrics::counter!("arkiv_connector_errors_total").increment(1);
        self.with(|c| c.errors += 1);
        self.db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO run_errors (run_id, tenant_id, account_id, workload, item_ref, code, request_id, message)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    self.run_id.into(),
                    self.tenant_id.into(),
                    entry.account_id.into(),
                    entry.workload.map(|w| w.as_str().to_owned()).into(),
                    entry.item_ref.into(),
                    entry.code.into(),
                    entry.request_id.into(),
                    entry.message.into(),
                ],
            ))
            .await?;
        self.flush().await
    }

    /// Write the counters to the run's row (progress for `backup status`).
    pub async fn flush(&self) -> Result<(), DbErr> {
        let (items, published, throttled_ms, errors, workloads) = self.with(|c| {
            (
                c.workloads.values().map(|w| w.items).sum::<u64>(),
                c.published,
                c.throttled_ms,
                c.errors,
                serde_json::to_value(&c.workloads).unwrap_or_default(),
            )
        });
        self.db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE runs SET items = $2, published = $3, throttled_ms = $4, errors = $5,
                        workload_counts = $6
                  WHERE id = $1",
                [
                    self.run_id.into(),
                    (items as i64).into(),
                    (published as i64).into(),
                    (throttled_ms as i64).into(),
                    (errors as i32).into(),
                    workloads.into(),
                ],
            ))
            .await?;
        Ok(())
    }

    /// Items whose work items RabbitMQ has confirmed: the run is not done
    /// until the worker has settled each (`run_items`).
    pub async fn expect_items(&self, items: &[ItemKey]) -> Result<(), DbErr> {
        for group in items.chunks(5000) {
            let mut values: Vec<sea_orm::Value> = Vec::with_capacity(group.len() * 4);
            let mut tuples = Vec::with_capacity(group.len());
            for item in group {
                let n = values.len();
                tuples.push(format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
                values.extend([
                    self.run_id.into(),
                    item.account_id.into(),
                    item.workload.as_str().into(),
                    item.source_id.clone().into(),
                ]);
            }
            self.db
                .execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!(
                        "INSERT INTO run_items (run_id, account_id, workload, source_id) VALUES {}
                         ON CONFLICT DO NOTHING",
                        tuples.join(", ")
                    ),
                    values,
                ))
                .await?;
        }
        Ok(())
    }

    /// Wait until the worker has settled every confirmed item, or until
    /// `timeout`; `false` on timeout.
    pub async fn wait_settled(&self, timeout: Duration) -> Result<bool, DbErr> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let row = self
                .db
                .query_one(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT count(*) FROM run_items WHERE run_id = $1 AND NOT settled",
                    [self.run_id.into()],
                ))
                .await?;
            let unsettled: i64 = match row {
                Some(r) => r.try_get_by_index(0)?,
                None => 0,
            };
            if unsettled == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Finish the run: `failed` with `fatal`, otherwise `partially_failed`
    /// if anything failed, else `succeeded`.
    pub async fn finish(&self, fatal: Option<String>) -> Result<Outcome, DbErr> {
        self.flush().await?;
        let outcome = match (&fatal, self.errors()) {
            (Some(_), _) => Outcome::Failed,
            (None, 0) => Outcome::Succeeded,
            (None, _) => Outcome::PartiallyFailed,
        };
        self.db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE runs SET state = $2, finished_at = now(), detail = $3 WHERE id = $1",
                [self.run_id.into(), outcome.as_str().into(), fatal.into()],
            ))
            .await?;
        if outcome == Outcome::Succeeded {
            // What keeps a tenant from counting as inactive.
            self.db
                .execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE tenants SET last_successful_run_at = now()
                      WHERE id = (SELECT tenant_id FROM runs WHERE id = $1)",
                    [self.run_id.into()],
                ))
                .await?;
        }
        self.db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM run_items WHERE run_id = $1",
                [self.run_id.into()],
            ))
            .await?;
        metrics::counter!("arkiv_connector_runs_total", "outcome" => outcome.as_str()).increment(1);
        Ok(outcome)
    }
}
