//! A tenant's audit log: export as JSON or CSV, and verify its hash chain.

use arkiv_db::entity::audit_log;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::QueryOrder;
use arkiv_domain::access::Action;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    /// `success`, `denied` or `failed`.
    pub outcome: String,
    pub details: serde_json::Value,
    /// Hex SHA-256 of the previous entry's hash and this entry.
    pub hash: String,
    pub prev_hash: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/v1/tenants/{id}/audit", tag = "audit", params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, body = [AuditEntry], description = "JSON, or text/csv with format=csv"), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or_else(|| "json".into());
    if format != "json" && format != "csv" {
        return Err(ApiError::invalid("format", "is json or csv"));
    }
    let t = tenant_for(&state.db, &caller, id, Action::ReadAudit).await?;
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Chain.eq(t.id.to_string()))
        .order_by_asc(audit_log::Column::Seq)
        .all(&state.db)
        .await?;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .map(|r| AuditEntry {
            seq: r.seq,
            at: r.at,
            actor_id: r.actor_id,
            actor_role: r.actor_role,
            action: r.action,
            target: r.target,
            outcome: r.outcome,
            details: r.details,
            hash: hex(&r.hash),
            prev_hash: hex(&r.prev_hash),
        })
        .collect();
    if format == "json" {
        return Ok(axum::Json(entries).into_response());
    }
    let mut csv =
        String::from("seq,at,actor_id,actor_role,action,target,outcome,details,prev_hash,hash\n");
    for e in &entries {
        let fields = [
            e.seq.to_string(),
            e.at.to_rfc3339(),
            e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
            e.actor_role.clone().unwrap_or_default(),
            e.action.clone(),
            e.target.clone().unwrap_or_default(),
            e.outcome.clone(),
            e.details.to_string(),
            e.prev_hash.clone(),
            e.hash.clone(),
        ];
        csv.push_str(
            &fields
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        csv.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4180: quote fields with commas, quotes or line breaks.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Verification {
    pub entries: u64,
    pub intact: bool,
    /// The first entry whose hash or link does not check out.
    pub first_broken: Option<i64>,
}

#[utoipa::path(get, path = "/v1/tenants/{id}/audit/verify", tag = "audit", params(("id" = Uuid, Path)),
    responses((status = 200, body = Verification), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Verification>, ApiError> {
    let t = tenant_for(&state.db, &caller, id, Action::ReadAudit).await?;
    let v = arkiv_db::audit::verify(&state.db, Some(t.id)).await?;
    Ok(axum::Json(Verification {
        entries: v.entries,
        intact: v.is_intact(),
        first_broken: v.first_broken,
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(super::csv_field("plain"), "plain");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
