//! Tenants' and accounts' ends: purges at subscription end, purges of
//! excluded accounts, and inactive tenants.
//!
//! A tenant's purge ([`purge_tenant`]) is a sequence of idempotent steps, so
//! that one killed anywhere is completed by the next pass:
//! 1. in one transaction: the tombstone (ids, dates, counts), the tenant's
//!    keys deleted (crypto-shredding: from here on nothing left in the
//!    system can decrypt the tenant's objects), the state `purged`, and
//!    the audit entry;
//! 2. every object under the tenant's prefix in its region's bucket;
//! 3. the tenant's messages parked in its region's parking lot (those in
//!    the work and retry queues are discarded by the worker, which finds
//!    the tombstone);
//! 4. every row of the tenant's data, by deleting the tenant (everything
//!    reaches `tenants` through `ON DELETE CASCADE`; the audit log and the
//!    tombstone do not), and the login events of its principals;
//! 5. later, once workers have dropped the keys they cached, the prefix is
//!    swept once more (`final_sweep_at`).

use arkiv_crypto::TransportKey;
use arkiv_domain::Region;
use arkiv_queue::topology::RegionQueues;
use arkiv_queue::{Broker, Publisher, WorkItem};
use arkiv_store::ObjectStore;
use arkiv_vault::tenant_prefix;
use chrono::{DateTime, Duration, Utc};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Statement, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::audit;
use crate::index::{drop_items, ids};
use crate::LifecycleError;

#[derive(Debug, FromQueryResult)]
struct Ending {
    partner_id: Uuid,
    region: String,
    created_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    subscription_state: String,
}

/// What a purge needs besides the database.
pub struct Purger<'a> {
    pub db: &'a DatabaseConnection,
    pub store: &'a ObjectStore,
    pub broker: &'a Broker,
    pub publisher: &'a Publisher,
    pub transport: &'a TransportKey,
}

impl std::fmt::Debug for Purger<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger").finish_non_exhaustive()
    }
}

/// Purge the tenants whose grace period is over, and finish purges that
/// were interrupted. Returns the tenants purged.
pub async fn purge_due(p: &Purger<'_>, now: DateTime<Utc>) -> Result<Vec<Uuid>, LifecycleError> {
    let due = ids(
        p.db,
        "SELECT id FROM tenants
          WHERE (subscription_state = 'ended' AND purge_after <= $1)
             OR subscription_state = 'purged'
          ORDER BY purge_after NULLS FIRST",
        vec![now.into()],
    )
    .await?;
    let mut purged = Vec::new();
    for tenant in due {
        match purge_tenant(p, tenant, now).await {
            Ok(true) => purged.push(tenant),
            Ok(false) => {}
            // Left as it is (keys destroyed or not): the next pass goes on
            // from there.
            Err(e) => {
                metrics::counter!("arkiv_scheduler_purge_failures_total").increment(1);
                tracing::warn!(%tenant, error = %e, "purge not finished; retrying at the next pass");
            }
        }
    }
    Ok(purged)
}

