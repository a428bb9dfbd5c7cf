//! Exports (GDPR portability): one account's mail, calendar or drive as it
//! is now or was at a point in time, streamed as it is made: MBOX or a ZIP
//! of EML for mail, iCalendar or a ZIP of them for calendars, a ZIP of the
//! files for drives (every ZIP with `manifest.json` and `manifest.csv`).
//! Memory stays bounded whatever the size: content flows from the backup
//! through a small pipe into the response. The job row counts progress
//! while it runs; the audit log records the items it wrote.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use arkiv_db::entity::{connections, export_jobs};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::ActiveValue::Set;
use arkiv_domain::access::Action;
use arkiv_domain::{Provider, Workload};
use arkiv_export::{Format, Progress, What};
use arkiv_vault::search;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::io::ReaderStream;
use utoipa::{IntoParams, ToSchema};

use crate::audit::record_read;
use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::{tenant_data, validate};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// The protected account's address.
    pub account: String,
    /// mail, calendar or drive.
    pub workload: String,
    /// mail: eml (a ZIP of messages), mbox or zip; calendar: ics or zip;
    /// drive: zip.
    pub format: String,
    /// As the account was then (default: now). 2026-11-24 or RFC 3339.
    pub at: Option<String>,
}

/// What an export job's request was, sealed in its row.
#[derive(Debug, Serialize, Deserialize)]
struct ExportRequest {
    account_id: Uuid,
    workload: Workload,
    format: String,
    at: DateTime<Utc>,
}

/// Response headers that let a client show progress.
pub const JOB_HEADER: &str = "x-arkiv-export-id";
pub const ITEMS_HEADER: &str = "x-arkiv-export-items";
pub const BYTES_HEADER: &str = "x-arkiv-export-bytes";

