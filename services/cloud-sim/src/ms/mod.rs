//! Microsoft: the identity platform (admin consent, client-credentials
//! tokens) and Microsoft Graph v1.0 (users, mail, calendar, OneDrive).
//!
//! Graph URLs are case-insensitive and come in OData forms
//! (`mailFolders('id')`, `delta()`, `delta(token='x')`, `root:/a/b:`), so
//! Graph is one catch-all route with its own path parser ([`GraphPath`])
//! and dispatcher ([`graph`]), rather than an axum route per shape.

mod calendar;
mod delta;
mod drive;
mod identity;
mod mail;
mod users;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use chrono::Utc;
use serde_json::{json, Value};

use crate::limits::{self, Family, Verdict};
use crate::state::{Grant, Sim};

pub use drive::{committed_item, write_file};
pub use mail::{folder_id as mail_folder_id, insert_message, new_message_id};

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/{tenant}/adminconsent", get(identity::admin_consent))
        .route("/{tenant}/v2.0/adminconsent", get(identity::admin_consent))
        .route("/{tenant}/oauth2/v2.0/authorize", get(identity::authorize))
        .route("/{tenant}/oauth2/v2.0/token", post(identity::token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(identity::openid_configuration),
        )
        .route(
            "/common/discovery/instance",
            get(identity::instance_discovery),
        )
        .route("/v1.0/{*path}", any(graph))
        .route("/beta/{*path}", any(graph))
}

/// One segment of a Graph path: as sent, and lowercased for matching.
#[derive(Clone, Debug)]
pub struct Seg {
    pub raw: String,
    pub lower: String,
}

/// A Graph path split into segments, with OData keys and function
/// parameters unfolded: `mailFolders('x')/messages/delta(token='t')`
/// becomes `mailfolders / x / messages / delta` with `token = t`, and
/// `items/{parent}:/{name}:/content` becomes `items / {parent} / :{name} / content`.
#[derive(Clone, Debug, Default)]
pub struct GraphPath {
    pub segs: Vec<Seg>,
    pub function_token: Option<String>,
}

