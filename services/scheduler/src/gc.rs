//! Garbage collection: chunks no version references are deleted, and pack
//! objects that are mostly garbage are rewritten with only their live
//! chunks, as restic's and Kopia's prune do.
//!
//! Safety against a backup running at the same moment rests on the
//! database, not on timing:
//! - a chunk is deleted only while its reference count is zero, by a
//!   `DELETE` that re-checks the count on the row it locks; a worker that
//!   references the chunk either commits first (the count is no longer
//!   zero: the chunk stays) or after (its `version_chunks` row fails the
//!   foreign key to the deleted chunk, its transaction rolls back, and its
//!   redelivery stores the chunk anew);
//! - a chunk still named by a large upload's staging rows is never deleted;
//! - a rewrite moves chunks by copying their sealed bytes (their seal is
//!   bound to tenant and chunk id, not to where they are stored) to a new
//!   pack, then repoints them in one transaction; the old object stays
//!   until `retired_pack_grace` has passed, so a restore that looked up the
//!   old locations can finish;
//! - an object under the tenant's prefix that no pack row names (a pack
//!   PUT whose transaction never committed) is deleted only once its id,
//!   a time-ordered UUID, is older than a day (or the chunk grace, if longer) in real time.
//!
//! Each step is idempotent: a collection killed anywhere is completed by
//! the next.

use std::collections::HashSet;

use arkiv_domain::Region;
use arkiv_store::{ObjectStore, StoreError};
use arkiv_vault::{pack_key, tenant_prefix};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, FromQueryResult, Statement,
    TransactionTrait,
};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("pack {pack}: {reason}")]
    Pack { pack: Uuid, reason: String },
}

/// How eagerly to collect.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Chunks whose count reached zero before this are deleted.
    pub chunks_dead_before: DateTime<Utc>,
    /// Packs whose live bytes are below this share of their size are
    /// rewritten (1.0 or more: any pack with a dead byte).
    pub rewrite_below: f64,
    /// Old objects of packs retired before this are deleted.
    pub retired_before: DateTime<Utc>,
    /// Staging rows of uploads begun before this and never committed are
    /// dropped.
    pub uploads_abandoned_before: DateTime<Utc>,
    /// Unnamed objects whose id is older than this (real time) are orphans.
    pub orphans_before: DateTime<Utc>,
    /// Whether to list the tenants' prefixes for orphans at all (a listing
    /// per tenant: the routine pass does it once per chunk grace).
    pub sweep_orphans: bool,
    pub now: DateTime<Utc>,
}

impl Policy {
    /// The routine policy of a lifecycle pass.
    pub fn routine(now: DateTime<Utc>, settings: &arkiv_config::LifecycleSettings) -> Self {
        let grace = Duration::seconds(settings.chunk_grace_secs as i64);
        Self {
            chunks_dead_before: now - grace,
            rewrite_below: settings.pack_rewrite_below,
            retired_before: now - Duration::seconds(settings.retired_pack_grace_secs as i64),
            uploads_abandoned_before: now - Duration::days(1),
            // Far longer than any batch takes from its PUT to its commit,
            // whatever the workers' clocks say.
            orphans_before: Utc::now() - grace.max(Duration::days(1)),
            sweep_orphans: true,
            now,
        }
    }

    /// After an erasure: every released chunk goes now, and every pack that
    /// held one is rewritten and its old object deleted.
    pub fn erasure(now: DateTime<Utc>, settings: &arkiv_config::LifecycleSettings) -> Self {
        Self {
            chunks_dead_before: now + Duration::seconds(1),
            rewrite_below: 1.0,
            retired_before: now + Duration::seconds(1),
            ..Self::routine(now, settings)
        }
    }
}

/// What one collection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub chunks_deleted: u64,
    pub packs_deleted: u64,
    pub packs_rewritten: u64,
    pub objects_deleted: u64,
    pub bytes_freed: i64,
    /// Chunks a backup claimed back while they were being deleted: left
    /// for the next collection.
    pub chunks_claimed: u64,
}

impl std::ops::AddAssign for Collected {
    fn add_assign(&mut self, o: Self) {
        self.chunks_deleted += o.chunks_deleted;
        self.packs_deleted += o.packs_deleted;
        self.packs_rewritten += o.packs_rewritten;
        self.objects_deleted += o.objects_deleted;
        self.bytes_freed += o.bytes_freed;
        self.chunks_claimed += o.chunks_claimed;
    }
}

