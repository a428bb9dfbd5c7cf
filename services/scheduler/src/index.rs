//! Taking versions and items out of the index, releasing their chunks.
//!
//! Every way data leaves (retention, an excluded account's purge, an
//! erasure) goes through [`drop_versions`]: the versions' references are
//! subtracted from their chunks' counts in the same transaction as the
//! versions are deleted, and a chunk whose count reaches zero is marked
//! `deletable_at`, for garbage collection to delete (see [`crate::gc`]).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};
use uuid::Uuid;

/// Delete these versions of `tenant` (their `version_chunks` and restore
/// rows go with them) and release their chunks. Returns how many were
/// deleted.
///
/// Only what this statement itself deleted is subtracted: a version another
/// transaction deleted first is not counted twice. The chunks are locked
/// in id order before their counts change, so that two lifecycle
/// transactions never deadlock; should a worker's update of the same
/// chunks deadlock with this one, PostgreSQL aborts one of the two, and
/// each retries (the worker without counting an attempt).
pub async fn drop_versions(
    txn: &DatabaseTransaction,
    tenant: Uuid,
    versions: &[Uuid],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if versions.is_empty() {
        return Ok(0);
    }
    // The cascade to version_chunks runs at the end of the statement: the
    // SELECT still sees the references of the versions it deleted.
    let refs = txn
        .query_all(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "WITH gone AS (DELETE FROM item_versions WHERE tenant_id = $1 AND id = ANY($2)
                           RETURNING id)
             SELECT vc.chunk_id, count(*)::int AS n, (SELECT count(*) FROM gone)::bigint AS deleted
               FROM version_chunks vc WHERE vc.version_id IN (SELECT id FROM gone)
              GROUP BY vc.chunk_id
             UNION ALL
             SELECT NULL, 0, (SELECT count(*) FROM gone)::bigint",
            [tenant.into(), versions.to_vec().into()],
        ))
        .await?;
    let mut deleted = 0;
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let mut counts: Vec<i32> = Vec::new();
    for row in &refs {
        deleted = row.try_get_by_index::<i64>(2)? as u64;
        if let Some(id) = row.try_get_by_index::<Option<Vec<u8>>>(0)? {
            ids.push(id);
            counts.push(row.try_get_by_index::<i32>(1)?);
        }
    }
    if ids.is_empty() {
        return Ok(deleted);
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT 1 FROM chunks WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
        [tenant.into(), ids.clone().into()],
    ))
    .await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE chunks c
            SET refcount = c.refcount - r.n,
                deletable_at = CASE WHEN c.refcount - r.n = 0 THEN $4 ELSE c.deletable_at END
           FROM unnest($2::bytea[], $3::int[]) AS r (id, n)
          WHERE c.tenant_id = $1 AND c.id = r.id",
        [tenant.into(), ids.into(), counts.into(), now.into()],
    ))
    .await?;
    Ok(deleted)
}

/// Delete these items of `tenant` with every version they have. Returns
/// the ids of the versions deleted.
pub async fn drop_items(
    txn: &DatabaseTransaction,
    tenant: Uuid,
    items: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, DbErr> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let versions = ids(
        txn,
        "SELECT id FROM item_versions WHERE item_id = ANY($1)",
        vec![items.to_vec().into()],
    )
    .await?;
    drop_versions(txn, tenant, &versions, now).await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM items WHERE tenant_id = $1 AND id = ANY($2)",
        [tenant.into(), items.to_vec().into()],
    ))
    .await?;
    Ok(versions)
}

/// The uuids a one-column query returns.
pub async fn ids<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<Uuid>, DbErr> {
    db.query_all(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await?
    .iter()
    .map(|row| row.try_get_by_index::<Uuid>(0))
    .collect()
}