impl GraphPath {
    pub fn parse(path: &str) -> Self {
        let mut out = GraphPath::default();
        // SDKs send `root:/a/b:` as one encoded segment; split it again.
        let decoded: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .flat_map(|s| {
                if s.contains(':') {
                    s.split('/').map(str::to_owned).collect::<Vec<_>>()
                } else {
                    vec![s]
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        let mut i = 0;
        while i < decoded.len() {
            let seg = &decoded[i];
            // Path addressing: `{parent-id}:` then `name:` (or `root:` ... `name:`).
            if let Some(base) = seg.strip_suffix(':') {
                if !base.is_empty() {
                    out.push(base);
                }
                let mut names = Vec::new();
                i += 1;
                while i < decoded.len() {
                    let part = &decoded[i];
                    if let Some(last) = part.strip_suffix(':') {
                        names.push(last.to_owned());
                        break;
                    }
                    names.push(part.clone());
                    i += 1;
                }
                out.push(&format!(":{}", names.join("/")));
                i += 1;
                continue;
            }
            match seg.find('(') {
                Some(open) if seg.ends_with(')') => {
                    let name = &seg[..open];
                    let inner = &seg[open + 1..seg.len() - 1];
                    out.push(name);
                    if let Some(token) = inner.strip_prefix("token=") {
                        out.function_token = Some(token.trim_matches('\'').to_owned());
                    } else if !inner.is_empty() {
                        out.push(inner.trim_matches('\''));
                    }
                }
                _ => out.push(seg),
            }
            i += 1;
        }
        out
    }

    fn push(&mut self, raw: &str) {
        self.segs.push(Seg {
            raw: raw.to_owned(),
            lower: raw.to_ascii_lowercase(),
        });
    }

    pub fn lower(&self) -> Vec<&str> {
        self.segs.iter().map(|s| s.lower.as_str()).collect()
    }

    pub fn raw(&self, i: usize) -> &str {
        &self.segs[i].raw
    }

    /// The path with ids replaced by `{id}`, for statistics.
    pub fn endpoint(&self) -> String {
        const NAMES: &[&str] = &[
            "users",
            "mailfolders",
            "childfolders",
            "messages",
            "delta",
            "$value",
            "events",
            "calendarview",
            "calendar",
            "calendars",
            "drive",
            "drives",
            "root",
            "items",
            "children",
            "content",
            "createuploadsession",
            "move",
            "attachments",
            "me",
        ];
        self.segs
            .iter()
            .map(|s| {
                if NAMES.contains(&s.lower.as_str()) {
                    s.lower.clone()
                } else if s.raw.starts_with(':') {
                    ":{path}".to_owned()
                } else {
                    "{id}".to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

pub fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Everything a Graph handler needs about the request.
#[derive(Debug)]
pub struct Ctx {
    pub sim: Arc<Sim>,
    pub tenant_id: String,
    pub method: Method,
    pub path: GraphPath,
    /// Query parameters in order; keys as sent.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub request_id: String,
    /// `http://host/v1.0`
    pub graph_base: String,
}

impl Ctx {
    /// A query parameter, `$`-options matched case-insensitively.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Prefer: odata.maxpagesize=N` (in any Prefer header, comma-joined or not).
    pub fn max_page_size(&self) -> Option<u32> {
        self.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
            .find_map(|n| n.trim().parse().ok())
    }

    pub fn json(&self, status: StatusCode, body: Value) -> Response {
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
            ),
        );
        headers.insert("odata-version", HeaderValue::from_static("4.0"));
        response
    }

    pub fn ok(&self, body: Value) -> Response {
        self.json(StatusCode::OK, body)
    }

    pub fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        graph_error(status, code, message, &self.request_id)
    }

    pub fn not_found(&self, what: &str) -> Response {
        self.error(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            &format!("The specified object was not found in the store. ({what})"),
        )
    }

    pub fn bad_request(&self, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// The request body as JSON, or Graph's 400.
    pub fn json_body(&self) -> Result<Value, Response> {
        serde_json::from_slice(&self.body).map_err(|e| {
            self.error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format. ({e})"),
            )
        })
    }

    /// An absolute link back into Graph with the given path and query.
    pub fn link(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{}", self.graph_base, path.trim_start_matches('/'));
        // Graph writes OData system options with a literal `$`
        // (`?$skiptoken=...`); values are percent-encoded.
        for (i, (key, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            match key.strip_prefix('$') {
                Some(option) => {
                    url.push('$');
                    url.push_str(&encode(option));
                }
                None => url.push_str(&encode(key)),
            }
            url.push('=');
            url.push_str(&encode(value));
        }
        url
    }
}

/// Graph's error body, with the request id in `innerError`.
pub fn graph_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": request_id,
                "client-request-id": request_id,
            }
        }
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `$`-options Graph accepts on the endpoints simulated here.
const KNOWN_OPTIONS: &[&str] = &[
    "$select",
    "$top",
    "$skiptoken",
    "$deltatoken",
    "$filter",
    "$expand",
    "$orderby",
    "$count",
    "$search",
    "$skip",
];

async fn graph(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let full_path = parts.uri.path().to_owned();
    let (version, rest) = full_path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("v1.0", ""));
    let path = GraphPath::parse(rest);
    let endpoint = format!("{} graph /{version}/{}", parts.method, path.endpoint());
    let body = match axum::body::to_bytes(body, 512 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            let r = graph_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request is too large.",
                &request_id,
            );
            sim.record(&endpoint, 413);
            return with_ids(r, &request_id, &parts.headers);
        }
    };
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let response = serve_graph(
        &sim,
        &request_id,
        version,
        path,
        parts.method,
        parts.headers.clone(),
        query,
        body,
    )
    .await;
    sim.record(&endpoint, response.status().as_u16());
    with_ids(response, &request_id, &parts.headers)
}

fn with_ids(mut response: Response, request_id: &str, request_headers: &HeaderMap) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("request-id", v);
    }
    if let Some(client) = request_headers.get("client-request-id") {
        headers.insert("client-request-id", client.clone());
    }
    response
}

