//! Retention: what each tenant's policy no longer keeps leaves the index.
//!
//! A policy (`retention_policies`, `'*'` the tenant's default, a workload's
//! row replacing it) has two rules, each in days or null for "forever":
//! - `keep_versions_days`: a version is kept that long after it stopped
//!   being the current one (a newer version was captured); the current
//!   version of an item is never expired by this rule, so an item as it
//!   was at any moment of the last N days can be restored;
//! - `keep_deleted_days`: an item deleted at the source is kept, with all
//!   its versions, that long after its deletion was seen.
//!
//! Expired versions release their chunks (see [`crate::index`]); garbage
//! collection deletes the chunks no version holds any more.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement, TransactionTrait};
use serde::Serialize;
use uuid::Uuid;

use crate::audit;
use crate::index::{drop_items, drop_versions, ids};

/// Versions and items expired in one pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub versions: u64,
    pub items: u64,
}

impl std::ops::AddAssign for Expired {
    fn add_assign(&mut self, other: Self) {
        self.versions += other.versions;
        self.items += other.items;
    }
}

#[derive(Debug, FromQueryResult)]
struct PolicyRow {
    tenant_id: Uuid,
    workload: String,
    keep_versions_days: Option<i32>,
    keep_deleted_days: Option<i32>,
}

/// Days to keep superseded versions and deleted items (`None`: forever).
type Rule = (Option<i32>, Option<i32>);

const WORKLOADS: [&str; 3] = ["mail", "calendar", "drive"];
const BATCH: u64 = 2_000;

/// Expire, for every tenant with a policy, what its policy no longer keeps.
pub async fn expire(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<Expired, DbErr> {
    let rows = PolicyRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT p.tenant_id, p.workload, p.keep_versions_days, p.keep_deleted_days
           FROM retention_policies p JOIN tenants t ON t.id = p.tenant_id
          WHERE t.subscription_state <> 'purged'
          ORDER BY p.tenant_id",
        [],
    ))
    .all(db)
    .await?;
    let mut policies: HashMap<Uuid, HashMap<String, Rule>> = HashMap::new();
    for r in rows {
        policies
            .entry(r.tenant_id)
            .or_default()
            .insert(r.workload, (r.keep_versions_days, r.keep_deleted_days));
    }
    let mut total = Expired::default();
    for (tenant, rules) in policies {
        let mut expired = Expired::default();
        for workload in WORKLOADS {
            let Some(&(versions_days, deleted_days)) =
                rules.get(workload).or_else(|| rules.get("*"))
            else {
                continue;
            };
            if let Some(days) = versions_days {
                expired.versions +=
                    superseded(db, tenant, workload, now - Duration::days(days.into()), now)
                        .await?;
            }
            if let Some(days) = deleted_days {
                expired +=
                    deleted(db, tenant, workload, now - Duration::days(days.into()), now).await?;
            }
        }
        if expired != Expired::default() {
            tracing::info!(%tenant, versions = expired.versions, items = expired.items, "retention expired");
            metrics::counter!("arkiv_scheduler_versions_expired_total").increment(expired.versions);
            let txn = db.begin().await?;
            audit::system(
                &txn,
                Some(tenant),
                "retention.expire",
                None,
                serde_json::to_value(expired).unwrap_or_default(),
            )
            .await?;
            txn.commit().await?;
        }
        total += expired;
    }
    Ok(total)
}

/// Versions of `workload` superseded before `cutoff`: some later version of
/// their item was captured before it.
async fn superseded(
    db: &DatabaseConnection,
    tenant: Uuid,
    workload: &str,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut done = 0;
    loop {
        let txn = db.begin().await?;
        let batch = ids(
            &txn,
            "SELECT v.id FROM item_versions v
              WHERE v.tenant_id = $1 AND v.workload = $2 AND v.captured_at < $3
                AND EXISTS (SELECT 1 FROM item_versions n
                             WHERE n.item_id = v.item_id AND n.version > v.version
                               AND n.captured_at < $3)
              LIMIT $4
              FOR UPDATE OF v SKIP LOCKED",
            vec![
                tenant.into(),
                workload.into(),
                cutoff.into(),
                (BATCH as i64).into(),
            ],
        )
        .await?;
        done += drop_versions(&txn, tenant, &batch, now).await?;
        txn.commit().await?;
        if (batch.len() as u64) < BATCH {
            return Ok(done);
        }
    }
}

/// Items of `workload` deleted at the source before `cutoff`, with all
/// their versions.
async fn deleted(
    db: &DatabaseConnection,
    tenant: Uuid,
    workload: &str,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Expired, DbErr> {
    let mut done = Expired::default();
    loop {
        let txn = db.begin().await?;
        let batch = ids(
            &txn,
            "SELECT id FROM items
              WHERE tenant_id = $1 AND workload = $2 AND deleted_at_source < $3
              LIMIT $4
              FOR UPDATE SKIP LOCKED",
            vec![
                tenant.into(),
                workload.into(),
                cutoff.into(),
                (BATCH as i64).into(),
            ],
        )
        .await?;
        let versions = drop_items(&txn, tenant, &batch, now).await?;
        txn.commit().await?;
        done.items += batch.len() as u64;
        done.versions += versions.len() as u64;
        if (batch.len() as u64) < BATCH {
            return Ok(done);
        }
    }
}
