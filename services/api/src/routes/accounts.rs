//! Protected accounts: which mailboxes, drives and calendars are backed up.

use arkiv_db::accounts::AccountKeys;
use arkiv_db::entity::protected_accounts;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{ActiveValue::Set, QueryOrder};
use arkiv_domain::access::Action;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, record_read, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub email: String,
    pub included: bool,
    /// When an excluded account's data will be purged, unless included again.
    pub purge_after: Option<chrono::DateTime<Utc>>,
    pub discovered_at: chrono::DateTime<Utc>,
}

fn out(state: &AppState, a: protected_accounts::Model) -> AccountOut {
    let keys = AccountKeys {
        blind: &state.blind,
        seal: &state.service,
    };
    AccountOut {
        email: arkiv_db::accounts::email(&keys, &a).unwrap_or_default(),
        id: a.id,
        connection_id: a.connection_id,
        included: a.included,
        purge_after: a.purge_after,
        discovered_at: a.discovered_at,
    }
}

#[utoipa::path(get, path = "/v1/tenants/{id}/accounts", tag = "accounts", params(("id" = Uuid, Path)),
    responses((status = 200, body = [AccountOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
) -> Result<axum::Json<Vec<AccountOut>>, ApiError> {
    // Addresses are the tenant's personal data: support needs a grant.
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenantData).await?;
    let rows = protected_accounts::Entity::find()
        .filter(protected_accounts::Column::TenantId.eq(t.id))
        .order_by_asc(protected_accounts::Column::DiscoveredAt)
        .all(&state.db)
        .await?;
    record_read(
        &state,
        &caller,
        "account.list",
        t.id,
        json!({ "accounts": rows.len() }),
    )
    .await?;
    Ok(axum::Json(
        rows.into_iter().map(|a| out(&state, a)).collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// Back up this account (true) or stop and, after the grace period,
    /// purge its data (false).
    pub included: bool,
}

#[utoipa::path(patch, path = "/v1/accounts/{id}", tag = "accounts", params(("id" = Uuid, Path)), request_body = UpdateAccount,
    responses((status = 200, body = AccountOut), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateAccount>,
) -> Result<axum::Json<AccountOut>, ApiError> {
    // How long an excluded account's data is kept before it is purged.
    let grace = chrono::Duration::hours(state.lifecycle.account_purge_grace_hours as i64);
    let row = audited(
        &state,
        &caller,
        if body.included {
            "account.include"
        } else {
            "account.exclude"
        },
        |txn| {
            let caller = caller.clone();
            Box::pin(async move {
                let a = protected_accounts::Entity::find_by_id(id)
                    .one(txn)
                    .await?
                    .ok_or(ApiError::NotFound("account"))?;
                tenant_for(txn, &caller, a.tenant_id, Action::ManageTenantData)
                    .await
                    .map_err(|_| ApiError::NotFound("account"))?;
                let tenant = a.tenant_id;
                let now = Utc::now();
                let mut row: protected_accounts::ActiveModel = a.clone().into();
                match (a.included, body.included) {
                    (false, true) => {
                        row.included = Set(true);
                        row.excluded_at = Set(None);
                        row.purge_after = Set(None);
                    }
                    (true, false) => {
                        row.included = Set(false);
                        row.excluded_at = Set(Some(now));
                        row.purge_after = Set(Some(now + grace));
                    }
                    _ => {}
                }
                let updated = row.update(txn).await?;
                Ok((
                    updated,
                    Audited {
                        tenant: Some(tenant),
                        target: Some(id.to_string()),
                        ..Default::default()
                    },
                ))
            })
        },
    )
    .await?;
    Ok(axum::Json(out(&state, row)))
}
