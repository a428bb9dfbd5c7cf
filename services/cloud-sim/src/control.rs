//! `/_sim`: the simulator's own API for tests and the demo: the manifest,
//! statistics, fault injection, cursor expiry, reset, consent decisions,
//! and the changes no provider API can make (mail arriving from outside, a
//! user joining the directory). Also the pre-authenticated download URLs
//! and Graph upload-session URLs, which live outside `/v1.0` as on OneDrive.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::content::{Attachment, Content, MailSpec};
use crate::state::{lock, Faults, Sim, UploadTarget};
use crate::world::{ChangeLog, GmailMessage, GoogleUser, HistoryKind, HistoryRecord, Message};
use crate::SimConfig;

pub fn router(config: SimConfig) -> Router<Arc<Sim>> {
    let name = config.spec.name;
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route(
            "/_sim/manifest",
            get(move |s: State<Arc<Sim>>| manifest(s, name)),
        )
        .route("/_sim/stats", get(stats))
        .route("/_sim/faults", get(get_faults).post(set_faults))
        .route("/_sim/expire-cursors", post(expire_cursors))
        .route("/_sim/reset", post(reset))
        .route("/_sim/consent", post(consent))
        .route("/_sim/google/delegation", post(delegation))
        .route("/_sim/m365/deliver", post(m365_deliver))
        .route("/_sim/m365/users", post(m365_add_user))
        .route("/_sim/google/deliver", post(google_deliver))
        .route("/_sim/google/users", post(google_add_user))
        .route("/_sim/download/{token}", get(download))
        .route(
            "/_sim/upload/graph/{id}",
            put(graph_chunk)
                .get(graph_session)
                .delete(graph_cancel)
                // OneDrive takes chunks of up to 60 MiB.
                .layer(axum::extract::DefaultBodyLimit::max(60 * 1024 * 1024)),
        )
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

async fn manifest(State(sim): State<Arc<Sim>>, dataset: &'static str) -> Json<Value> {
    let world = sim.world();
    let sa = &world.service_account;
    let service_account = json!({
        "type": "service_account",
        "project_id": sa.project_id,
        "private_key_id": sa.private_key_id,
        "private_key": sa.private_key_pem,
        "client_email": sa.client_email,
        "client_id": sa.client_id,
        "auth_uri": format!("{}/o/oauth2/auth", sim.base_url),
        "token_uri": format!("{}/token", sim.base_url),
        "auth_provider_x509_cert_url": format!("{}/oauth2/v1/certs", sim.base_url),
        "client_x509_cert_url": format!("{}/robot/v1/metadata/x509/{}", sim.base_url, sa.client_email),
    });
    Json(json!({
        "dataset": dataset,
        "m365": world.m365.iter().map(|t| json!({
            "tenant_id": t.id,
            "domain": t.domain,
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret,
            "users": t.users.values().map(|u| json!({ "id": u.id, "userPrincipalName": u.upn, "has_mailbox": u.has_mailbox })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "google": world.google.iter().map(|d| json!({
            "domain": d.domain,
            "customer_id": d.customer_id,
            "admin": d.admin,
            "service_account": service_account,
            "scopes": crate::dataset::GOOGLE_SCOPES,
            "users": d.users.values().map(|u| json!({ "id": u.id, "primaryEmail": u.email })).collect::<Vec<_>>(),
            "shared_drives": d.shared_drives.values().map(|s| json!({ "id": s.id, "name": s.name })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    }))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let stats = lock(&sim.stats);
    let total: u64 = stats.requests.values().flat_map(|m| m.values()).sum();
    Json(json!({
        "requests": stats.requests,
        "total_requests": total,
        "throttled": stats.throttled,
        "violations": stats.violations,
        "max_concurrency": stats.max_concurrency,
    }))
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<Faults> {
    Json(sim.faults())
}

/// Fields given replace the current ones; `{}` leaves everything as is.
async fn set_faults(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let current = serde_json::to_value(sim.faults()).expect("faults serialise");
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(p)) => Value::Object(p),
        _ => return bad("expected a JSON object of fault settings"),
    };
    let mut merged = current;
    for (k, v) in patch.as_object().expect("object") {
        merged[k] = v.clone();
    }
    match serde_json::from_value::<Faults>(merged) {
        Ok(faults) => {
            if let Err(why) = faults.validate() {
                return bad(&format!("invalid fault settings: {why}"));
            }
            *lock(&sim.faults) = faults.clone();
            Json(faults).into_response()
        }
        Err(e) => bad(&format!("invalid fault settings: {e}")),
    }
}

/// Every outstanding delta, sync, page and history token becomes invalid.
async fn expire_cursors(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let mut world = sim.world();
    world.epoch += 1;
    let floor = world.next_seq();
    for d in &mut world.google {
        d.drive_token_floor = floor;
        for u in d.users.values_mut() {
            u.history_floor = floor;
        }
    }
    Json(json!({ "epoch": world.epoch }))
}

async fn reset(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let fresh = (sim.reset.0)();
    *sim.world() = fresh;
    *lock(&sim.faults) = Faults::default();
    *lock(&sim.stats) = Default::default();
    lock(&sim.tokens).clear();
    lock(&sim.throttle).clear();
    lock(&sim.downloads).clear();
    lock(&sim.uploads).clear();
    Json(json!({ "reset": true }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentDecision {
    /// Tenant id or domain.
    tenant: String,
    /// `approve` or `deny` for the next admin-consent prompt; `revoke`
    /// withdraws a consent given earlier.
    decision: String,
}

async fn consent(State(sim): State<Arc<Sim>>, Json(d): Json<ConsentDecision>) -> Response {
    let mut world = sim.world();
    let Some(id) = world.tenant(&d.tenant).map(|t| t.id.clone()) else {
        return bad("unknown tenant");
    };
    let t = world.tenant_mut(&id).expect("found");
    match d.decision.as_str() {
        "approve" => t.next_consent = Some(true),
        "deny" => t.next_consent = Some(false),
        "revoke" => t.consented = false,
        _ => return bad("decision is approve, deny or revoke"),
    }
    Json(json!({ "tenant": id, "decision": d.decision })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delegation {
    domain: String,
    /// Defaults to Arkiv's service account.
    client_id: Option<String>,
    /// The scopes granted; empty revokes the delegation.
    scopes: Vec<String>,
}

async fn delegation(State(sim): State<Arc<Sim>>, Json(d): Json<Delegation>) -> Response {
    let mut world = sim.world();
    let client = d
        .client_id
        .unwrap_or_else(|| world.service_account.client_id.clone());
    let Some(domain) = world.domain_mut(&d.domain) else {
        return bad("unknown domain");
    };
    if d.scopes.is_empty() {
        domain.delegations.remove(&client);
    } else {
        domain
            .delegations
            .insert(client.clone(), d.scopes.iter().cloned().collect());
    }
    Json(json!({ "domain": d.domain, "client_id": client, "scopes": d.scopes })).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    /// Tenant id or domain (Microsoft), or domain (Google).
    #[serde(alias = "domain")]
    tenant: String,
    /// User id or address.
    user: String,
    from: String,
    subject: String,
    #[serde(default)]
    body: String,
    /// Well-known folder name or id (Microsoft); defaults to the inbox.
    folder: Option<String>,
    /// Gmail labels; default INBOX and UNREAD.
    labels: Option<Vec<String>>,
    attachment: Option<DeliveredAttachment>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveredAttachment {
    name: String,
    content_type: String,
    /// Standard base64 of the bytes.
    content: String,
}

fn mail_spec(d: &Delivery, to: (String, String)) -> Result<MailSpec, Response> {
    let attachment = match &d.attachment {
        None => None,
        Some(a) => Some(Attachment {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            content: Content::stored(
                base64::engine::general_purpose::STANDARD
                    .decode(&a.content)
                    .map_err(|_| bad("attachment.content is not base64"))?,
            ),
        }),
    };
    let host = d.from.split('@').nth(1).unwrap_or("example.com");
    Ok(MailSpec::new(
        format!("<{}@{host}>", uuid::Uuid::new_v4().simple()),
        (String::new(), d.from.clone()),
        vec![to],
        d.subject.clone(),
        Utc::now(),
        d.body.clone(),
        attachment,
    ))
}

async fn m365_deliver(State(sim): State<Arc<Sim>>, Json(d): Json<Delivery>) -> Response {
    let mut world = sim.world();
    let Some(tenant_id) = world.tenant(&d.tenant).map(|t| t.id.clone()) else {
        return bad("unknown tenant");
    };
    let Some((user_id, upn, name, folder)) = world.tenant(&tenant_id).and_then(|t| {
        let key = t.user_key(&d.user)?;
        let u = &t.users[&key];
        let folder = crate::ms::mail_folder_id(u, d.folder.as_deref().unwrap_or("inbox"))?;
        Some((u.id.clone(), u.upn.clone(), u.display_name.clone(), folder))
    }) else {
        return bad("unknown user, or no such folder");
    };
    let spec = match mail_spec(&d, (name, upn)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let now = Utc::now();
    let message = Message {
        id: crate::ms::new_message_id(),
        folder_id: folder,
        internet_message_id: spec.message_id.clone(),
        subject: d.subject.clone(),
        from: (String::new(), d.from.clone()),
        to: spec.to.clone(),
        received: now,
        sent: now,
        created: now,
        modified: now,
        is_read: false,
        is_draft: false,
        categories: vec![],
        has_attachments: d.attachment.is_some(),
        change_key: uuid::Uuid::new_v4().simple().to_string(),
        body_preview: d.body.chars().take(255).collect(),
        mime: Content::Mail(Arc::new(spec)),
    };
    match crate::ms::insert_message(&mut world, &tenant_id, &user_id, message) {
        Some(json) => (StatusCode::CREATED, Json(json)).into_response(),
        None => bad("could not deliver"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    #[serde(alias = "domain")]
    tenant: String,
    /// userPrincipalName or primaryEmail.
    email: String,
    display_name: String,
}

async fn m365_add_user(State(sim): State<Arc<Sim>>, Json(n): Json<NewUser>) -> Response {
    let mut world = sim.world();
    let Some(tenant_id) = world.tenant(&n.tenant).map(|t| t.id.clone()) else {
        return bad("unknown tenant");
    };
    let seq = world.next_seq();
    let user = crate::dataset::new_m365_user(seq, &n.email, &n.display_name);
    let json = json!({ "id": user.id, "userPrincipalName": user.upn });
    world
        .tenant_mut(&tenant_id)
        .expect("found")
        .users
        .insert(user.id.clone(), user);
    (StatusCode::CREATED, Json(json)).into_response()
}

async fn google_deliver(State(sim): State<Arc<Sim>>, Json(d): Json<Delivery>) -> Response {
    let mut world = sim.world();
    let seq = world.next_seq();
    let Some(domain) = world.domain_mut(&d.tenant) else {
        return bad("unknown domain");
    };
    let Some(u) = domain
        .users
        .values_mut()
        .find(|u| u.email.eq_ignore_ascii_case(&d.user) || u.id == d.user)
    else {
        return bad("unknown user");
    };
    let spec = match mail_spec(
        &d,
        (
            format!("{} {}", u.given_name, u.family_name),
            u.email.clone(),
        ),
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let labels = d
        .labels
        .clone()
        .unwrap_or_else(|| vec!["INBOX".into(), "UNREAD".into()]);
    let now = Utc::now();
    let id = format!(
        "{:x}{}",
        now.timestamp_millis(),
        &uuid::Uuid::new_v4().simple().to_string()[..5]
    );
    u.messages.insert(
        id.clone(),
        GmailMessage {
            id: id.clone(),
            thread_id: id.clone(),
            label_ids: labels.clone(),
            internal_date_ms: now.timestamp_millis(),
            history_id: seq,
            snippet: d.body.chars().take(200).collect(),
            raw: Content::Mail(Arc::new(spec)),
        },
    );
    u.history.push(HistoryRecord {
        id: seq,
        message_id: id.clone(),
        thread_id: id.clone(),
        kind: HistoryKind::MessageAdded {
            label_ids: labels.clone(),
        },
    });
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "threadId": id, "labelIds": labels })),
    )
        .into_response()
}

async fn google_add_user(State(sim): State<Arc<Sim>>, Json(n): Json<NewUser>) -> Response {
    let mut world = sim.world();
    let floor = world.current_seq();
    let Some(domain) = world.domain_mut(&n.tenant) else {
        return bad("unknown domain");
    };
    if !n
        .email
        .to_lowercase()
        .ends_with(&format!("@{}", domain.domain))
    {
        return bad("the address must be in the domain");
    }
    let (given, family) = n
        .display_name
        .split_once(' ')
        .unwrap_or((n.display_name.as_str(), ""));
    let id = format!("1{}", &uuid::Uuid::new_v4().as_u128().to_string()[..20]);
    let mut primary = crate::world::Calendar {
        id: n.email.clone(),
        summary: n.email.clone(),
        primary: true,
        time_zone: "UTC".into(),
        events: Default::default(),
        log: ChangeLog::default(),
    };
    primary.events.clear();
    let user = GoogleUser {
        id: id.clone(),
        email: n.email.clone(),
        given_name: given.into(),
        family_name: family.into(),
        is_admin: false,
        messages: Default::default(),
        labels: crate::dataset::system_labels(),
        history: vec![],
        history_floor: floor,
        calendars: [(primary.id.clone(), primary)].into_iter().collect(),
    };
    domain.users.insert(id.clone(), user);
    let root = format!("0A{}", &uuid::Uuid::new_v4().simple().to_string()[..17]);
    domain.files.insert(
        root.clone(),
        crate::dataset::my_drive_root(&root, &n.email, chrono::Utc::now()),
    );
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "primaryEmail": n.email })),
    )
        .into_response()
}

/// A pre-authenticated download URL: no Authorization needed; Range and
/// If-None-Match honoured.
async fn download(
    State(sim): State<Arc<Sim>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (content, etag) = {
        let mut downloads = lock(&sim.downloads);
        let now = std::time::Instant::now();
        downloads.retain(|_, d| d.expires_at > now);
        match downloads.get(&token) {
            Some(d) => (d.content.clone(), d.etag.clone()),
            None => {
                return (StatusCode::UNAUTHORIZED, "The download URL has expired.").into_response()
            }
        }
    };
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let len = content.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| {
            let start: u64 = a.parse().ok()?;
            let end: u64 = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                b.parse().ok()?
            };
            (start <= end && start < len).then_some((start, end.min(len - 1)))
        });
    let mut response = match range {
        Some((start, end)) => {
            let mut r =
                (StatusCode::PARTIAL_CONTENT, content.range(start, end + 1)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        None => (StatusCode::OK, content.bytes()).into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    response
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    crate::ms::graph_error(status, code, message, &uuid::Uuid::new_v4().to_string())
}

/// A chunk of a OneDrive upload session (no Authorization, as documented).
async fn graph_chunk(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((start, end, total)) = range
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .and_then(|(span, total)| {
            let (a, b) = span.split_once('-')?;
            Some((
                a.parse::<u64>().ok()?,
                b.parse::<u64>().ok()?,
                total.parse::<u64>().ok()?,
            ))
        })
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "A valid Content-Range header is required.",
        );
    };
    if end < start || end - start + 1 != body.len() as u64 || end >= total {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRange",
            "The Content-Range does not match the body.",
        );
    }
    let (target, bytes) = {
        let mut uploads = lock(&sim.uploads);
        let Some(session) = uploads.get_mut(&id) else {
            return graph_error(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                "The upload session was not found.",
            );
        };
        if session.total.is_some_and(|t| t != total) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "invalidRange",
                "The total size changed.",
            );
        }
        session.total = Some(total);
        if start != session.received.len() as u64 {
            return graph_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalidRange",
                "Uploaded fragment overlaps with existing data.",
            );
        }
        session.received.extend_from_slice(&body);
        if (session.received.len() as u64) < total {
            let body = json!({ "expirationDateTime": session.expires_at.to_rfc3339(), "nextExpectedRanges": [format!("{}-", session.received.len())] });
            return (StatusCode::ACCEPTED, Json(body)).into_response();
        }
        let session = uploads.remove(&id).expect("present");
        (session.target, session.received)
    };
    let UploadTarget::Graph {
        tenant_id,
        user_id,
        parent_id,
        name,
        conflict,
    } = target
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Not a OneDrive upload session.",
        );
    };
    let written = {
        let mut world = sim.world();
        crate::ms::write_file(
            &mut world,
            &tenant_id,
            &user_id,
            &parent_id,
            &name,
            &conflict,
            Content::stored(bytes),
        )
    };
    match written {
        Ok((item, created)) => match crate::ms::committed_item(&sim, &tenant_id, &user_id, &item) {
            Some(json) => (
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                Json(json),
            )
                .into_response(),
            None => graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "The item vanished.",
            ),
        },
        Err((status, code, message)) => graph_error(status, code, &message),
    }
}

async fn graph_session(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let uploads = lock(&sim.uploads);
    match uploads.get(&id) {
        Some(s) => Json(json!({ "expirationDateTime": s.expires_at.to_rfc3339(), "nextExpectedRanges": [format!("{}-", s.received.len())] })).into_response(),
        None => graph_error(StatusCode::NOT_FOUND, "itemNotFound", "The upload session was not found."),
    }
}

async fn graph_cancel(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match lock(&sim.uploads).remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => graph_error(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "The upload session was not found.",
        ),
    }
}