#[derive(Debug, FromQueryResult)]
struct TenantRow {
    id: Uuid,
    region: String,
}

/// Collect every tenant's garbage.
pub async fn collect_all(
    db: &DatabaseConnection,
    store: &ObjectStore,
    policy: &Policy,
) -> Result<Collected, GcError> {
    let tenants = TenantRow::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT id, region FROM tenants WHERE subscription_state <> 'purged' ORDER BY id",
    ))
    .all(db)
    .await?;
    let mut total = Collected::default();
    for t in tenants {
        let Ok(region) = t.region.parse::<Region>() else {
            continue;
        };
        // One tenant's failure (a corrupt pack, S3 down for its region)
        // does not hold up the others'.
        match collect(db, store, t.id, &region, policy).await {
            Ok(done) => total += done,
            Err(e) => {
                metrics::counter!("arkiv_gc_failures_total").increment(1);
                tracing::warn!(tenant = %t.id, error = %e, "garbage collection failed; retrying at the next pass");
            }
        }
    }
    Ok(total)
}

/// Collect one tenant's garbage.
pub async fn collect(
    db: &DatabaseConnection,
    store: &ObjectStore,
    tenant: Uuid,
    region: &Region,
    policy: &Policy,
) -> Result<Collected, GcError> {
    let mut done = Collected::default();
    abandon_uploads(db, tenant, policy).await?;
    delete_dead_chunks(db, tenant, policy, &mut done).await?;
    delete_empty_packs(db, store, tenant, region, policy, &mut done).await?;
    loop {
        let before = done.packs_rewritten;
        rewrite_sparse_packs(db, store, tenant, region, policy, &mut done).await?;
        // Routinely a bounded amount per pass; after an erasure, until
        // no pack holds a dead byte.
        if policy.rewrite_below < 1.0 || done.packs_rewritten == before {
            break;
        }
    }
    if policy.sweep_orphans {
        delete_orphans(db, store, tenant, region, policy, &mut done).await?;
    }
    if done != Collected::default() {
        tracing::info!(%tenant, ?done, "garbage collected");
        metrics::counter!("arkiv_gc_chunks_deleted_total").increment(done.chunks_deleted);
        metrics::counter!("arkiv_gc_packs_rewritten_total").increment(done.packs_rewritten);
        metrics::counter!("arkiv_gc_objects_deleted_total").increment(done.objects_deleted);
    }
    Ok(done)
}

/// Staging rows of uploads never committed go; their chunks, which no
/// version counts, become deletable.
async fn abandon_uploads(
    db: &DatabaseConnection,
    tenant: Uuid,
    policy: &Policy,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    // Whole uploads only: one still being sent keeps its early chunks.
    exec(
        &txn,
        "DELETE FROM upload_chunks WHERE tenant_id = $1 AND upload_id IN (
             SELECT upload_id FROM upload_chunks WHERE tenant_id = $1
              GROUP BY upload_id HAVING max(created_at) < $2)",
        vec![tenant.into(), policy.uploads_abandoned_before.into()],
    )
    .await?;
    exec(
        &txn,
        "UPDATE chunks c SET deletable_at = $3
          WHERE c.tenant_id = $1 AND c.refcount = 0 AND c.deletable_at IS NULL
            AND c.created_at < $2
            AND NOT EXISTS (SELECT 1 FROM upload_chunks u
                             WHERE u.tenant_id = c.tenant_id AND u.chunk_id = c.id)",
        vec![
            tenant.into(),
            policy.uploads_abandoned_before.into(),
            policy.now.into(),
        ],
    )
    .await?;
    txn.commit().await
}

#[derive(Debug, FromQueryResult)]
struct DeadChunk {
    pack_id: Option<Uuid>,
    stored_size: i32,
}

const CHUNK_BATCH: i64 = 5_000;

