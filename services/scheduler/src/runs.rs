//! Starting backup runs on each connection's schedule.
//!
//! Every tick, due active connections (`connections.next_run_at` passed, or
//! never set) are claimed with `FOR UPDATE SKIP LOCKED`, so any number of
//! scheduler instances can run side by side without starting a connection
//! twice. A due connection with no run queued or running gets a `schedule`
//! run and its next time, `schedule_minutes` on; its run request is
//! published once the transaction commits (one that cannot be published is
//! failed at once rather than left queued, which would block the
//! connection). A connection overdue by more than a few ticks (the
//! scheduler was down) is not started at once: it is given a random time
//! within the catch-up window, so that a restart does not start every
//! tenant's backup in the same second.

use std::time::Duration;

use arkiv_backup::request::{self, RunRequest};
use arkiv_domain::Provider;
use arkiv_queue::{Broker, Publisher, QueueError};
use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use uuid::Uuid;

/// How the scheduler paces itself.
#[derive(Clone, Debug)]
pub struct Pacing {
    pub tick: Duration,
    pub catch_up_window: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[derive(Debug, FromQueryResult)]
struct Due {
    id: Uuid,
    tenant_id: Uuid,
    provider: String,
    schedule_minutes: i32,
    next_run_at: Option<DateTime<Utc>>,
    active_run: Option<Uuid>,
}

/// What one tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    pub started: usize,
    pub deferred: usize,
}

/// Start the runs that are due now.
pub async fn tick(
    db: &DatabaseConnection,
    broker: &Broker,
    publisher: &Publisher,
    pacing: &Pacing,
    now: DateTime<Utc>,
) -> Result<Tick, ScheduleError> {
    let overdue_after = chrono::Duration::from_std(pacing.tick * 3).unwrap_or_default();
    let window_secs = pacing.catch_up_window.as_secs().max(1);
    let txn = db.begin().await?;
    let due = Due::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT c.id, c.tenant_id, c.provider, c.schedule_minutes, c.next_run_at,
                (SELECT r.id FROM runs r WHERE r.connection_id = c.id
                    AND r.state IN ('queued', 'running') LIMIT 1) AS active_run
           FROM connections c
          WHERE c.status = 'active' AND (c.next_run_at IS NULL OR c.next_run_at <= $1)
          ORDER BY c.next_run_at NULLS FIRST
          LIMIT 500
          FOR UPDATE OF c SKIP LOCKED",
        [now.into()],
    ))
    .all(&txn)
    .await?;
    let mut done = Tick::default();
    let mut fresh = Vec::new();
    for c in due {
        let overdue = c.next_run_at.is_some_and(|at| now - at > overdue_after);
        let next = if overdue {
            // Caught up at a random moment of the window, not all at once.
            done.deferred += 1;
            now + chrono::Duration::seconds(rand::thread_rng().gen_range(0..window_secs) as i64)
        } else {
            now + chrono::Duration::minutes(i64::from(c.schedule_minutes))
        };
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE connections SET next_run_at = $2, updated_at = now() WHERE id = $1",
            [c.id.into(), next.into()],
        ))
        .await?;
        if overdue || c.active_run.is_some() {
            // A run still going (started by hand, say) counts as this one.
            continue;
        }
        let Ok(provider) = c.provider.parse::<Provider>() else {
            continue;
        };
        let run_id = Uuid::now_v7();
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO runs (id, tenant_id, connection_id, trigger) VALUES ($1, $2, $3, 'schedule')",
            [run_id.into(), c.tenant_id.into(), c.id.into()],
        ))
        .await?;
        fresh.push((
            provider,
            RunRequest {
                run_id,
                tenant_id: c.tenant_id,
                connection_id: c.id,
            },
        ));
    }
    txn.commit().await?;
    for (provider, run) in fresh {
        match request::publish(broker, publisher, provider, &run).await {
            Ok(()) => {
                done.started += 1;
                tracing::info!(run = %run.run_id, connection = %run.connection_id, "scheduled run started");
                metrics::counter!("arkiv_scheduler_runs_started_total").increment(1);
            }
            Err(e) => {
                tracing::warn!(run = %run.run_id, error = %e, "the run request could not be published");
                db.execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE runs SET state = 'failed', finished_at = now(), detail = $2
                      WHERE id = $1 AND state = 'queued'",
                    [
                        run.run_id.into(),
                        format!("the run queue refused the request: {e}").into(),
                    ],
                ))
                .await?;
            }
        }
    }
    Ok(done)
}
