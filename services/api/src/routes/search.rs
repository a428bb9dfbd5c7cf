//! Search of a tenant's backup index, and an item's versions. Metadata is
//! sealed: the query filters on plaintext columns and blind indexes, and
//! only the rows it returns are opened, with the tenant's keys. Both are
//! reads of personal data, so support needs the tenant's grant, and each
//! is in the audit log with the items it returned (never the query's
//! words or addresses).

use arkiv_db::entity::items;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_domain::access::Action;
use arkiv_vault::metadata::Describe;
use arkiv_vault::search::{self, Found, SearchQuery};
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit::record_read;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::{tenant_data, validate};

/// One item found: its latest version.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub item_id: Uuid,
    pub version: i32,
    pub version_id: Uuid,
    /// The protected account's address.
    pub account: String,
    pub workload: String,
    pub captured_at: DateTime<Utc>,
    pub deleted_at_source: Option<DateTime<Utc>>,
    /// The subject, event title or file name.
    pub title: Option<String>,
    /// The sender or organiser.
    pub from: Option<String>,
    /// The item's own date: received, start or modified.
    pub date: Option<DateTime<Utc>>,
    pub size: i64,
    /// Mail: the folder; drive: the file's path.
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Only this protected account (its address).
    pub account: Option<String>,
    /// mail, calendar or drive.
    pub workload: Option<String>,
    /// Words that must all be in the title (subject, event title, file name).
    pub text: Option<String>,
    /// The sender's or organiser's address.
    pub from: Option<String>,
    /// The item's date is on or after this (2026-11-24 or RFC 3339).
    pub after: Option<String>,
    /// The item's date is before this.
    pub before: Option<String>,
    /// Only items deleted at the source.
    pub deleted: Option<bool>,
    /// At most this many items, newest first (default 100, at most 1000).
    pub limit: Option<u64>,
}

/// A query parameter that was given and is not blank.
fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn hit(found: Found, account: String) -> SearchHit {
    let m = &found.metadata;
    SearchHit {
        item_id: found.item_id,
        version: found.version,
        version_id: found.version_id,
        account,
        workload: found.workload.clone(),
        captured_at: found.captured_at,
        deleted_at_source: found.deleted_at_source,
        title: m.title().map(str::to_owned),
        from: m.from.clone(),
        date: m.date.or(found.item_date),
        size: found.size,
        path: m.folder_path.clone().or_else(|| m.file_path.clone()),
    }
}

#[utoipa::path(get, path = "/v1/tenants/{id}/search", tag = "search", params(("id" = Uuid, Path), SearchParams),
    responses((status = 200, body = [SearchHit]), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("token" = [])))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Query(params): Query<SearchParams>,
) -> Result<axum::Json<Vec<SearchHit>>, ApiError> {
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenantData).await?;
    let account = match &params.account {
        Some(email) => Some(
            tenant_data::account_by_email(&state, &state.db, t.id, "account", email)
                .await?
                .id,
        ),
        None => None,
    };
    let query = SearchQuery {
        account,
        workload: match nonempty(&params.workload) {
            Some(w) => Some(validate::workload("workload", w)?),
            None => None,
        },
        text: nonempty(&params.text).map(str::to_owned),
        from: match nonempty(&params.from) {
            Some(f) => Some(validate::email("from", f)?),
            None => None,
        },
        after: match nonempty(&params.after) {
            Some(a) => Some(validate::instant("after", a)?),
            None => None,
        },
        before: match nonempty(&params.before) {
            Some(b) => Some(validate::instant("before", b)?),
            None => None,
        },
        deleted: params.deleted.unwrap_or(false),
        limit: params.limit.unwrap_or(100).clamp(1, search::MAX_LIMIT),
    };
    if let (Some(a), Some(b)) = (query.after, query.before) {
        if a >= b {
            return Err(ApiError::invalid("before", "must be later than `after`"));
        }
    }
    let ctx = tenant_data::keys(&state, t.id).await?;
    let started = std::time::Instant::now();
    let found = search::search(&state.db, &ctx, &query)
        .await
        .map_err(ApiError::internal)?;
    metrics::histogram!("arkiv_api_search_seconds").record(started.elapsed().as_secs_f64());
    let emails = tenant_data::emails(&state, &state.db, t.id).await?;
    let ids: Vec<String> = found.iter().map(|f| f.item_id.to_string()).collect();
    // Which filters were used, never their values: the log outlives the
    // tenant's data and holds nothing personal.
    record_read(
        &state,
        &caller,
        "search",
        t.id,
        json!({
            "filters": {
                "account": query.account.map(|a| a.to_string()),
                "workload": query.workload.map(|w| w.as_str()),
                "text": query.text.is_some(),
                "from": query.from.is_some(),
                "after": query.after,
                "before": query.before,
                "deleted": query.deleted,
            },
            "items": ids,
        }),
    )
    .await?;
    Ok(axum::Json(
        found
            .into_iter()
            .map(|f| {
                let account = emails.get(&f.account_id).cloned().unwrap_or_default();
                hit(f, account)
            })
            .collect(),
    ))
}

