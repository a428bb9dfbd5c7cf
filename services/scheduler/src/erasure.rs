//! Erasure requests (GDPR art. 17): every version of one account goes,
//! other accounts' data stays, and the tenant gets a certificate.
//!
//! A request recorded by the API (`queued`) is carried out by the next
//! lifecycle pass:
//! 1. in one transaction: every item of the account with all its versions
//!    and its cursors are deleted, the account is excluded (so the next run
//!    does not back it up again), and the certificate is written with the
//!    counts and the SHA-256 of the sorted list of deleted version ids
//!    (`running`);
//! 2. garbage collection of the tenant in erasure mode: every chunk the
//!    account alone held is deleted now, every pack that held one is
//!    rewritten without it and its old object deleted, so the erased
//!    content is gone from storage too, not only from the index; chunks
//!    other accounts reference (an attachment they were sent too) stay;
//! 3. `succeeded`, with what garbage collection removed.
//!
//! A pass killed after step 1 finds the request `running` and redoes
//! steps 2 and 3.

use arkiv_config::LifecycleSettings;
use arkiv_domain::Region;
use arkiv_store::ObjectStore;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Statement, TransactionTrait,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::gc::{self, Policy};
use crate::tenants::drop_account_data;
use crate::{audit, LifecycleError};

#[derive(Debug, FromQueryResult)]
struct Request {
    id: Uuid,
    tenant_id: Uuid,
    account_id: Option<Uuid>,
    account_hash: Vec<u8>,
    requested_at: DateTime<Utc>,
    state: String,
    region: String,
}

/// Carry out the erasure requests waiting. Returns how many completed.
pub async fn carry_out(
    db: &DatabaseConnection,
    store: &ObjectStore,
    settings: &LifecycleSettings,
    now: DateTime<Utc>,
) -> Result<u64, LifecycleError> {
    let open = Request::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        "SELECT e.id, e.tenant_id, e.account_id, e.account_hash, e.requested_at, e.state, t.region
           FROM erasure_requests e JOIN tenants t ON t.id = e.tenant_id
          WHERE e.state IN ('queued', 'running') AND t.subscription_state <> 'purged'
          ORDER BY e.requested_at",
    ))
    .all(db)
    .await?;
    let mut done = 0;
    for r in open {
        // One request's failure does not hold up the others; it stays
        // `running` and is taken up again at the next pass.
        match erase(db, store, settings, &r, now).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                metrics::counter!("arkiv_scheduler_erasure_failures_total").increment(1);
                tracing::warn!(erasure = %r.id, error = %e, "erasure not finished; retrying at the next pass");
            }
        }
    }
    Ok(done)
}