/// Purge one ended tenant whose purge is due (see the module's
/// documentation for the steps). Returns whether it was purged.
pub async fn purge_tenant(
    p: &Purger<'_>,
    tenant: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, LifecycleError> {
    let db = p.db;
    // 1. Tombstone and crypto-shredding.
    let txn = db.begin().await?;
    let Some(t) = Ending::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT partner_id, region, created_at, ended_at, subscription_state
           FROM tenants
          WHERE id = $1 AND (subscription_state = 'purged'
                             OR (subscription_state = 'ended' AND purge_after <= $2))
            FOR UPDATE",
        [tenant.into(), now.into()],
    ))
    .one(&txn)
    .await?
    else {
        // Purged by another instance meanwhile, reactivated, or ended
        // again with a later purge date: nothing to do now.
        return Ok(false);
    };
    if t.subscription_state == "ended" {
        let counts = txn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT json_build_object(
                     'accounts', (SELECT count(*) FROM protected_accounts WHERE tenant_id = $1),
                     'items', (SELECT count(*) FROM items WHERE tenant_id = $1),
                     'versions', (SELECT count(*) FROM item_versions WHERE tenant_id = $1),
                     'chunks', (SELECT count(*) FROM chunks WHERE tenant_id = $1),
                     'packs', (SELECT count(*) FROM packs WHERE tenant_id = $1),
                     'stored_bytes', (SELECT coalesce(sum(size), 0) FROM packs WHERE tenant_id = $1))",
                [tenant.into()],
            ))
            .await?
            .map(|r| r.try_get_by_index::<serde_json::Value>(0))
            .transpose()?
            .unwrap_or_default();
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO tenant_tombstones (tenant_id, partner_id, region, created_at, ended_at, purged_at, counts)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id) DO NOTHING",
            [
                tenant.into(),
                t.partner_id.into(),
                t.region.clone().into(),
                t.created_at.into(),
                t.ended_at.into(),
                now.into(),
                counts.clone().into(),
            ],
        ))
        .await?;
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM tenant_keys WHERE tenant_id = $1",
            [tenant.into()],
        ))
        .await?;
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE tenants SET subscription_state = 'purged', updated_at = now() WHERE id = $1",
            [tenant.into()],
        ))
        .await?;
        audit::system(
            &txn,
            Some(tenant),
            "tenant.purge",
            Some(tenant.to_string()),
            json!({ "step": "keys destroyed", "counts": counts }),
        )
        .await?;
        txn.commit().await?;
        tracing::info!(%tenant, "tenant keys destroyed; purging its data");
    } else {
        txn.rollback().await?;
    }

    // 2. Its objects.
    let region: Region = t
        .region
        .parse()
        .map_err(|e: arkiv_domain::RegionError| LifecycleError::Refused(e.to_string()))?;
    let objects = p
        .store
        .delete_prefix(&region, &tenant_prefix(tenant))
        .await?;

    // 3. Its parked messages.
    let parked = discard_parked(p, &region, tenant).await?;

    // 4. Its rows.
    let txn = db.begin().await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM login_events WHERE principal_id IN
             (SELECT id FROM principals WHERE tenant_id = $1)",
        [tenant.into()],
    ))
    .await?;
    // The references to chunks first: deleting the tenant cascades to its
    // chunks and, by another path (items, versions), to the rows that
    // reference them, and PostgreSQL checks the former before the latter.
    for sql in [
        "DELETE FROM version_chunks WHERE tenant_id = $1",
        "DELETE FROM upload_chunks WHERE tenant_id = $1",
        "DELETE FROM tenants WHERE id = $1",
    ] {
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [tenant.into()],
        ))
        .await?;
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE tenant_tombstones
            SET counts = counts || jsonb_build_object('objects_deleted', $2::bigint, 'parked_discarded', $3::bigint)
          WHERE tenant_id = $1",
        [tenant.into(), (objects as i64).into(), (parked as i64).into()],
    ))
    .await?;
    audit::system(
        &txn,
        Some(tenant),
        "tenant.purged",
        Some(tenant.to_string()),
        json!({ "objects_deleted": objects, "parked_discarded": parked }),
    )
    .await?;
    txn.commit().await?;
    metrics::counter!("arkiv_scheduler_tenants_purged_total").increment(1);
    tracing::info!(%tenant, objects, parked, "tenant purged");
    Ok(true)
}

/// Take the tenant's messages out of its region's parking lot; the others
/// are put back. Returns how many were discarded.
async fn discard_parked(
    p: &Purger<'_>,
    region: &Region,
    tenant: Uuid,
) -> Result<u64, LifecycleError> {
    let queue = RegionQueues::new(p.broker, region).parking;
    let Ok(depth) = p.broker.queue_depth(&queue).await else {
        return Ok(0); // no parking lot declared in this region yet
    };
    let channel = p.broker.channel().await?;
    let mut discarded = 0;
    for _ in 0..depth {
        let Some(message) = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
            .await
            .map_err(arkiv_queue::QueueError::from)?
        else {
            break;
        };
        let delivery = &message.delivery;
        // What cannot be opened names no tenant we could tell: it stays.
        let of_tenant = WorkItem::open(&delivery.data, p.transport)
            .map(|w| w.tenant_id() == tenant)
            .unwrap_or(false);
        if of_tenant {
            discarded += 1;
        } else {
            p.publisher
                .send("", &queue, &delivery.data, delivery.properties.clone())
                .await?
                .confirmed()
                .await?;
        }
        channel
            .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await
            .map_err(arkiv_queue::QueueError::from)?;
    }
    let _ = channel.close(200, "swept".into()).await;
    Ok(discarded)
}