/// One version of an item.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionOut {
    pub version_id: Uuid,
    pub version: i32,
    pub captured_at: DateTime<Utc>,
    pub deleted_at_source: Option<DateTime<Utc>>,
    pub size: i64,
    pub title: Option<String>,
    pub from: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub path: Option<String>,
}

/// An item and its versions, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemVersions {
    pub item_id: Uuid,
    pub tenant_id: Uuid,
    pub account: String,
    pub workload: String,
    pub deleted_at_source: Option<DateTime<Utc>>,
    pub versions: Vec<VersionOut>,
}

/// The item, if the caller may read its tenant's data; 404 otherwise.
pub async fn item_for(
    db: &impl arkiv_db::sea_orm::ConnectionTrait,
    caller: &Caller,
    item_id: Uuid,
    action: Action,
) -> Result<items::Model, ApiError> {
    let item = items::Entity::find_by_id(item_id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("item"))?;
    tenant_for(db, caller, item.tenant_id, action)
        .await
        .map_err(|_| ApiError::NotFound("item"))?;
    Ok(item)
}

#[utoipa::path(get, path = "/v1/items/{id}/versions", tag = "search", params(("id" = Uuid, Path)),
    responses((status = 200, body = ItemVersions), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(item_id): Path<Uuid>,
) -> Result<axum::Json<ItemVersions>, ApiError> {
    let item = item_for(&state.db, &caller, item_id, Action::ReadTenantData).await?;
    let ctx = tenant_data::keys(&state, item.tenant_id).await?;
    let found = search::versions(&state.db, &ctx, item.id)
        .await
        .map_err(ApiError::internal)?;
    let emails = tenant_data::emails(&state, &state.db, item.tenant_id).await?;
    record_read(
        &state,
        &caller,
        "item.versions",
        item.tenant_id,
        json!({ "items": [item.id.to_string()] }),
    )
    .await?;
    Ok(axum::Json(ItemVersions {
        item_id: item.id,
        tenant_id: item.tenant_id,
        account: emails.get(&item.account_id).cloned().unwrap_or_default(),
        workload: item.workload,
        deleted_at_source: item.deleted_at_source,
        versions: found
            .into_iter()
            .map(|f| {
                let m = &f.metadata;
                VersionOut {
                    version_id: f.version_id,
                    version: f.version,
                    captured_at: f.captured_at,
                    deleted_at_source: f.deleted_at_source,
                    size: f.size,
                    title: m.title().map(str::to_owned),
                    from: m.from.clone(),
                    date: m.date.or(f.item_date),
                    path: m.folder_path.clone().or_else(|| m.file_path.clone()),
                }
            })
            .collect(),
    }))
}