#[allow(clippy::too_many_arguments)]
async fn serve_graph(
    sim: &Arc<Sim>,
    request_id: &str,
    version: &str,
    path: GraphPath,
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    body: Bytes,
) -> Response {
    let err = |status, code: &str, msg: &str| graph_error(status, code, msg, request_id);
    // Authentication first, as Graph does.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(token) = token else {
        return err(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        );
    };
    let tenant_id = match sim.check_token(token) {
        Some(Grant::Graph { tenant_id, roles }) => {
            if !roles {
                return err(
                    StatusCode::FORBIDDEN,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                );
            }
            tenant_id
        }
        Some(Grant::Google { .. }) | None => {
            return err(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        }
    };
    for (key, _) in &query {
        if key.starts_with('$') && !KNOWN_OPTIONS.contains(&key.to_ascii_lowercase().as_str()) {
            return err(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Query option '{key}' is not allowed. Make sure that it is supported by the invoked API."),
            );
        }
    }
    let lower = path.lower();
    if lower.first() == Some(&"me") {
        return err(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        );
    }
    // Throttling is per (app, mailbox): find the mailbox the request touches.
    let mailbox = mailbox_of(sim, &tenant_id, &path);
    if let Some(user) = &mailbox {
        // `/users/{id}` itself (the directory) stays readable.
        if lower.len() > 2 && sim.faults().denied_mailboxes.iter().any(|d| d == user) {
            return err(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            );
        }
    }
    let _slot = match &mailbox {
        Some(user) => {
            let key = format!("m365:{tenant_id}:{user}");
            match limits::admit(sim, &key, Family::Graph) {
                Verdict::Go(slot) => Some(slot),
                Verdict::Throttle {
                    retry_after,
                    reason,
                } => return throttled(request_id, retry_after, reason),
                Verdict::Unavailable { retry_after } => {
                    let mut r = err(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "serviceNotAvailable",
                        "The service is temporarily unavailable. Try again later.",
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, retry_after.into());
                    return r;
                }
            }
        }
        None => None,
    };
    let latency = sim.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let ctx = Ctx {
        sim: sim.clone(),
        tenant_id,
        method,
        path,
        query,
        headers,
        body,
        request_id: request_id.to_owned(),
        graph_base: format!("{}/{version}", sim.base_url),
    };
    route(&ctx)
}

/// The user whose mailbox / drive a path addresses, resolved to an id.
fn mailbox_of(sim: &Sim, tenant_id: &str, path: &GraphPath) -> Option<String> {
    let lower = path.lower();
    let world = sim.world();
    let tenant = world.tenant(tenant_id)?;
    match lower.as_slice() {
        ["users", _, ..] => tenant
            .user_key(path.raw(1))
            .or_else(|| Some(path.raw(1).to_owned())),
        ["drives", _, ..] => tenant
            .users
            .values()
            .find(|u| u.drive.id == path.raw(1))
            .map(|u| u.id.clone()),
        _ => None,
    }
}

fn throttled(request_id: &str, retry_after: u64, reason: limits::Reason) -> Response {
    let (code, message) = match reason {
        limits::Reason::Concurrency => (
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        ),
        _ => ("TooManyRequests", "Please retry again later."),
    };
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "code": "429",
                "date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "message": "Please retry after",
                "request-id": request_id,
                "status": "429"
            }
        }
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, retry_after.into());
    response
}

