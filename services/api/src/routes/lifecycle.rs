//! The end of a subscription and erasure requests. The API records what
//! is asked; the scheduler carries it out (see `arkiv-scheduler`'s
//! `tenants` and `erasure` modules) and audits each step.

use arkiv_db::entity::{erasure_requests, tenants};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::ActiveValue::Set;
use arkiv_db::sea_orm::QueryOrder;
use arkiv_domain::access::Action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::routes::tenants::TenantOut;
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::tenant_data;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndTenant {
    /// Purge at once instead of after the grace period (a customer who asks
    /// for immediate deletion).
    #[serde(default)]
    pub purge_now: bool,
}

#[utoipa::path(post, path = "/v1/tenants/{id}/end", tag = "tenants", params(("id" = Uuid, Path)), request_body = EndTenant,
    responses((status = 200, body = TenantOut), (status = 404, body = Problem), (status = 409, body = Problem)), security(("token" = [])))]
/// End the tenant's subscription: backups stop, and its data is purged
/// after the grace period (`lifecycle.tenant_purge_grace_hours`, 48 h by
/// default) unless it is reactivated first, or at once with `purge_now`.
pub async fn end(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<EndTenant>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let purge_now = body.purge_now;
    let grace = chrono::Duration::hours(state.lifecycle.tenant_purge_grace_hours as i64);
    end_or_purge(&state, &caller, id, purge_now, grace, "tenant.end").await
}

#[utoipa::path(post, path = "/v1/tenants/{id}/purge", tag = "tenants", params(("id" = Uuid, Path)), request_body = EndTenant,
    responses((status = 200, body = TenantOut), (status = 404, body = Problem), (status = 409, body = Problem)), security(("token" = [])))]
/// Purge an ended tenant now. A tenant whose subscription is still active is
/// refused unless `purge_now` says to end it and purge it at once.
pub async fn purge(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<EndTenant>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let purge_now = body.purge_now;
    let t = tenant_for(&state.db, &caller, id, Action::ManageSubscription).await?;
    if t.subscription_state != "ended" && !purge_now {
        return Err(refuse_active(&state, &caller, &t).await);
    }
    end_or_purge(
        &state,
        &caller,
        id,
        true,
        chrono::Duration::zero(),
        "tenant.purge_request",
    )
    .await
}

/// Refused, and the refusal audited.
async fn refuse_active(state: &AppState, caller: &Caller, t: &tenants::Model) -> ApiError {
    let message = format!(
        "tenant {} has a {} subscription: end it first (`arkiv tenant end`), or pass --purge-now to end it and purge it at once",
        t.id, t.subscription_state
    );
    let refused = ApiError::Conflict {
        field: Some("purge_now".into()),
        message: message.clone(),
    };
    let id = t.id;
    let _ = audited::<(), _>(state, caller, "tenant.purge_request", |_| {
        Box::pin(async move {
            Err(ApiError::Conflict {
                field: Some("purge_now".into()),
                message: format!("refused: tenant {id} is active"),
            })
        })
    })
    .await;
    refused
}

async fn end_or_purge(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    purge_now: bool,
    grace: chrono::Duration,
    action: &'static str,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let out = audited(state, caller, action, |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let t = tenant_for(txn, &caller, id, Action::ManageSubscription).await?;
            let now = Utc::now();
            let purge_after = if purge_now { now } else { now + grace };
            let mut row: tenants::ActiveModel = t.clone().into();
            match t.subscription_state.as_str() {
                "trial" | "active" => {
                    row.subscription_state = Set("ended".into());
                    row.ended_at = Set(Some(now));
                    row.purge_after = Set(Some(purge_after));
                }
                // Ended already: only an earlier purge changes anything.
                "ended" if purge_now => row.purge_after = Set(Some(now)),
                "ended" => {}
                _ => {
                    return Err(ApiError::Conflict {
                        field: None,
                        message: format!("tenant {id} is being purged"),
                    })
                }
            }
            row.updated_at = Set(now);
            let updated = row.update(txn).await?;
            Ok((
                TenantOut::from(updated.clone()),
                Audited {
                    tenant: Some(id),
                    target: Some(id.to_string()),
                    details: json!({ "purge_now": purge_now, "purge_after": updated.purge_after }),
                },
            ))
        })
    })
    .await?;
    Ok(axum::Json(out))
}

