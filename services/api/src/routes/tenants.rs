//! `/v1/tenants`: customer organisations. Creating one also creates its
//! data and dedup keys, wrapped by the master key.

use arkiv_crypto::TenantKeys;
use arkiv_db::entity::{retention_policies, tenant_keys, tenants};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{ActiveValue::Set, Condition, QueryOrder};
use arkiv_domain::access::{Action, Context, Scope};
use arkiv_domain::{PartnerId, Role, SubscriptionState, TenantId};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::{partner, require, tenant_for};
use crate::state::AppState;
use crate::validate;

/// New tenants start with a trial of this length.
pub const TRIAL: Duration = Duration::days(14);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub partner_id: Uuid,
    pub name: String,
    /// One of the deployment's regions (`s3.buckets`); the tenant's data
    /// never leaves it.
    pub region: String,
    /// Defaults to `standard`.
    pub plan: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    pub id: Uuid,
    pub partner_id: Uuid,
    pub name: String,
    pub region: String,
    pub plan: String,
    /// `trial`, `active`, `ended` or `purged`.
    pub subscription_state: String,
    pub trial_ends_at: Option<chrono::DateTime<Utc>>,
    pub ended_at: Option<chrono::DateTime<Utc>>,
    pub purge_after: Option<chrono::DateTime<Utc>>,
    /// Whether accounts discovered later are backed up by default.
    pub include_new_accounts: bool,
    pub created_at: chrono::DateTime<Utc>,
}

impl From<tenants::Model> for TenantOut {
    fn from(t: tenants::Model) -> Self {
        Self {
            id: t.id,
            partner_id: t.partner_id,
            name: t.name,
            region: t.region,
            plan: t.plan,
            subscription_state: t.subscription_state,
            trial_ends_at: t.trial_ends_at,
            ended_at: t.ended_at,
            purge_after: t.purge_after,
            include_new_accounts: t.include_new_accounts,
            created_at: t.created_at,
        }
    }
}

fn plan(value: Option<&str>) -> Result<String, ApiError> {
    match value.map(str::trim) {
        None => Ok("standard".into()),
        Some(p)
            if !p.is_empty()
                && p.len() <= 40
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok(p.to_owned())
        }
        Some(_) => Err(ApiError::invalid(
            "plan",
            "must be 1 to 40 letters, digits, '-' or '_'",
        )),
    }
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantOut), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantOut>), ApiError> {
    let out = audited(&state, &caller, "tenant.create", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            require(
                &caller,
                Action::CreateTenant,
                Scope::Partner(PartnerId::from_uuid(body.partner_id)),
                Context::default(),
                "partner",
            )?;
            partner(txn, body.partner_id).await?;
            let name = validate::name("name", &body.name)?;
            let region = validate::region("region", &body.region, &state.regions)?;
            let plan = plan(body.plan.as_deref())?;
            let id = TenantId::new().as_uuid();
            let now = Utc::now();
            let row = tenants::ActiveModel {
                id: Set(id),
                partner_id: Set(body.partner_id),
                name: Set(name),
                region: Set(region.to_string()),
                plan: Set(plan),
                subscription_state: Set(SubscriptionState::Trial.as_str().to_owned()),
                trial_ends_at: Set(Some(now + TRIAL)),
                ended_at: Set(None),
                purge_after: Set(None),
                include_new_accounts: Set(true),
                last_login_at: Set(None),
                last_successful_run_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                inactive_notified_at: Set(None),
            }
            .insert(txn)
            .await?;
            let wrapped = TenantKeys::generate().wrap(&state.master, id.as_bytes());
            tenant_keys::ActiveModel {
                tenant_id: Set(id),
                wrapped_data_key: Set(wrapped.data),
                wrapped_dedup_key: Set(wrapped.dedup),
                key_version: Set(1),
                created_at: Set(now),
            }
            .insert(txn)
            .await?;
            retention_policies::ActiveModel {
                tenant_id: Set(id),
                workload: Set("*".into()),
                keep_versions_days: Set(None),
                keep_deleted_days: Set(None),
                updated_at: Set(now),
            }
            .insert(txn)
            .await?;
            let audited = Audited {
                tenant: Some(id),
                target: Some(id.to_string()),
                details: json!({ "region": region.as_str(), "partner_id": body.partner_id }),
            };
            Ok((TenantOut::from(row), audited))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Only this partner's tenants.
    pub partner_id: Option<Uuid>,
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", params(ListQuery),
    responses((status = 200, body = [TenantOut])), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Vec<TenantOut>>, ApiError> {
    let p = &caller.principal;
    let mut cond = Condition::all();
    match p.role {
        Role::Operator => {}
        Role::PartnerAdmin => {
            cond = cond.add(tenants::Column::PartnerId.eq(p.partner.map(|x| x.as_uuid())))
        }
        Role::TenantAdmin => cond = cond.add(tenants::Column::Id.eq(p.tenant.map(|x| x.as_uuid()))),
        Role::Support => {
            if let Some(own) = p.partner {
                cond = cond.add(tenants::Column::PartnerId.eq(own.as_uuid()));
            }
        }
    }
    if let Some(partner) = q.partner_id {
        cond = cond.add(tenants::Column::PartnerId.eq(partner));
    }
    let rows = tenants::Entity::find()
        .filter(cond)
        .order_by_asc(tenants::Column::CreatedAt)
        .all(&state.db)
        .await?;
    Ok(axum::Json(rows.into_iter().map(TenantOut::from).collect()))
}

#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    Ok(axum::Json(
        tenant_for(&state.db, &caller, id, Action::ReadTenant)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub include_new_accounts: Option<bool>,
    /// Partner admins and operators: the plan.
    pub plan: Option<String>,
    /// Partner admins and operators: `active` to activate a trial.
    pub subscription_state: Option<String>,
}

#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "tenants", params(("id" = Uuid, Path)), request_body = UpdateTenant,
    responses((status = 200, body = TenantOut), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateTenant>,
) -> Result<axum::Json<TenantOut>, ApiError> {
    let out = audited(&state, &caller, "tenant.update", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let subscription = body.plan.is_some() || body.subscription_state.is_some();
            let action = if subscription {
                Action::ManageSubscription
            } else {
                Action::ManageTenant
            };
            let t = tenant_for(txn, &caller, id, action).await?;
            let mut row: tenants::ActiveModel = t.clone().into();
            if let Some(name) = &body.name {
                row.name = Set(validate::name("name", name)?);
            }
            if let Some(include) = body.include_new_accounts {
                row.include_new_accounts = Set(include);
            }
            if body.plan.is_some() {
                row.plan = Set(plan(body.plan.as_deref())?);
            }
            match body.subscription_state.as_deref() {
                None => {}
                Some("active")
                    if t.subscription_state == "trial" || t.subscription_state == "active" =>
                {
                    row.subscription_state = Set("active".into());
                }
                Some("active") => {
                    return Err(ApiError::invalid(
                        "subscription_state",
                        format!(
                            "a {} subscription cannot be activated here",
                            t.subscription_state
                        ),
                    ))
                }
                Some(other) => {
                    return Err(ApiError::invalid(
                        "subscription_state",
                        format!("{other:?} is not a state you can set here; use `active`"),
                    ))
                }
            }
            row.updated_at = Set(Utc::now());
            let updated = row.update(txn).await?;
            Ok((
                TenantOut::from(updated),
                Audited {
                    tenant: Some(id),
                    target: Some(id.to_string()),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok(axum::Json(out))
}
