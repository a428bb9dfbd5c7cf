//! A tenant's retention policy, with per-workload overrides.

use std::collections::BTreeMap;

use arkiv_db::entity::retention_policies;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::ActiveValue::Set;
use arkiv_domain::access::Action;
use arkiv_domain::Workload;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::validate;

/// Days to keep; `null` keeps forever.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Keep each version this many days after a newer version replaced
    /// it; the current version of an item is always kept.
    pub keep_versions_days: Option<i32>,
    /// Keep items deleted at the source this many days after deletion.
    pub keep_deleted_days: Option<i32>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(flatten)]
    pub default: Rule,
    /// Per-workload rules (`mail`, `calendar`, `drive`) replacing the default.
    #[serde(default)]
    pub overrides: BTreeMap<String, Rule>,
}

async fn load<C: ConnectionTrait>(db: &C, tenant: Uuid) -> Result<Retention, ApiError> {
    let rows = retention_policies::Entity::find()
        .filter(retention_policies::Column::TenantId.eq(tenant))
        .all(db)
        .await?;
    let mut out = Retention::default();
    for r in rows {
        let rule = Rule {
            keep_versions_days: r.keep_versions_days,
            keep_deleted_days: r.keep_deleted_days,
        };
        if r.workload == "*" {
            out.default = rule;
        } else {
            out.overrides.insert(r.workload, rule);
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/tenants/{id}/retention", tag = "tenants", params(("id" = Uuid, Path)),
    responses((status = 200, body = Retention), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Retention>, ApiError> {
    let t = tenant_for(&state.db, &caller, id, Action::ReadTenant).await?;
    Ok(axum::Json(load(&state.db, t.id).await?))
}

fn check(prefix: &str, rule: &Rule) -> Result<(), ApiError> {
    if let Some(d) = rule.keep_versions_days {
        validate::range(&format!("{prefix}keep_versions_days"), d.into(), 1, 36_500)?;
    }
    if let Some(d) = rule.keep_deleted_days {
        validate::range(&format!("{prefix}keep_deleted_days"), d.into(), 1, 36_500)?;
    }
    Ok(())
}

#[utoipa::path(put, path = "/v1/tenants/{id}/retention", tag = "tenants", params(("id" = Uuid, Path)), request_body = Retention,
    responses((status = 200, body = Retention), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<Retention>,
) -> Result<axum::Json<Retention>, ApiError> {
    let out = audited(&state, &caller, "retention.set", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let t = tenant_for(txn, &caller, id, Action::ManageTenant).await?;
            check("", &body.default)?;
            for (workload, rule) in &body.overrides {
                workload.parse::<Workload>().map_err(|e| {
                    ApiError::invalid(&format!("overrides.{workload}"), e.to_string())
                })?;
                check(&format!("overrides.{workload}."), rule)?;
            }
            retention_policies::Entity::delete_many()
                .filter(retention_policies::Column::TenantId.eq(t.id))
                .exec(txn)
                .await?;
            let now = Utc::now();
            let rows = std::iter::once(("*".to_owned(), body.default))
                .chain(body.overrides.iter().map(|(w, r)| (w.clone(), *r)));
            for (workload, rule) in rows {
                retention_policies::ActiveModel {
                    tenant_id: Set(t.id),
                    workload: Set(workload),
                    keep_versions_days: Set(rule.keep_versions_days),
                    keep_deleted_days: Set(rule.keep_deleted_days),
                    updated_at: Set(now),
                }
                .insert(txn)
                .await?;
            }
            let saved = load(txn, t.id).await?;
            let details = json!({ "default": saved.default, "overrides": saved.overrides });
            Ok((
                saved,
                Audited {
                    tenant: Some(t.id),
                    target: Some(t.id.to_string()),
                    details,
                },
            ))
        })
    })
    .await?;
    Ok(axum::Json(out))
}