async fn delete_dead_chunks(
    db: &DatabaseConnection,
    tenant: Uuid,
    policy: &Policy,
    done: &mut Collected,
) -> Result<(), DbErr> {
    let mut refused = 0;
    loop {
        let txn = db.begin().await?;
        // Locked rows (a worker referencing them right now) are skipped;
        // the count is checked again on the locked row.
        let deleted = DeadChunk::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH dead AS (
                 SELECT c.id FROM chunks c
                  WHERE c.tenant_id = $1 AND c.refcount = 0 AND c.deletable_at < $2
                    AND NOT EXISTS (SELECT 1 FROM upload_chunks u
                                     WHERE u.tenant_id = c.tenant_id AND u.chunk_id = c.id)
                    -- Never trusted alone: a count that is wrong must not
                    -- make the same batch fail at every pass.
                    AND NOT EXISTS (SELECT 1 FROM version_chunks v
                                     WHERE v.tenant_id = c.tenant_id AND v.chunk_id = c.id)
                  LIMIT $3
                  FOR UPDATE SKIP LOCKED)
             DELETE FROM chunks c USING dead
              WHERE c.tenant_id = $1 AND c.id = dead.id AND c.refcount = 0
          RETURNING c.pack_id, c.stored_size",
            [
                tenant.into(),
                policy.chunks_dead_before.into(),
                CHUNK_BATCH.into(),
            ],
        ))
        .all(&txn)
        .await;
        let deleted = match deleted {
            Ok(rows) => rows,
            Err(e) if is_foreign_key_violation(&e) => {
                // A backup referenced one of them after it was chosen: the
                // database refused, nothing was deleted. The next pass
                // tries again with what is still dead then.
                txn.rollback().await?;
                done.chunks_claimed += 1;
                tracing::info!(%tenant, "a backup claimed a chunk being collected");
                refused += 1;
                if refused == 3 {
                    return Ok(()); // the next collection tries again
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut by_pack: std::collections::HashMap<Uuid, i64> = Default::default();
        for c in &deleted {
            if let Some(pack) = c.pack_id {
                *by_pack.entry(pack).or_default() += i64::from(c.stored_size);
            }
        }
        for (pack, bytes) in by_pack {
            exec(
                &txn,
                "UPDATE packs SET live_bytes = greatest(live_bytes - $2, 0) WHERE id = $1",
                vec![pack.into(), bytes.into()],
            )
            .await?;
        }
        match txn.commit().await {
            Ok(()) => {}
            Err(e) if is_foreign_key_violation(&e) => {
                done.chunks_claimed += 1;
                refused += 1;
                if refused == 3 {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        done.chunks_deleted += deleted.len() as u64;
        done.bytes_freed += deleted
            .iter()
            .map(|c| i64::from(c.stored_size))
            .sum::<i64>();
        if (deleted.len() as i64) < CHUNK_BATCH {
            return Ok(());
        }
    }
}

fn is_foreign_key_violation(e: &DbErr) -> bool {
    arkiv_db::sql_state(e).as_deref() == Some("23503")
}

#[derive(Debug, FromQueryResult)]
struct PackRow {
    id: Uuid,
    object_key: String,
    size: i64,
    retired_at: Option<DateTime<Utc>>,
}

/// Packs no chunk lives in any more (every chunk dead, or moved by a
/// rewrite whose grace has passed): object first, then the row.
async fn delete_empty_packs(
    db: &DatabaseConnection,
    store: &ObjectStore,
    tenant: Uuid,
    region: &Region,
    policy: &Policy,
    done: &mut Collected,
) -> Result<(), GcError> {
    let empty = PackRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT p.id, p.object_key, p.size, p.retired_at FROM packs p
          WHERE p.tenant_id = $1
            AND (p.retired_at IS NULL OR p.retired_at < $2)
            AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.pack_id = p.id)",
        [tenant.into(), policy.retired_before.into()],
    ))
    .all(db)
    .await?;
    for p in empty {
        store.delete(region, &p.object_key).await?;
        // Only if still empty: a chunk cannot move into an old pack, but
        // the check costs nothing.
        db.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM packs p WHERE p.id = $1
               AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.pack_id = p.id)",
            [p.id.into()],
        ))
        .await?;
        done.packs_deleted += 1;
        done.objects_deleted += 1;
        if p.retired_at.is_none() {
            done.bytes_freed += p.size;
        }
    }
    Ok(())
}

#[derive(Debug, FromQueryResult)]
struct LiveChunk {
    id: Vec<u8>,
    pack_offset: i64,
    stored_size: i32,
}