fn route(ctx: &Ctx) -> Response {
    use Method as M;
    let p = ctx.path.lower();
    let m = &ctx.method;
    let r = |i: usize| ctx.path.raw(i);
    match (m, p.as_slice()) {
        (&M::GET, ["users"]) => users::list(ctx),
        (&M::GET, ["users", _]) => users::get(ctx, r(1)),
        (&M::POST, ["users"]) => ctx.error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ),

        // Mail folders
        (&M::GET, ["users", _, "mailfolders"]) => mail::list_folders(ctx, r(1), None),
        (&M::GET, ["users", _, "mailfolders", "delta"]) => mail::folders_delta(ctx, r(1)),
        (&M::GET, ["users", _, "mailfolders", _]) => mail::get_folder(ctx, r(1), r(3)),
        (&M::GET, ["users", _, "mailfolders", _, "childfolders"]) => {
            mail::list_folders(ctx, r(1), Some(r(3)))
        }
        (&M::POST, ["users", _, "mailfolders"]) => mail::create_folder(ctx, r(1), None),
        (&M::POST, ["users", _, "mailfolders", _, "childfolders"]) => {
            mail::create_folder(ctx, r(1), Some(r(3)))
        }
        (&M::DELETE, ["users", _, "mailfolders", _]) => mail::delete_folder(ctx, r(1), r(3)),

        // Messages
        (&M::GET, ["users", _, "mailfolders", _, "messages", "delta"]) => {
            mail::messages_delta(ctx, r(1), r(3))
        }
        (&M::GET, ["users", _, "mailfolders", _, "messages"]) => {
            mail::list_messages(ctx, r(1), Some(r(3)))
        }
        (&M::GET, ["users", _, "messages"]) => mail::list_messages(ctx, r(1), None),
        (&M::POST, ["users", _, "mailfolders", _, "messages"]) => {
            mail::create_message(ctx, r(1), Some(r(3)))
        }
        (&M::POST, ["users", _, "messages"]) => mail::create_message(ctx, r(1), None),
        (&M::GET, ["users", _, "messages", _] | ["users", _, "mailfolders", _, "messages", _]) => {
            mail::get_message(ctx, r(1), r(p.len() - 1))
        }
        (
            &M::GET,
            ["users", _, "messages", _, "$value"]
            | ["users", _, "mailfolders", _, "messages", _, "$value"],
        ) => mail::get_mime(ctx, r(1), r(p.len() - 2)),
        (
            &M::PATCH,
            ["users", _, "messages", _] | ["users", _, "mailfolders", _, "messages", _],
        ) => mail::update_message(ctx, r(1), r(p.len() - 1)),
        (
            &M::DELETE,
            ["users", _, "messages", _] | ["users", _, "mailfolders", _, "messages", _],
        ) => mail::delete_message(ctx, r(1), r(p.len() - 1)),
        (&M::POST, ["users", _, "messages", _, "move"]) => mail::move_message(ctx, r(1), r(3)),
        (&M::POST, ["users", _, "messages", _, "permanentdelete"]) => {
            mail::hard_delete(ctx, r(1), r(3))
        }

        // Calendar
        (&M::GET, ["users", _, "calendarview", "delta"]) => calendar::delta(ctx, r(1)),
        (&M::GET, ["users", _, "calendarview"]) => calendar::view(ctx, r(1)),
        (&M::GET, ["users", _, "events"] | ["users", _, "calendar", "events"]) => {
            calendar::list(ctx, r(1))
        }
        (&M::POST, ["users", _, "events"] | ["users", _, "calendar", "events"]) => {
            calendar::create(ctx, r(1))
        }
        (&M::GET, ["users", _, "calendars"]) => calendar::calendars(ctx, r(1)),
        (&M::GET, ["users", _, "calendar"]) => calendar::calendar(ctx, r(1), None),
        (&M::GET, ["users", _, "calendars", _]) => calendar::calendar(ctx, r(1), Some(r(3))),
        (&M::GET | &M::POST, ["users", _, "calendars", _, "events"]) => {
            if !calendar::is_calendar(ctx, r(1), r(3)) {
                return ctx.not_found("calendar");
            }
            if ctx.method == M::GET {
                calendar::list(ctx, r(1))
            } else {
                calendar::create(ctx, r(1))
            }
        }
        (&M::GET, ["users", _, "events", _]) => calendar::get(ctx, r(1), r(3)),
        (&M::PATCH, ["users", _, "events", _]) => calendar::update(ctx, r(1), r(3)),
        (&M::DELETE, ["users", _, "events", _]) => calendar::delete(ctx, r(1), r(3)),

        // OneDrive: /users/{u}/drive/... and /drives/{d}/...
        (_, ["users", _, "drive", rest @ ..]) => {
            drive::route(ctx, drive::DriveRef::User(r(1).to_owned()), rest, 3)
        }
        (_, ["drives", _, rest @ ..]) => {
            drive::route(ctx, drive::DriveRef::Drive(r(1).to_owned()), rest, 2)
        }

        _ => ctx.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                p.last().copied().unwrap_or("")
            ),
        ),
    }
}

pub(crate) fn empty(status: StatusCode) -> Response {
    (status, Body::empty()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_paths_unfold() {
        let p = GraphPath::parse("users/u1/mailFolders('AQMk')/messages/delta()");
        assert_eq!(
            p.lower(),
            ["users", "u1", "mailfolders", "aqmk", "messages", "delta"]
        );
        assert_eq!(p.raw(3), "AQMk");
        let p = GraphPath::parse("drives/d1/root/delta(token='abc')");
        assert_eq!(p.lower(), ["drives", "d1", "root", "delta"]);
        assert_eq!(p.function_token.as_deref(), Some("abc"));
        let p = GraphPath::parse("drives/d1/items/P1:/report%20final.pdf:/content");
        assert_eq!(
            p.lower(),
            [
                "drives",
                "d1",
                "items",
                "p1",
                ":report final.pdf",
                "content"
            ]
        );
        let p = GraphPath::parse("drives/d1/root:/Docs/a.txt:/createUploadSession");
        assert_eq!(
            p.lower(),
            ["drives", "d1", "root", ":docs/a.txt", "createuploadsession"]
        );
        assert_eq!(p.endpoint(), "drives/{id}/root/:{path}/createuploadsession");
        let p = GraphPath::parse("drives/d1/items/root%3A%2FDocs%2Fa.txt%3A/content");
        assert_eq!(
            p.lower(),
            ["drives", "d1", "items", "root", ":docs/a.txt", "content"]
        );
    }
}