#[utoipa::path(get, path = "/v1/tenants/{id}/export", tag = "export", params(("id" = Uuid, Path), ExportParams),
    responses(
        (status = 200, description = "the export, streamed: application/mbox, text/calendar or application/zip; \
            headers x-arkiv-export-id (the job), x-arkiv-export-items and x-arkiv-export-bytes (what is coming)"),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("token" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenantData).await?;
    let account =
        tenant_data::account_by_email(&state, &state.db, t.id, "account", &params.account).await?;
    let workload = validate::workload("workload", &params.workload)?;
    let format =
        Format::parse(&params.format, workload).map_err(|e| ApiError::invalid("format", e))?;
    let at = match params
        .at
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(a) => validate::instant("at", a)?,
        None => Utc::now(),
    };
    let connection = connections::Entity::find_by_id(account.connection_id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    let provider: Provider = connection.provider.parse().map_err(ApiError::internal)?;
    let ctx = tenant_data::keys(&state, t.id).await?;
    let items = search::as_of(&state.db, &ctx, account.id, workload, None, at)
        .await
        .map_err(ApiError::internal)?;
    let expected_bytes: i64 = items.iter().map(|f| f.size).sum();

    let job_id = Uuid::now_v7();
    let request = ExportRequest {
        account_id: account.id,
        workload,
        format: format.as_str().to_owned(),
        at,
    };
    let sealed = state.service.seal(
        &serde_json::to_vec(&request).expect("an export request serialises"),
        &[b"arkiv export request ".as_slice(), job_id.as_bytes()].concat(),
    );
    export_jobs::ActiveModel {
        id: Set(job_id),
        tenant_id: Set(t.id),
        requested_by: Set(Some(caller.principal.id.as_uuid())),
        state: Set("running".into()),
        format: Set(format.as_str().to_owned()),
        request_sealed: Set(sealed),
        items_total: Set(items.len() as i64),
        created_at: Set(Utc::now()),
        started_at: Set(Some(Utc::now())),
        account_id: Set(Some(account.id)),
        workload: Set(Some(workload.as_str().to_owned())),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;

    let name = tenant_data::emails(&state, &state.db, t.id)
        .await?
        .remove(&account.id)
        .unwrap_or_default();
    let filename = format!(
        "arkiv-{}-{}-{}.{}",
        arkiv_export::safe_name(&name).replace(' ', "_"),
        workload.as_str(),
        at.format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let item_count = items.len();

    // The export writes into one end of a small pipe; the response body
    // reads the other. A client that goes away breaks the pipe, which
    // ends the export.
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
    let task_state = state.clone();
    let task_caller = caller.clone();
    tokio::spawn(async move {
        let progress = Arc::new(Progress::default());
        let what = What {
            provider,
            workload,
            format,
            name: &name,
        };
        let run = arkiv_export::export(&task_state.reader, what, &items, writer, &progress);
        tokio::pin!(run);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let result = loop {
            tokio::select! {
                r = &mut run => break r,
                _ = tick.tick() => {
                    let _ = export_jobs::Entity::update_many()
                        .col_expr(export_jobs::Column::ItemsDone, Expr::value(progress.items.load(Ordering::Relaxed) as i64))
                        .col_expr(export_jobs::Column::BytesWritten, Expr::value(progress.bytes.load(Ordering::Relaxed) as i64))
                        .filter(export_jobs::Column::Id.eq(job_id))
                        .exec(&task_state.db)
                        .await;
                }
            }
        };
        let (outcome, error, written) = match &result {
            Ok(summary) => ("succeeded", None, summary.item_ids.clone()),
            Err(e) => (
                "failed",
                Some(e.to_string()),
                items
                    .iter()
                    .take(progress.items.load(Ordering::Relaxed) as usize)
                    .map(|f| f.item_id)
                    .collect(),
            ),
        };
        let finished = export_jobs::Entity::update_many()
            .col_expr(export_jobs::Column::State, Expr::value(outcome))
            .col_expr(export_jobs::Column::Error, Expr::value(error.clone()))
            .col_expr(
                export_jobs::Column::ItemsDone,
                Expr::value(progress.items.load(Ordering::Relaxed) as i64),
            )
            .col_expr(
                export_jobs::Column::BytesWritten,
                Expr::value(progress.bytes.load(Ordering::Relaxed) as i64),
            )
            .col_expr(export_jobs::Column::FinishedAt, Expr::value(Utc::now()))
            .filter(export_jobs::Column::Id.eq(job_id))
            .exec(&task_state.db)
            .await;
        if let Err(e) = finished {
            tracing::error!(job = %job_id, error = %e, "could not record the end of an export");
        }
        let ids: Vec<String> = written.iter().map(Uuid::to_string).collect();
        if let Err(e) = record_read(
            &task_state,
            &task_caller,
            "export",
            tenant_id,
            json!({
                "job": job_id.to_string(),
                "state": outcome,
                "account": request.account_id.to_string(),
                "workload": workload.as_str(),
                "format": format.as_str(),
                "at": at,
                "items": ids,
            }),
        )
        .await
        {
            tracing::error!(job = %job_id, error = %e, "could not audit an export");
        }
        metrics::counter!("arkiv_api_exports_total", "state" => outcome).increment(1);
        let _ = done_tx.send(result.map(|_| ()).map_err(|e| e.to_string()));
    });

    // A failed export ends the body with an error, so the client sees a
    // broken transfer, never a truncated file that looks whole.
    let tail = futures::stream::once(async move {
        match done_rx.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Err(std::io::Error::other(format!(
                "the export failed: {e}"
            )))),
            Err(_) => Some(Err(std::io::Error::other("the export stopped"))),
        }
    })
    .filter_map(|x| async move { x });
    let body = Body::from_stream(ReaderStream::with_capacity(reader, 64 * 1024).chain(tail));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        JOB_HEADER,
        HeaderValue::from_str(&job_id.to_string()).expect("a uuid"),
    );
    headers.insert(ITEMS_HEADER, HeaderValue::from(item_count as u64));
    headers.insert(
        BYTES_HEADER,
        HeaderValue::from(expected_bytes.max(0) as u64),
    );
    Ok(response)
}

/// An export job and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportOut {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    /// running, succeeded or failed.
    pub status: String,
    pub format: String,
    pub workload: Option<String>,
    pub items_total: i64,
    pub items_done: i64,
    pub bytes_written: i64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/v1/exports/{id}", tag = "export", params(("id" = Uuid, Path)),
    responses((status = 200, body = ExportOut), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ExportOut>, ApiError> {
    let job = export_jobs::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .ok_or(ApiError::NotFound("export"))?;
    tenant_for(&state.db, &caller, job.tenant_id, Action::ReadTenantData)
        .await
        .map_err(|_| ApiError::NotFound("export"))?;
    Ok(axum::Json(ExportOut {
        job_id: job.id,
        tenant_id: job.tenant_id,
        status: job.state,
        format: job.format,
        workload: job.workload,
        items_total: job.items_total,
        items_done: job.items_done,
        bytes_written: job.bytes_written,
        error: job.error,
        created_at: job.created_at,
        finished_at: job.finished_at,
    }))
}