async fn erase(
    db: &DatabaseConnection,
    store: &ObjectStore,
    settings: &LifecycleSettings,
    r: &Request,
    now: DateTime<Utc>,
) -> Result<bool, LifecycleError> {
    if r.state == "queued" {
        let txn = db.begin().await?;
        // Claimed by this pass alone.
        let claimed = txn
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE erasure_requests SET state = 'running' WHERE id = $1 AND state = 'queued'",
                [r.id.into()],
            ))
            .await?
            .rows_affected();
        if claimed == 0 {
            return Ok(false);
        }
        let (items, mut versions, by_workload) = match r.account_id {
            Some(account) => {
                let by_workload = txn
                    .query_one(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT coalesce(jsonb_object_agg(workload, n), '{}'::jsonb) FROM
                             (SELECT workload, count(*) AS n FROM items
                               WHERE account_id = $1 GROUP BY workload) w",
                        [account.into()],
                    ))
                    .await?
                    .map(|row| row.try_get_by_index::<serde_json::Value>(0))
                    .transpose()?
                    .unwrap_or_default();
                let (items, versions) = drop_account_data(&txn, r.tenant_id, account, now).await?;
                txn.execute(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    // purge_after stays set: whatever of the account was
                    // still in flight and lands later is purged by the
                    // next passes (see `tenants::purge_excluded_accounts`).
                    "UPDATE protected_accounts
                        SET included = false, excluded_at = coalesce(excluded_at, $2), purge_after = $2
                      WHERE id = $1",
                    [account.into(), now.into()],
                ))
                .await?;
                (items, versions, by_workload)
            }
            None => (0, Vec::new(), json!({})),
        };
        versions.sort();
        let list: String = versions.iter().map(|v| format!("{v}\n")).collect();
        let list_hash = Sha256::digest(list.as_bytes()).to_vec();
        let certificate = json!({
            "erasure_id": r.id,
            "tenant_id": r.tenant_id,
            "account_id": r.account_id,
            "account_hash": hex::encode(&r.account_hash),
            "requested_at": r.requested_at,
            "erased_at": now,
            "deleted": {
                "items": items,
                "versions": versions.len(),
                "items_by_workload": by_workload,
            },
            "list_hash": hex::encode(&list_hash),
            "list_hash_method": "SHA-256 of the deleted version ids, sorted, one per line, each ending in \\n",
        });
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE erasure_requests
                SET deleted_items = $2, deleted_versions = $3, list_hash = $4, certificate = $5
              WHERE id = $1",
            [
                r.id.into(),
                (items as i64).into(),
                (versions.len() as i64).into(),
                list_hash.into(),
                certificate.into(),
            ],
        ))
        .await?;
        audit::system(
            &txn,
            Some(r.tenant_id),
            "erasure.index",
            Some(r.id.to_string()),
            json!({ "account_id": r.account_id, "items": items, "versions": versions.len() }),
        )
        .await?;
        txn.commit().await?;
    }

    // The content, from storage.
    let region: Region = r
        .region
        .parse()
        .map_err(|e: arkiv_domain::RegionError| LifecycleError::Refused(e.to_string()))?;
    let collected = gc::collect(
        db,
        store,
        r.tenant_id,
        &region,
        &Policy::erasure(now, settings),
    )
    .await?;
    // Done only when storage holds nothing released any more: a chunk a
    // worker held locked, or a pack that could not be rewritten, leaves the
    // request running for the next pass.
    let left = db
        .query_one(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM chunks c
                      WHERE c.tenant_id = $1 AND c.refcount = 0 AND c.deletable_at IS NOT NULL
                        AND NOT EXISTS (SELECT 1 FROM upload_chunks u
                                         WHERE u.tenant_id = c.tenant_id AND u.chunk_id = c.id))
                  + (SELECT count(*) FROM packs
                      WHERE tenant_id = $1 AND (retired_at IS NOT NULL OR live_bytes < size))",
            [r.tenant_id.into()],
        ))
        .await?
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or_default();
    if left > 0 {
        return Err(LifecycleError::Refused(format!(
            "{left} released chunks or sparse packs are still in storage"
        )));
    }
    let txn = db.begin().await?;
    txn.execute(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE erasure_requests
            SET state = 'succeeded', completed_at = $2,
                deleted_chunks = deleted_chunks + $3,
                certificate = certificate || jsonb_build_object(
                    'completed_at', $2::timestamptz,
                    'storage', jsonb_build_object(
                        'chunks_deleted', deleted_chunks + $3,
                        'packs_rewritten', coalesce((certificate->'storage'->>'packs_rewritten')::bigint, 0) + $4,
                        'objects_deleted', coalesce((certificate->'storage'->>'objects_deleted')::bigint, 0) + $5))
          WHERE id = $1",
        [
            r.id.into(),
            now.into(),
            (collected.chunks_deleted as i64).into(),
            (collected.packs_rewritten as i64).into(),
            (collected.objects_deleted as i64).into(),
        ],
    ))
    .await?;
    audit::system(
        &txn,
        Some(r.tenant_id),
        "erasure.complete",
        Some(r.id.to_string()),
        serde_json::to_value(collected).unwrap_or_default(),
    )
    .await?;
    txn.commit().await?;
    metrics::counter!("arkiv_scheduler_erasures_total").increment(1);
    tracing::info!(erasure = %r.id, tenant = %r.tenant_id, "erasure complete");
    Ok(true)
}