#[utoipa::path(post, path = "/v1/tenants/{id}/reactivate", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem), (status = 409, body = Problem)), security(("token" = [])))]
/// Reactivate an ended subscription before its purge: the purge is
/// cancelled and nothing was lost.
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let out = audited(&state, &caller, "tenant.reactivate", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let t = tenant_for(txn, &caller, id, Action::ManageSubscription).await?;
            if t.subscription_state != "ended" {
                return Err(ApiError::Conflict {
                    field: None,
                    message: format!(
                        "tenant {id} is {}: only an ended subscription can be reactivated",
                        t.subscription_state
                    ),
                });
            }
            let mut row: tenants::ActiveModel = t.into();
            row.subscription_state = Set("active".into());
            row.ended_at = Set(None);
            row.purge_after = Set(None);
            row.inactive_notified_at = Set(None);
            row.updated_at = Set(Utc::now());
            let updated = row.update(txn).await?;
            Ok((
                TenantOut::from(updated),
                Audited {
                    tenant: Some(id),
                    target: Some(id.to_string()),
                    details: json!({ "purge": "cancelled" }),
                },
            ))
        })
    })
    .await?;
    Ok(axum::Json(out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseAccount {
    /// The protected account's address.
    pub account: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureOut {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Option<Uuid>,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    pub requested_at: chrono::DateTime<Utc>,
    pub completed_at: Option<chrono::DateTime<Utc>>,
    pub deleted_items: i64,
    pub deleted_versions: i64,
    pub deleted_chunks: i64,
}

impl From<erasure_requests::Model> for ErasureOut {
    fn from(e: erasure_requests::Model) -> Self {
        Self {
            id: e.id,
            tenant_id: e.tenant_id,
            account_id: e.account_id,
            state: e.state,
            requested_at: e.requested_at,
            completed_at: e.completed_at,
            deleted_items: e.deleted_items,
            deleted_versions: e.deleted_versions,
            deleted_chunks: e.deleted_chunks,
        }
    }
}

#[utoipa::path(post, path = "/v1/tenants/{id}/erasures", tag = "erasures", params(("id" = Uuid, Path)), request_body = EraseAccount,
    responses((status = 202, body = ErasureOut), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
/// Ask for every version of one account to be erased (GDPR art. 17). The
/// scheduler carries it out within its next lifecycle pass; the account is
/// excluded from backups from then on.
pub async fn request_erasure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<EraseAccount>,
) -> Result<(StatusCode, axum::Json<ErasureOut>), ApiError> {
    let st = state.clone();
    let out = audited(&state, &caller, "erasure.request", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let t = tenant_for(txn, &caller, id, Action::ManageTenantData).await?;
            let account =
                tenant_data::account_by_email(&st, txn, t.id, "account", &body.account).await?;
            let open = erasure_requests::Entity::find()
                .filter(erasure_requests::Column::AccountId.eq(account.id))
                .filter(erasure_requests::Column::State.is_in(["queued", "running"]))
                .one(txn)
                .await?;
            let row = match open {
                // Asked twice: the same request.
                Some(open) => open,
                None => {
                    erasure_requests::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        tenant_id: Set(t.id),
                        account_id: Set(Some(account.id)),
                        account_hash: Set(account.email_hash.clone()),
                        requested_by: Set(Some(caller.principal.id.as_uuid())),
                        requested_at: Set(Utc::now()),
                        state: Set("queued".into()),
                        completed_at: Set(None),
                        deleted_items: Set(0),
                        deleted_versions: Set(0),
                        deleted_chunks: Set(0),
                        list_hash: Set(None),
                        certificate: Set(None),
                    }
                    .insert(txn)
                    .await?
                }
            };
            Ok((
                ErasureOut::from(row.clone()),
                Audited {
                    tenant: Some(t.id),
                    target: Some(row.id.to_string()),
                    details: json!({ "account_id": account.id }),
                },
            ))
        })
    })
    .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(out)))
}

async fn erasure_for(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<erasure_requests::Model, ApiError> {
    let e = erasure_requests::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("erasure"))?;
    tenant_for(&state.db, caller, e.tenant_id, Action::ReadTenant)
        .await
        .map_err(|_| ApiError::NotFound("erasure"))?;
    Ok(e)
}

#[utoipa::path(get, path = "/v1/erasures/{id}", tag = "erasures", params(("id" = Uuid, Path)),
    responses((status = 200, body = ErasureOut), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get_erasure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ErasureOut>, ApiError> {
    Ok(axum::Json(erasure_for(&state, &caller, id).await?.into()))
}

#[utoipa::path(get, path = "/v1/tenants/{id}/erasures", tag = "erasures", params(("id" = Uuid, Path)),
    responses((status = 200, body = [ErasureOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list_erasures(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<ErasureOut>>, ApiError> {
    let t = tenant_for(&state.db, &caller, id, Action::ReadTenant).await?;
    let rows = erasure_requests::Entity::find()
        .filter(erasure_requests::Column::TenantId.eq(t.id))
        .order_by_desc(erasure_requests::Column::RequestedAt)
        .all(&state.db)
        .await?;
    Ok(axum::Json(rows.into_iter().map(ErasureOut::from).collect()))
}

#[utoipa::path(get, path = "/v1/erasures/{id}/certificate", tag = "erasures", params(("id" = Uuid, Path)),
    responses((status = 200, description = "The erasure certificate: what was deleted, when, counts, and the SHA-256 of the list of deleted version ids"),
        (status = 404, body = Problem), (status = 409, body = Problem)), security(("token" = [])))]
pub async fn certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let e = erasure_for(&state, &caller, id).await?;
    match (e.state.as_str(), e.certificate) {
        ("succeeded", Some(c)) => Ok(axum::Json(c)),
        (s, _) => Err(ApiError::Conflict {
            field: None,
            message: format!("erasure {id} is {s}: its certificate exists once it has succeeded"),
        }),
    }
}
