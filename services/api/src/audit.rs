//! Every state-changing call runs inside [`audited`]: its writes and its
//! audit entry commit together; if it fails, its writes roll back and the
//! failure is recorded instead.

use std::future::Future;
use std::pin::Pin;

use arkiv_db::audit::{self, Entry, Outcome};
use arkiv_db::sea_orm::{DatabaseTransaction, TransactionTrait};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// What a successful call reports for its audit entry.
#[derive(Debug, Default)]
pub struct Audited {
    /// The tenant the action concerned (its chain), if any.
    pub tenant: Option<Uuid>,
    /// The id of what was acted on.
    pub target: Option<String>,
    /// Ids and counts only.
    pub details: Value,
}

pub type Work<'c, T> = Pin<Box<dyn Future<Output = Result<(T, Audited), ApiError>> + Send + 'c>>;

/// Run `work` in a transaction and record `action` in the audit log.
pub async fn audited<T, F>(
    state: &AppState,
    caller: &Caller,
    action: &'static str,
    work: F,
) -> Result<T, ApiError>
where
    T: Send,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> Work<'c, T> + Send,
{
    let txn = state.db.begin().await?;
    match work(&txn).await {
        Ok((value, done)) => {
            audit::append(
                &txn,
                Entry {
                    tenant_id: done.tenant,
                    actor: caller.actor(),
                    target: done.target,
                    details: if done.details.is_null() {
                        json!({})
                    } else {
                        done.details
                    },
                    ..Entry::new(action, Outcome::Success)
                },
            )
            .await?;
            txn.commit().await?;
            Ok(value)
        }
        Err(error) => {
            txn.rollback().await?;
            // Refusals go to the global chain: recording them against the
            // tenant they aimed at would confirm that it exists.
            let txn = state.db.begin().await?;
            audit::append(
                &txn,
                Entry {
                    actor: caller.actor(),
                    details: json!({ "error": error_kind(&error) }),
                    ..Entry::new(action, error.audit_outcome())
                },
            )
            .await?;
            txn.commit().await?;
            Err(error)
        }
    }
}

fn error_kind(e: &ApiError) -> &'static str {
    match e {
        ApiError::Unauthenticated => "unauthenticated",
        ApiError::NotFound(_) => "not_found",
        ApiError::Invalid { .. } => "invalid_input",
        ApiError::Conflict { .. } => "conflict",
        ApiError::Locked { .. } => "locked",
        ApiError::Provider { .. } => "provider",
        ApiError::Unavailable(_) => "unavailable",
        ApiError::Internal(_) => "internal",
    }
}

/// Record a read of tenant data (no transaction of its own to share).
pub async fn record_read(
    state: &AppState,
    caller: &Caller,
    action: &'static str,
    tenant: Uuid,
    details: Value,
) -> Result<(), ApiError> {
    let txn = state.db.begin().await?;
    audit::append(
        &txn,
        Entry {
            tenant_id: Some(tenant),
            actor: caller.actor(),
            details,
            ..Entry::new(action, Outcome::Success)
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
