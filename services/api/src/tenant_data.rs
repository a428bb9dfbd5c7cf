//! What search, restore and export share: finding a tenant's protected
//! account by address, showing accounts' addresses, and the tenant's keys.

use std::collections::HashMap;
use std::sync::Arc;

use arkiv_db::accounts::AccountKeys;
use arkiv_db::entity::protected_accounts;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::ConnectionTrait;
use arkiv_vault::keyring::TenantContext;

use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

fn account_keys(state: &AppState) -> AccountKeys<'_> {
    AccountKeys {
        blind: &state.blind,
        seal: &state.service,
    }
}

/// The tenant's protected account with this address, or an error naming
/// `field`.
pub async fn account_by_email(
    state: &AppState,
    db: &impl ConnectionTrait,
    tenant: Uuid,
    field: &str,
    email: &str,
) -> Result<protected_accounts::Model, ApiError> {
    let email = validate::email(field, email)?;
    let hash = arkiv_db::accounts::email_hash(&account_keys(state), &email);
    protected_accounts::Entity::find()
        .filter(protected_accounts::Column::TenantId.eq(tenant))
        .filter(protected_accounts::Column::EmailHash.eq(hash))
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "the tenant has no protected account with that address (see `arkiv account list`)",
            )
        })
}

/// The addresses of the tenant's accounts, by id.
pub async fn emails(
    state: &AppState,
    db: &impl ConnectionTrait,
    tenant: Uuid,
) -> Result<HashMap<Uuid, String>, ApiError> {
    let keys = account_keys(state);
    Ok(protected_accounts::Entity::find()
        .filter(protected_accounts::Column::TenantId.eq(tenant))
        .all(db)
        .await?
        .into_iter()
        .map(|a| {
            let email = arkiv_db::accounts::email(&keys, &a).unwrap_or_default();
            (a.id, email)
        })
        .collect())
}

/// The tenant's keys.
pub async fn keys(state: &AppState, tenant: Uuid) -> Result<Arc<TenantContext>, ApiError> {
    state.keys.get(tenant).await.map_err(ApiError::internal)
}
