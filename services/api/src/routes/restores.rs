//! Restore jobs: write backed-up items back to Microsoft 365 or Google
//! Workspace. The API checks the request whole (the item, the version,
//! the target account and its connection), records the job with the
//! versions it will write, and publishes it to the provider's connector,
//! which holds the credentials. Nothing is written if the request is
//! refused. Support restores only under the tenant's grant; every request,
//! refusal and outcome is audited with the items concerned.

use arkiv_backup::restore::{Collision, RestoreMessage, RestoreRequest};
use arkiv_db::entity::{
    connections, item_versions, protected_accounts, restore_items, restore_jobs,
};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{ActiveValue::Set, DatabaseTransaction, QueryOrder, QuerySelect};
use arkiv_domain::access::Action;
use arkiv_domain::Provider;
use arkiv_vault::search;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::routes::search::item_for;
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::{tenant_data, validate};

/// A restore: one item (`item_id`, optionally `version`), or what an
/// account's workload (optionally one folder) held at a point in time
/// (`account`, `workload`, `at`, optionally `folder` and `tenant_id`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRestore {
    pub item_id: Option<Uuid>,
    /// The version's number (default: the latest).
    pub version: Option<i32>,
    /// The tenant of `account` (needed only when the address is protected
    /// in several tenants the caller can see).
    pub tenant_id: Option<Uuid>,
    /// Point in time: the protected account's address.
    pub account: Option<String>,
    /// Point in time: mail, calendar or drive.
    pub workload: Option<String>,
    /// Point in time: only this mail folder (`Inbox/Projects`) or drive
    /// folder (`/Documents`), and what is below it.
    pub folder: Option<String>,
    /// Point in time: 2026-11-24 or RFC 3339.
    pub at: Option<String>,
    /// Write into this protected account of the same tenant instead.
    pub to_account: Option<String>,
    /// When the target already holds the item: skip (default), rename
    /// (write a second copy beside it) or overwrite.
    pub collision: Option<String>,
}

/// A restore job and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreOut {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    /// queued, running, succeeded, partially_failed or failed.
    pub status: String,
    /// The account written to.
    pub target: String,
    pub collision: String,
    pub items_total: i64,
    /// Items written.
    pub items_done: i64,
    /// Items already there (the collision policy, or an earlier attempt).
    pub items_skipped: i64,
    pub items_failed: i64,
    /// Why it failed, and what to do.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreItemOut {
    pub item_id: Uuid,
    pub version: i32,
    /// pending, started, restored, skipped or failed.
    pub state: String,
    /// The provider's id of what was written (or found there).
    pub target_ref: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RestoreDetail {
    #[serde(flatten)]
    pub job: RestoreOut,
    /// The first 1,000 items, in order.
    pub items: Vec<RestoreItemOut>,
}

fn out(state: &AppState, job: restore_jobs::Model, target: String) -> RestoreOut {
    let collision = RestoreRequest::open(&state.service, job.id, &job.request_sealed)
        .map(|r| r.collision.as_str().to_owned())
        .unwrap_or_default();
    RestoreOut {
        job_id: job.id,
        tenant_id: job.tenant_id,
        status: job.state,
        target,
        collision,
        items_total: job.items_total,
        items_done: job.items_done,
        items_skipped: job.items_skipped,
        items_failed: job.items_failed,
        error: job.error,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
    }
}

/// What a request resolved to, before anything is recorded.
struct Plan {
    tenant: Uuid,
    connection: connections::Model,
    target: protected_accounts::Model,
    request: RestoreRequest,
    versions: Vec<(Uuid, Uuid)>,
}

/// A protected account that can be written to, or why not.
fn writable(account: &protected_accounts::Model, field: &str) -> Result<(), ApiError> {
    if account.removed_at_source.is_some() {
        return Err(ApiError::invalid(
            field,
            "the account no longer exists at the source: restore into another account with to_account",
        ));
    }
    Ok(())
}