/// Sweep once more the prefixes of tenants purged long enough ago that no
/// worker still holds their keys.
pub async fn final_sweeps(
    db: &DatabaseConnection,
    store: &ObjectStore,
    after: Duration,
) -> Result<u64, LifecycleError> {
    #[derive(Debug, FromQueryResult)]
    struct Swept {
        tenant_id: Uuid,
        region: String,
    }
    let due = Swept::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT t.tenant_id, t.region FROM tenant_tombstones t
          WHERE t.final_sweep_at IS NULL AND t.purged_at < $1
            AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = t.tenant_id)",
        [(Utc::now() - after).into()],
    ))
    .all(db)
    .await?;
    let mut objects = 0;
    for t in due {
        if let Ok(region) = t.region.parse::<Region>() {
            objects += store
                .delete_prefix(&region, &tenant_prefix(t.tenant_id))
                .await?;
        }
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE tenant_tombstones SET final_sweep_at = now() WHERE tenant_id = $1",
            [t.tenant_id.into()],
        ))
        .await?;
    }
    Ok(objects)
}

#[derive(Debug, FromQueryResult)]
struct Excluded {
    id: Uuid,
    tenant_id: Uuid,
}

/// Purge the data of accounts excluded longer than their grace period and
/// not included again. Returns the versions purged.
pub async fn purge_excluded_accounts(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<u64, LifecycleError> {
    let due = Excluded::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        // Only those with something left: purge_after stays set after a
        // purge, for what lands late.
        "SELECT a.id, a.tenant_id FROM protected_accounts a
          WHERE NOT a.included AND a.purge_after <= $1
            AND (EXISTS (SELECT 1 FROM items i WHERE i.account_id = a.id)
                 OR EXISTS (SELECT 1 FROM upload_chunks u WHERE u.account_id = a.id))",
        [now.into()],
    ))
    .all(db)
    .await?;
    let mut versions = 0;
    for a in due {
        let txn = db.begin().await?;
        // Still excluded, and locked against being included meanwhile.
        // Locked against being included meanwhile, and against new items
        // (the worker's foreign key to the account) until this commits.
        let still = txn
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM protected_accounts
                  WHERE id = $1 AND NOT included AND purge_after <= $2 FOR UPDATE",
                [a.id.into(), now.into()],
            ))
            .await?;
        if still.is_none() {
            continue;
        }
        // purge_after stays: what was in flight when the account was
        // excluded and lands later is purged by the next passes.
        let (items, dropped) = drop_account_data(&txn, a.tenant_id, a.id, now).await?;
        audit::system(
            &txn,
            Some(a.tenant_id),
            "account.purge",
            Some(a.id.to_string()),
            json!({ "items": items, "versions": dropped.len() }),
        )
        .await?;
        txn.commit().await?;
        versions += dropped.len() as u64;
    }
    Ok(versions)
}

/// Every item of the account, with its versions, its cursors (so that,
/// included again, it is backed up from scratch) and its staged uploads. Returns the number of
/// items and the ids of the versions deleted.
pub async fn drop_account_data(
    txn: &sea_orm::DatabaseTransaction,
    tenant: Uuid,
    account: Uuid,
    now: DateTime<Utc>,
) -> Result<(u64, Vec<Uuid>), LifecycleError> {
    let items = ids(
        txn,
        "SELECT id FROM items WHERE account_id = $1 FOR UPDATE",
        vec![account.into()],
    )
    .await?;
    let mut versions = Vec::new();
    for batch in items.chunks(2_000) {
        versions.extend(drop_items(txn, tenant, batch, now).await?);
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM cursors WHERE account_id = $1",
        [account.into()],
    ))
    .await?;
    // Its large uploads staged and not (or no longer) counted by a version.
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH gone AS (DELETE FROM upload_chunks WHERE account_id = $1
                        RETURNING tenant_id, chunk_id)
         UPDATE chunks c SET deletable_at = $2
           FROM gone
          WHERE c.tenant_id = gone.tenant_id AND c.id = gone.chunk_id
            AND c.refcount = 0 AND c.deletable_at IS NULL",
        [account.into(), now.into()],
    ))
    .await?;
    Ok((items.len() as u64, versions))
}

