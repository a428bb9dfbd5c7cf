//! Google: the OAuth token endpoint (JWT bearer with domain-wide
//! delegation), the Admin SDK Directory, Gmail, Drive (with shared drives)
//! and Calendar, at their real paths, with Google's error envelope.

mod auth;
mod calendar;
mod directory;
mod drive;
mod gmail;
mod upload;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use serde_json::{json, Value};

use crate::limits::{self, Family, Verdict};
use crate::state::{Grant, Sim};

pub use auth::jwt_claims;

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/token", post(auth::token))
        .route("/admin/directory/v1/{*path}", any(api))
        .route("/gmail/v1/{*path}", any(api))
        .route("/drive/v3/{*path}", any(api))
        .route("/calendar/v3/{*path}", any(api))
        .route("/upload/{*path}", any(api))
        .route("/resumable/upload/{*path}", any(api))
}

/// Google's error envelope.
pub fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    let status_name = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        410 => "FAILED_PRECONDITION",
        413 => "INVALID_ARGUMENT",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let domain = match reason {
        "rateLimitExceeded" | "userRateLimitExceeded" => "usageLimits",
        "fullSyncRequired" => "calendar",
        _ => "global",
    };
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{ "message": message, "domain": domain, "reason": reason }],
            "status": status_name,
        }
    });
    json_response(status, body)
}

/// The same envelope with `location` and `locationType` (a bad parameter).
pub fn param_error(status: StatusCode, reason: &str, message: &str, location: &str) -> Response {
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{ "message": message, "domain": "global", "reason": reason, "locationType": "parameter", "location": location }],
        }
    });
    json_response(status, body)
}

pub fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

/// What a Google handler knows about its request.
#[derive(Debug)]
pub struct GCtx {
    pub sim: Arc<Sim>,
    pub domain: String,
    /// The impersonated user (the token's `sub`).
    pub subject: String,
    pub scopes: Vec<String>,
    pub method: Method,
    /// Path segments after the API prefix, percent-decoded.
    pub segs: Vec<String>,
    /// Which API and whether it came through an upload path.
    pub api: Api,
    pub upload: bool,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Directory,
    Gmail,
    Drive,
    Calendar,
}

impl GCtx {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.param(name) == Some("true")
    }

    /// An integer parameter within `1..=max`, or Google's 400.
    pub fn bounded(&self, name: &str, default: u32, max: u32) -> Result<u32, Response> {
        match self.param(name) {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(param_error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    &format!("Invalid value '{v}'. Values must be within the range: [1, {max}]"),
                    name,
                )),
            },
        }
    }

    pub fn has_scope(&self, accepted: &[&str]) -> bool {
        self.scopes.iter().any(|s| accepted.contains(&s.as_str()))
    }

    pub fn ok(&self, body: Value) -> Response {
        json_response(StatusCode::OK, body)
    }

    pub fn json_body(&self) -> Result<Value, Response> {
        if self.body.is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "parseError",
                &format!("Invalid JSON payload received. {e}"),
            )
        })
    }

    /// The user a `userId` path parameter names: `me` or the subject's own
    /// address. Anyone else's data needs their own delegated token.
    pub fn user(&self, user_id: &str) -> Result<String, Response> {
        if user_id == "me" || user_id.eq_ignore_ascii_case(&self.subject) {
            Ok(self.subject.clone())
        } else {
            Err(error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "Delegation denied for the requested user.",
            ))
        }
    }
}

pub fn insufficient_scopes() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "insufficientPermissions",
        "Request had insufficient authentication scopes.",
    )
}

async fn api(State(sim): State<Arc<Sim>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let endpoint = format!("{} google {}", parts.method, endpoint_name(&path));
    let body = match axum::body::to_bytes(body, 512 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "uploadTooLarge",
                "The request is too large.",
            )
        }
    };
    // Chunks of a resumable upload carry no Authorization header: the
    // session id in the URL is the credential.
    let response = if let Some(session) = query
        .iter()
        .find(|(k, _)| k == "upload_id")
        .map(|(_, v)| v.clone())
    {
        upload::continue_session(&sim, &session, &parts.headers, body)
    } else {
        serve(&sim, parts.method, &path, query, parts.headers, body).await
    };
    sim.record(&endpoint, response.status().as_u16());
    response
}

/// `/gmail/v1/users/{id}/messages/{id}` → ids replaced, for statistics.
fn endpoint_name(path: &str) -> String {
    const NAMES: &[&str] = &[
        "admin",
        "directory",
        "v1",
        "gmail",
        "drive",
        "v3",
        "calendar",
        "upload",
        "resumable",
        "users",
        "messages",
        "history",
        "profile",
        "labels",
        "import",
        "trash",
        "untrash",
        "modify",
        "files",
        "changes",
        "startPageToken",
        "drives",
        "export",
        "calendars",
        "events",
        "calendarList",
        "me",
        "attachments",
    ];
    path.split('/')
        .map(|s| {
            if s.is_empty() || NAMES.contains(&s) {
                s.to_owned()
            } else {
                "{id}".to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn serve(
    sim: &Arc<Sim>,
    method: Method,
    path: &str,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let grant = token.and_then(|t| sim.check_token(t));
    let Some(Grant::Google {
        domain,
        subject,
        scopes,
    }) = grant
    else {
        let body = json!({
            "error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                "errors": [{ "message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header" }],
                "status": "UNAUTHENTICATED"
            }
        });
        let mut r = json_response(StatusCode::UNAUTHORIZED, body);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
        );
        return r;
    };
    let key = format!("google:{domain}:{subject}");
    let _slot = match limits::admit(sim, &key, Family::Google) {
        Verdict::Go(slot) => slot,
        Verdict::Throttle { reason, .. } => {
            return match reason {
                limits::Reason::Forced => error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rateLimitExceeded",
                    "Rate Limit Exceeded",
                ),
                _ => error(
                    StatusCode::FORBIDDEN,
                    "userRateLimitExceeded",
                    "User Rate Limit Exceeded",
                ),
            };
        }
        Verdict::Unavailable { .. } => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "backendError",
                "The service is currently unavailable.",
            )
        }
    };
    let latency = sim.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let trimmed = path.trim_start_matches("/resumable");
    let upload = trimmed.starts_with("/upload/");
    let trimmed = trimmed.trim_start_matches("/upload");
    let (api, rest) = if let Some(r) = trimmed.strip_prefix("/admin/directory/v1/") {
        (Api::Directory, r)
    } else if let Some(r) = trimmed.strip_prefix("/gmail/v1/") {
        (Api::Gmail, r)
    } else if let Some(r) = trimmed.strip_prefix("/drive/v3/") {
        (Api::Drive, r)
    } else if let Some(r) = trimmed.strip_prefix("/calendar/v3/") {
        (Api::Calendar, r)
    } else {
        return error(StatusCode::NOT_FOUND, "notFound", "Not Found");
    };
    let ctx = GCtx {
        sim: sim.clone(),
        domain,
        subject,
        scopes,
        method,
        segs: rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(crate::ms::percent_decode)
            .collect(),
        api,
        upload,
        query,
        headers,
        body,
    };
    match api {
        Api::Directory => directory::route(&ctx),
        Api::Gmail => gmail::route(&ctx),
        Api::Drive => drive::route(&ctx),
        Api::Calendar => calendar::route(&ctx),
    }
}

/// RFC 3339 with milliseconds, as Google writes times.
pub fn stamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parse `application/x-www-form-urlencoded` into a map.
pub fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
