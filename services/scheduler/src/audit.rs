//! The scheduler's entries in the audit log: actor `system`, ids and
//! counts only.

use arkiv_db::audit::{self, Actor, Entry, Outcome};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

pub async fn system(
    txn: &DatabaseTransaction,
    tenant: Option<Uuid>,
    action: &str,
    target: Option<String>,
    details: serde_json::Value,
) -> Result<(), DbErr> {
    audit::append(
        txn,
        Entry {
            tenant_id: tenant,
            actor: Actor {
                id: None,
                role: Some("system".into()),
            },
            action: action.into(),
            target,
            outcome: Outcome::Success,
            details,
        },
    )
    .await?;
    Ok(())
}