async fn plan(
    state: &AppState,
    txn: &DatabaseTransaction,
    caller: &Caller,
    body: &StartRestore,
) -> Result<Plan, ApiError> {
    let collision: Collision = match body.collision.as_deref().map(str::trim) {
        None | Some("") => Collision::default(),
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::invalid("collision", "must be skip, rename or overwrite"))?,
    };
    let (tenant, source_account, workload, folder, at, versions) = match body.item_id {
        Some(item_id) => {
            if body.account.is_some() || body.at.is_some() || body.folder.is_some() {
                return Err(ApiError::invalid(
                    "item_id",
                    "give either item_id (one item) or account, workload and at (a point in time), not both",
                ));
            }
            let item = item_for(txn, caller, item_id, Action::RestoreTenantData).await?;
            let mut query = item_versions::Entity::find()
                .filter(item_versions::Column::ItemId.eq(item.id))
                .order_by_desc(item_versions::Column::Version);
            if let Some(n) = body.version {
                query = query.filter(item_versions::Column::Version.eq(n));
            }
            let version = query.one(txn).await?.ok_or_else(|| {
                ApiError::invalid(
                    "version",
                    format!(
                        "the item has no version {}: it has versions 1 to {} (see `arkiv versions --item {}`)",
                        body.version.unwrap_or_default(),
                        item.latest_version,
                        item.id
                    ),
                )
            })?;
            let workload = validate::workload("item_id", &item.workload)?;
            (
                item.tenant_id,
                item.account_id,
                workload,
                None,
                None,
                vec![(version.id, item.id)],
            )
        }
        None => {
            let (Some(email), Some(workload), Some(at)) = (&body.account, &body.workload, &body.at)
            else {
                return Err(ApiError::invalid(
                    "item_id",
                    "give item_id (one item) or account, workload and at (a point in time)",
                ));
            };
            let workload = validate::workload("workload", workload)?;
            let at = validate::instant("at", at)?;
            let account = account_anywhere(state, txn, caller, body.tenant_id, email).await?;
            let ctx = tenant_data::keys(state, account.tenant_id).await?;
            let folder = body
                .folder
                .as_deref()
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_owned);
            let found = search::as_of(txn, &ctx, account.id, workload, folder.as_deref(), at)
                .await
                .map_err(ApiError::internal)?;
            if found.is_empty() {
                return Err(ApiError::invalid(
                    "at",
                    "the backup holds nothing of that account and folder at that time",
                ));
            }
            let versions = found.iter().map(|f| (f.version_id, f.item_id)).collect();
            (
                account.tenant_id,
                account.id,
                workload,
                folder,
                Some(at),
                versions,
            )
        }
    };
    let source = protected_accounts::Entity::find_by_id(source_account)
        .one(txn)
        .await?
        .ok_or(ApiError::NotFound("account"))?;
    let target = match &body.to_account {
        Some(email) => {
            let t = tenant_data::account_by_email(state, txn, tenant, "to_account", email).await?;
            writable(&t, "to_account")?;
            t
        }
        None => {
            writable(&source, "account")?;
            source.clone()
        }
    };
    let connection = connections::Entity::find_by_id(target.connection_id)
        .one(txn)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    if connection.status != "active" {
        return Err(ApiError::invalid(
            "to_account",
            format!(
                "the account's connection is {}: reconnect it (`arkiv connection show`) before restoring",
                connection.status
            ),
        ));
    }
    // Items go back to the provider they came from.
    let source_connection = connections::Entity::find_by_id(source.connection_id)
        .one(txn)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    if source_connection.provider != connection.provider {
        return Err(ApiError::invalid(
            "to_account",
            "the target account is in another provider: Microsoft 365 items restore into Microsoft 365, Google items into Google Workspace",
        ));
    }
    Ok(Plan {
        tenant,
        connection,
        request: RestoreRequest {
            workload,
            target_account: target.id,
            collision,
            folder,
            at,
        },
        target,
        versions,
    })
}

/// The protected account with this address in a tenant the caller may
/// restore: the given tenant, or the only one that has it.
async fn account_anywhere(
    state: &AppState,
    txn: &DatabaseTransaction,
    caller: &Caller,
    tenant: Option<Uuid>,
    email: &str,
) -> Result<protected_accounts::Model, ApiError> {
    if let Some(tenant) = tenant {
        let t = tenant_for(txn, caller, tenant, Action::RestoreTenantData).await?;
        return tenant_data::account_by_email(state, txn, t.id, "account", email).await;
    }
    let email = validate::email("account", email)?;
    let keys = arkiv_db::accounts::AccountKeys {
        blind: &state.blind,
        seal: &state.service,
    };
    let hash = arkiv_db::accounts::email_hash(&keys, &email);
    let mut candidates = Vec::new();
    for a in protected_accounts::Entity::find()
        .filter(protected_accounts::Column::EmailHash.eq(hash))
        .all(txn)
        .await?
    {
        if tenant_for(txn, caller, a.tenant_id, Action::RestoreTenantData)
            .await
            .is_ok()
        {
            candidates.push(a);
        }
    }
    match candidates.len() {
        0 => Err(ApiError::invalid(
            "account",
            "no tenant you can restore has a protected account with that address",
        )),
        1 => Ok(candidates.remove(0)),
        _ => Err(ApiError::invalid(
            "tenant_id",
            "the address is protected in several tenants: say which with tenant_id",
        )),
    }
}