/// Inactive tenants: no admin login and no successful run for
/// `after`. Their admins are notified (a recorded notification); a tenant
/// still inactive `notice` after its notification is ended, and purged
/// after the usual grace period. Returns (notified, ended).
pub async fn inactivity(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    after: Duration,
    notice: Duration,
    purge_grace: Duration,
) -> Result<(u64, u64), LifecycleError> {
    #[derive(Debug, FromQueryResult)]
    struct Quiet {
        id: Uuid,
        last_active: DateTime<Utc>,
        inactive_notified_at: Option<DateTime<Utc>>,
    }
    let quiet = Quiet::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, inactive_notified_at,
                greatest(created_at, coalesce(last_login_at, created_at),
                         coalesce(last_successful_run_at, created_at)) AS last_active
           FROM tenants
          WHERE subscription_state IN ('trial', 'active')
            AND greatest(created_at, coalesce(last_login_at, created_at),
                         coalesce(last_successful_run_at, created_at)) < $1",
        [(now - after).into()],
    ))
    .all(db)
    .await?;
    let (mut notified, mut ended) = (0, 0);
    for t in quiet {
        let txn = db.begin().await?;
        match t.inactive_notified_at {
            // Not told yet, or active again since the last notice.
            None => {
                notify(&txn, t.id, t.last_active, now).await?;
                notified += 1;
            }
            Some(at) if t.last_active > at => {
                notify(&txn, t.id, t.last_active, now).await?;
                notified += 1;
            }
            Some(at) if now - at >= notice => {
                // Still inactive at this moment: a login or a run since
                // the selection keeps it.
                let ended_now = txn
                    .execute(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "UPDATE tenants SET subscription_state = 'ended', ended_at = $2,
                                purge_after = $3, updated_at = now()
                          WHERE id = $1 AND subscription_state IN ('trial', 'active')
                            AND coalesce(last_login_at, created_at) <= $4
                            AND coalesce(last_successful_run_at, created_at) <= $4",
                        [
                            t.id.into(),
                            now.into(),
                            (now + purge_grace).into(),
                            t.last_active.into(),
                        ],
                    ))
                    .await?
                    .rows_affected();
                if ended_now == 0 {
                    txn.rollback().await?;
                    continue;
                }
                audit::system(
                    &txn,
                    Some(t.id),
                    "tenant.end",
                    Some(t.id.to_string()),
                    json!({ "reason": "inactive", "last_active": t.last_active,
                            "notified_at": at, "purge_after": now + purge_grace }),
                )
                .await?;
                ended += 1;
            }
            Some(_) => {}
        }
        txn.commit().await?;
    }
    Ok((notified, ended))
}

async fn notify(
    txn: &sea_orm::DatabaseTransaction,
    tenant: Uuid,
    last_active: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), LifecycleError> {
    let id = Uuid::now_v7();
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO tenant_notifications (id, tenant_id, kind, details, created_at)
         VALUES ($1, $2, 'inactive', $3, $4)",
        [
            id.into(),
            tenant.into(),
            json!({ "last_active": last_active, "to": "tenant-admins" }).into(),
            now.into(),
        ],
    ))
    .await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE tenants SET inactive_notified_at = $2 WHERE id = $1",
        [tenant.into(), now.into()],
    ))
    .await?;
    audit::system(
        txn,
        Some(tenant),
        "tenant.notify_inactive",
        Some(id.to_string()),
        json!({ "last_active": last_active }),
    )
    .await?;
    Ok(())
}
