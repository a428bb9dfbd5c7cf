//! Support grants: a tenant's time-limited permission for support staff to
//! see its backup data.

use arkiv_db::entity::support_grants;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{ActiveValue::Set, QueryOrder};
use arkiv_domain::access::Action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// 1 to 720 hours (30 days).
    pub hours: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantOut {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub granted_at: chrono::DateTime<Utc>,
    pub expires_at: chrono::DateTime<Utc>,
    pub revoked_at: Option<chrono::DateTime<Utc>>,
    pub active: bool,
}

impl From<support_grants::Model> for GrantOut {
    fn from(g: support_grants::Model) -> Self {
        Self {
            active: g.revoked_at.is_none() && g.expires_at > Utc::now(),
            id: g.id,
            tenant_id: g.tenant_id,
            granted_at: g.granted_at,
            expires_at: g.expires_at,
            revoked_at: g.revoked_at,
        }
    }
}

#[utoipa::path(post, path = "/v1/tenants/{id}/support-grants", tag = "support", params(("id" = Uuid, Path)), request_body = CreateGrant,
    responses((status = 201, body = GrantOut), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Json(body): Json<CreateGrant>,
) -> Result<(StatusCode, axum::Json<GrantOut>), ApiError> {
    let grant = audited(&state, &caller, "support_grant.create", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let t = tenant_for(txn, &caller, tenant_id, Action::ManageSupportGrant).await?;
            let hours = validate::range("hours", body.hours, 1, 720)?;
            let now = Utc::now();
            let row = support_grants::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(t.id),
                granted_by: Set(Some(caller.principal.id.as_uuid())),
                granted_at: Set(now),
                expires_at: Set(now + Duration::hours(hours)),
                revoked_at: Set(None),
            }
            .insert(txn)
            .await?;
            let audited = Audited {
                tenant: Some(t.id),
                target: Some(row.id.to_string()),
                details: json!({ "hours": hours }),
            };
            Ok((GrantOut::from(row), audited))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(grant)))
}

#[utoipa::path(get, path = "/v1/tenants/{id}/support-grants", tag = "support", params(("id" = Uuid, Path)),
    responses((status = 200, body = [GrantOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
) -> Result<axum::Json<Vec<GrantOut>>, ApiError> {
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenant).await?;
    let rows = support_grants::Entity::find()
        .filter(support_grants::Column::TenantId.eq(t.id))
        .order_by_desc(support_grants::Column::GrantedAt)
        .all(&state.db)
        .await?;
    Ok(axum::Json(rows.into_iter().map(GrantOut::from).collect()))
}

#[utoipa::path(delete, path = "/v1/support-grants/{id}", tag = "support", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    audited(&state, &caller, "support_grant.revoke", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let g = support_grants::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or(ApiError::NotFound("support grant"))?;
            tenant_for(txn, &caller, g.tenant_id, Action::ManageSupportGrant)
                .await
                .map_err(|_| ApiError::NotFound("support grant"))?;
            let tenant = g.tenant_id;
            let mut row: support_grants::ActiveModel = g.into();
            row.revoked_at = Set(Some(Utc::now()));
            row.update(txn).await?;
            Ok((
                (),
                Audited {
                    tenant: Some(tenant),
                    target: Some(id.to_string()),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