#[utoipa::path(post, path = "/v1/restores", tag = "restore", request_body = StartRestore,
    responses((status = 202, body = RestoreOut), (status = 404, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem, description = "the restore queue is unavailable")),
    security(("token" = [])))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<StartRestore>,
) -> Result<(StatusCode, axum::Json<RestoreOut>), ApiError> {
    let (job, provider, target) = audited(&state, &caller, "restore.request", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            let plan = plan(&state, txn, &caller, &body).await?;
            let job_id = Uuid::now_v7();
            let provider: Provider = plan
                .connection
                .provider
                .parse()
                .map_err(ApiError::internal)?;
            let request = plan.request.clone();
            let job = restore_jobs::ActiveModel {
                id: Set(job_id),
                tenant_id: Set(plan.tenant),
                requested_by: Set(Some(caller.principal.id.as_uuid())),
                state: Set("queued".into()),
                request_sealed: Set(request.seal(&state.service, job_id)),
                items_total: Set(plan.versions.len() as i64),
                connection_id: Set(Some(plan.connection.id)),
                provider: Set(Some(provider.as_str().to_owned())),
                created_at: Set(Utc::now()),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            for chunk in plan.versions.chunks(1000).enumerate() {
                let (n, versions) = chunk;
                restore_items::Entity::insert_many(versions.iter().enumerate().map(
                    |(i, (version, _))| restore_items::ActiveModel {
                        job_id: Set(job_id),
                        version_id: Set(*version),
                        tenant_id: Set(plan.tenant),
                        seq: Set((n * 1000 + i) as i32),
                        state: Set("pending".into()),
                        updated_at: Set(Utc::now()),
                        ..Default::default()
                    },
                ))
                .exec(txn)
                .await?;
            }
            let items: Vec<String> = plan.versions.iter().map(|(_, i)| i.to_string()).collect();
            let target = tenant_data::emails(&state, txn, plan.tenant)
                .await?
                .remove(&plan.target.id)
                .unwrap_or_default();
            Ok((
                (job, provider, target),
                Audited {
                    tenant: Some(plan.tenant),
                    target: Some(job_id.to_string()),
                    details: json!({
                        "items": items,
                        "target_account": plan.target.id.to_string(),
                        "collision": request.collision.as_str(),
                        "point_in_time": request.at,
                    }),
                },
            ))
        })
    })
    .await?;
    publish(&state, &job, provider).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(out(&state, job, target))))
}

