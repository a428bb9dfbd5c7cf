//! Backup runs: start one per connection, follow its progress, read its
//! errors. A run is recorded `queued` and its request published to the
//! provider's run queue, where a connector instance takes it.

use arkiv_backup::request::RunRequest;
use arkiv_db::entity::{connections, run_errors, runs};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};
use arkiv_domain::access::Action;
use arkiv_domain::Provider;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;

/// A run and its progress. `items` counts items seen at the source,
/// `new_versions` the versions it added to the backup, `bytes` their size;
/// `published` and `settled` are the work items queued for and stored by
/// the worker (a run finishes once they meet).
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    pub run_id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    /// queued, running, succeeded, partially_failed or failed.
    pub status: String,
    /// api or schedule.
    pub trigger: String,
    pub requested_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub items: i64,
    pub new_versions: i64,
    pub bytes: i64,
    pub errors: i32,
    pub published: i64,
    pub settled: i64,
    /// Time spent waiting because the provider throttled the run.
    pub throttled_ms: i64,
    /// Per workload: `{"mail": {"items": n, "bytes": n}, ...}`.
    #[schema(value_type = Object)]
    pub workloads: serde_json::Value,
    /// Why the run failed as a whole, if it did.
    pub detail: Option<String>,
}

impl From<runs::Model> for RunOut {
    fn from(r: runs::Model) -> Self {
        RunOut {
            run_id: r.id,
            tenant_id: r.tenant_id,
            connection_id: r.connection_id,
            status: r.state,
            trigger: r.trigger,
            requested_at: r.requested_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            items: r.items,
            new_versions: r.new_versions,
            bytes: r.bytes,
            errors: r.errors,
            published: r.published,
            settled: r.settled,
            throttled_ms: r.throttled_ms,
            workloads: r.workload_counts,
            detail: r.detail,
        }
    }
}

/// An error of a run: an account's (a mailbox Graph refused) or one item's.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunErrorOut {
    pub account_id: Option<Uuid>,
    pub workload: Option<String>,
    /// The provider's id of the item that failed.
    pub item_ref: Option<String>,
    pub code: String,
    /// The provider's request id, for a support case with the provider.
    pub request_id: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunOut,
    pub error_list: Vec<RunErrorOut>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBackup {
    /// Only this connection (default: every active connection).
    pub connection_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupStarted {
    /// One run per connection: new, or the one already queued or running.
    pub runs: Vec<RunOut>,
}

#[utoipa::path(post, path = "/v1/tenants/{id}/backups", tag = "backups", params(("id" = Uuid, Path)),
    request_body = StartBackup,
    responses((status = 202, body = BackupStarted), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem, description = "the run queue is unavailable")),
    security(("token" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Json(body): Json<StartBackup>,
) -> Result<(StatusCode, axum::Json<BackupStarted>), ApiError> {
    let requested_by = caller.principal.id.as_uuid();
    let (started, fresh) = audited(&state, &caller, "backup.start", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let t = tenant_for(txn, &caller, tenant_id, Action::ManageTenantData).await?;
            let mut query = connections::Entity::find()
                .filter(connections::Column::TenantId.eq(t.id))
                .filter(connections::Column::Status.eq("active"));
            if let Some(id) = body.connection_id {
                query = query.filter(connections::Column::Id.eq(id));
            }
            let active = query.all(txn).await?;
            if active.is_empty() {
                return Err(match body.connection_id {
                    Some(_) => ApiError::invalid(
                        "connection_id",
                        "no active connection of this tenant has that id",
                    ),
                    None => ApiError::invalid(
                        "tenant",
                        "the tenant has no active connection: connect Microsoft 365 or Google Workspace first",
                    ),
                });
            }
            let mut started = Vec::new();
            let mut fresh = Vec::new();
            for c in active {
                let running = runs::Entity::find()
                    .filter(runs::Column::ConnectionId.eq(c.id))
                    .filter(runs::Column::State.is_in(["queued", "running"]))
                    .one(txn)
                    .await?;
                let run = match running {
                    Some(run) => run,
                    None => {
                        let run = runs::ActiveModel {
                            id: Set(Uuid::now_v7()),
                            tenant_id: Set(t.id),
                            connection_id: Set(c.id),
                            trigger: Set("api".into()),
                            state: Set("queued".into()),
                            requested_by: Set(Some(requested_by)),
                            requested_at: Set(Utc::now()),
                            ..Default::default()
                        }
                        .insert(txn)
                        .await?;
                        let provider: Provider = c.provider.parse().map_err(ApiError::internal)?;
                        fresh.push((provider, run.id, c.id));
                        run
                    }
                };
                started.push(run);
            }
            let ids: Vec<String> = started.iter().map(|r| r.id.to_string()).collect();
            Ok((
                (started, fresh),
                Audited {
                    tenant: Some(t.id),
                    target: Some(t.id.to_string()),
                    details: json!({ "runs": ids }),
                },
            ))
        })
    })
    .await?;
    // Queued runs are published once recorded; one that cannot be is
    // failed at once rather than left queued forever.
    for (provider, run_id, connection_id) in fresh {
        let request = RunRequest {
            run_id,
            tenant_id,
            connection_id,
        };
        if let Err(e) = state.runs.publish(provider, &request).await {
            runs::Entity::update_many()
                .col_expr(runs::Column::State, Expr::value("failed"))
                .col_expr(runs::Column::FinishedAt, Expr::value(Utc::now()))
                .col_expr(
                    runs::Column::Detail,
                    Expr::value(format!("the run could not be queued: {e}")),
                )
                .filter(runs::Column::Id.eq(run_id))
                .exec(&state.db)
                .await?;
            return Err(ApiError::Unavailable(format!(
                "the run queue is unavailable ({e}); try again shortly"
            )));
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(BackupStarted {
            runs: started.into_iter().map(RunOut::from).collect(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// At most this many runs, newest first (default 20, at most 200).
    pub limit: Option<u64>,
}

#[utoipa::path(get, path = "/v1/tenants/{id}/backups", tag = "backups", params(("id" = Uuid, Path), ListQuery),
    responses((status = 200, body = [RunOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<RunOut>>, ApiError> {
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenant).await?;
    let rows = runs::Entity::find()
        .filter(runs::Column::TenantId.eq(t.id))
        .order_by_desc(runs::Column::RequestedAt)
        .limit(query.limit.unwrap_or(20).clamp(1, 200))
        .all(&state.db)
        .await?;
    Ok(axum::Json(rows.into_iter().map(RunOut::from).collect()))
}

#[utoipa::path(get, path = "/v1/runs/{id}", tag = "backups", params(("id" = Uuid, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(run_id): Path<Uuid>,
) -> Result<axum::Json<RunDetail>, ApiError> {
    let run = runs::Entity::find_by_id(run_id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("run"))?;
    tenant_for(&state.db, &caller, run.tenant_id, Action::ReadTenant)
        .await
        .map_err(|_| ApiError::NotFound("run"))?;
    let errors = run_errors::Entity::find()
        .filter(run_errors::Column::RunId.eq(run.id))
        .order_by_asc(run_errors::Column::Id)
        .limit(500)
        .all(&state.db)
        .await?;
    Ok(axum::Json(RunDetail {
        run: run.into(),
        error_list: errors
            .into_iter()
            .map(|e| RunErrorOut {
                account_id: e.account_id,
                workload: e.workload,
                item_ref: e.item_ref,
                code: e.code,
                request_id: e.request_id,
                message: e.message,
                at: e.at,
            })
            .collect(),
    }))
}