/// Packs mostly garbage: their live chunks are copied to a new pack and
/// repointed, and the old pack is retired.
async fn rewrite_sparse_packs(
    db: &DatabaseConnection,
    store: &ObjectStore,
    tenant: Uuid,
    region: &Region,
    policy: &Policy,
    done: &mut Collected,
) -> Result<(), GcError> {
    let sparse = PackRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT id, object_key, size, retired_at FROM packs
          WHERE tenant_id = $1 AND retired_at IS NULL AND live_bytes > 0
            AND live_bytes < size AND live_bytes::float8 < size::float8 * $2
          ORDER BY live_bytes::float8 / greatest(size, 1)
          LIMIT 200",
        [tenant.into(), policy.rewrite_below.into()],
    ))
    .all(db)
    .await?;
    for old in sparse {
        let live = LiveChunk::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id, pack_offset, stored_size FROM chunks
              WHERE tenant_id = $1 AND pack_id = $2 ORDER BY pack_offset",
            [tenant.into(), old.id.into()],
        ))
        .all(db)
        .await?;
        if live.is_empty() {
            continue; // all dead since: deleted as empty next time
        }
        let body = store.get(region, &old.object_key).await?;
        let new_id = Uuid::now_v7();
        let mut out = BytesMut::new();
        let mut moves = Vec::with_capacity(live.len());
        for c in &live {
            let (start, len) = (c.pack_offset as usize, c.stored_size as usize);
            let Some(sealed) = body.get(start..start + len) else {
                return Err(GcError::Pack {
                    pack: old.id,
                    reason: format!(
                        "chunk at {start}+{len} lies beyond the object's {} bytes",
                        body.len()
                    ),
                });
            };
            moves.push((c.id.clone(), old.id, out.len() as i64));
            out.extend_from_slice(sealed);
        }
        let out: Bytes = out.freeze();
        let size = out.len() as i64;
        store
            .put(region, &pack_key(tenant, new_id), out.clone())
            .await?;
        let txn = db.begin().await?;
        exec(
            &txn,
            "INSERT INTO packs (id, tenant_id, region, object_key, size, chunk_count, live_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
            vec![
                new_id.into(),
                tenant.into(),
                region.as_str().into(),
                pack_key(tenant, new_id).into(),
                size.into(),
                (moves.len() as i32).into(),
            ],
        )
        .await?;
        // Chunks deleted since they were read are simply not moved.
        let ids: Vec<Vec<u8>> = moves.iter().map(|m| m.0.clone()).collect();
        let offsets: Vec<i64> = moves.iter().map(|m| m.2).collect();
        exec(
            &txn,
            "UPDATE chunks c SET pack_id = $3, pack_offset = m.off
               FROM unnest($4::bytea[], $5::bigint[]) AS m (id, off)
              WHERE c.tenant_id = $1 AND c.pack_id = $2 AND c.id = m.id",
            vec![
                tenant.into(),
                old.id.into(),
                new_id.into(),
                ids.into(),
                offsets.into(),
            ],
        )
        .await?;
        exec(
            &txn,
            "UPDATE packs SET live_bytes = coalesce(
                 (SELECT sum(stored_size) FROM chunks WHERE pack_id = $1), 0) WHERE id = $1",
            vec![new_id.into()],
        )
        .await?;
        exec(
            &txn,
            "UPDATE packs SET state = 'rewriting', retired_at = $2, live_bytes = 0 WHERE id = $1",
            vec![old.id.into(), policy.now.into()],
        )
        .await?;
        txn.commit().await?;
        done.packs_rewritten += 1;
        done.bytes_freed += old.size - size;
    }
    // Retired packs past their grace are empty now: delete them.
    delete_empty_packs(db, store, tenant, region, policy, done).await
}

/// Objects under the tenant's prefix that no pack row names, old enough
/// that no worker can still be about to commit them.
async fn delete_orphans(
    db: &DatabaseConnection,
    store: &ObjectStore,
    tenant: Uuid,
    region: &Region,
    policy: &Policy,
    done: &mut Collected,
) -> Result<(), GcError> {
    let keys = store.list(region, &tenant_prefix(tenant)).await?;
    if keys.is_empty() {
        return Ok(());
    }
    let known: HashSet<String> = db
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT object_key FROM packs WHERE tenant_id = $1",
            [tenant.into()],
        ))
        .await?
        .iter()
        .filter_map(|r| r.try_get_by_index::<String>(0).ok())
        .collect();
    let before = policy.orphans_before.timestamp_millis();
    for key in keys.into_iter().filter(|k| !known.contains(k)) {
        let old_enough = key
            .rsplit('/')
            .next()
            .and_then(|id| id.parse::<Uuid>().ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                (secs as i64) * 1000 + i64::from(nanos / 1_000_000) < before
            })
            .unwrap_or(false);
        if old_enough {
            store.delete(region, &key).await?;
            done.objects_deleted += 1;
        }
    }
    Ok(())
}

async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<u64, DbErr> {
    Ok(db
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .rows_affected())
}