/// Queue a recorded job; one that cannot be queued is failed at once.
async fn publish(
    state: &AppState,
    job: &restore_jobs::Model,
    provider: Provider,
) -> Result<(), ApiError> {
    let message = RestoreMessage {
        job_id: job.id,
        tenant_id: job.tenant_id,
    };
    if let Err(e) = state.runs.publish_restore(provider, &message).await {
        restore_jobs::Entity::update_many()
            .col_expr(restore_jobs::Column::State, Expr::value("failed"))
            .col_expr(restore_jobs::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(
                restore_jobs::Column::Error,
                Expr::value(format!("the job could not be queued: {e}")),
            )
            .filter(restore_jobs::Column::Id.eq(job.id))
            .exec(&state.db)
            .await?;
        return Err(ApiError::Unavailable(format!(
            "the restore queue is unavailable ({e}); try again shortly"
        )));
    }
    Ok(())
}

/// The job, if the caller may see it.
async fn job_for(
    db: &impl arkiv_db::sea_orm::ConnectionTrait,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<restore_jobs::Model, ApiError> {
    let job = restore_jobs::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("restore job"))?;
    tenant_for(db, caller, job.tenant_id, action)
        .await
        .map_err(|_| ApiError::NotFound("restore job"))?;
    Ok(job)
}

async fn target_of(state: &AppState, job: &restore_jobs::Model) -> Result<String, ApiError> {
    let account = RestoreRequest::open(&state.service, job.id, &job.request_sealed)
        .map(|r| r.target_account)
        .ok();
    let emails = tenant_data::emails(state, &state.db, job.tenant_id).await?;
    Ok(account
        .and_then(|a| emails.get(&a).cloned())
        .unwrap_or_default())
}

#[utoipa::path(get, path = "/v1/restores/{id}", tag = "restore", params(("id" = Uuid, Path)),
    responses((status = 200, body = RestoreDetail), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<RestoreDetail>, ApiError> {
    let job = job_for(&state.db, &caller, id, Action::ReadTenantData).await?;
    #[derive(Debug, sea_orm::FromQueryResult)]
    struct Row {
        item_id: Uuid,
        version: i32,
        state: String,
        target_ref: Option<String>,
        error: Option<String>,
    }
    let items = <Row as sea_orm::FromQueryResult>::find_by_statement(
        arkiv_db::sea_orm::Statement::from_sql_and_values(
            arkiv_db::sea_orm::DbBackend::Postgres,
            "SELECT v.item_id, v.version, r.state, r.target_ref, r.error
           FROM restore_items r JOIN item_versions v ON v.id = r.version_id
          WHERE r.job_id = $1 ORDER BY r.seq LIMIT 1000",
            [job.id.into()],
        ),
    )
    .all(&state.db)
    .await?;
    let target = target_of(&state, &job).await?;
    Ok(axum::Json(RestoreDetail {
        job: out(&state, job, target),
        items: items
            .into_iter()
            .map(|r| RestoreItemOut {
                item_id: r.item_id,
                version: r.version,
                state: r.state,
                target_ref: r.target_ref,
                error: r.error,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/restores/{id}/retry", tag = "restore", params(("id" = Uuid, Path)),
    responses((status = 202, body = RestoreOut), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("token" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, axum::Json<RestoreOut>), ApiError> {
    let (job, provider) = audited(&state, &caller, "restore.retry", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let job = job_for(txn, &caller, id, Action::RestoreTenantData).await?;
            if !matches!(job.state.as_str(), "failed" | "partially_failed") {
                return Err(ApiError::Conflict {
                    field: None,
                    message: format!(
                        "the job is {}: only a failed or partially failed job can be retried",
                        job.state
                    ),
                });
            }
            let provider: Provider = job
                .provider
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(ApiError::internal)?;
            restore_items::Entity::update_many()
                .col_expr(restore_items::Column::State, Expr::value("pending"))
                .col_expr(
                    restore_items::Column::Error,
                    Expr::value(Option::<String>::None),
                )
                .filter(restore_items::Column::JobId.eq(job.id))
                .filter(restore_items::Column::State.eq("failed"))
                .exec(txn)
                .await?;
            let mut row: restore_jobs::ActiveModel = job.clone().into();
            row.state = Set("queued".into());
            row.error = Set(None);
            row.finished_at = Set(None);
            row.items_failed = Set(0);
            let job = row.update(txn).await?;
            let tenant = job.tenant_id;
            Ok((
                (job, provider),
                Audited {
                    tenant: Some(tenant),
                    target: Some(id.to_string()),
                    details: json!({}),
                },
            ))
        })
    })
    .await?;
    publish(&state, &job, provider).await?;
    let target = target_of(&state, &job).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(out(&state, job, target))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// At most this many jobs, newest first (default 20, at most 200).
    pub limit: Option<u64>,
}

#[utoipa::path(get, path = "/v1/tenants/{id}/restores", tag = "restore", params(("id" = Uuid, Path), ListQuery),
    responses((status = 200, body = [RestoreOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Result<axum::Json<Vec<RestoreOut>>, ApiError> {
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenantData).await?;
    let jobs = restore_jobs::Entity::find()
        .filter(restore_jobs::Column::TenantId.eq(t.id))
        .order_by_desc(restore_jobs::Column::CreatedAt)
        .limit(query.limit.unwrap_or(20).clamp(1, 200))
        .all(&state.db)
        .await?;
    let emails = tenant_data::emails(&state, &state.db, t.id).await?;
    Ok(axum::Json(
        jobs.into_iter()
            .map(|j| {
                let target = RestoreRequest::open(&state.service, j.id, &j.request_sealed)
                    .ok()
                    .and_then(|r| emails.get(&r.target_account).cloned())
                    .unwrap_or_default();
                out(&state, j, target)
            })
            .collect(),
    ))
}
