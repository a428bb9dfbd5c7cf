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
pub async fn drop_versions(
    txn: &DatabaseTransaction,
    tenant: Uuid,
    versions: &[Uuid],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if versions.is_empty() {
        return Ok(0);
    }
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH refs AS (
             SELECT chunk_id, count(*)::int AS n FROM version_chunks
              WHERE version_id = ANY($2) GROUP BY chunk_id)
         UPDATE chunks c
            SET refcount = c.refcount - refs.n,
                deletable_at = CASE WHEN c.refcount - refs.n = 0 THEN $3 ELSE c.deletable_at END
           FROM refs
          WHERE c.tenant_id = $1 AND c.id = refs.chunk_id",
        [tenant.into(), versions.to_vec().into(), now.into()],
    ))
    .await?;
    let deleted = txn
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM item_versions WHERE tenant_id = $1 AND id = ANY($2)",
            [tenant.into(), versions.to_vec().into()],
        ))
        .await?
        .rows_affected();
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
