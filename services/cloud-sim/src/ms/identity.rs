//! The Microsoft identity platform: admin consent, the authorize endpoint,
//! client-credentials and authorization-code tokens, and the discovery
//! documents MSAL reads.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::state::{lock, Grant, Sim};

const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A browser redirect, as Entra ID sends it (302 Found).
fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// The identity platform's error body (AADSTS codes and trace ids).
fn aad_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ");
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp.to_string(),
        "trace_id": trace,
        "correlation_id": correlation,
    });
    (status, Json(body)).into_response()
}

/// Resolve a tenant path segment (GUID or domain; `common` and
/// `organizations` with a `domain_hint` or when only one tenant exists).
fn resolve_tenant(sim: &Sim, tenant: &str, hint: Option<&str>) -> Option<String> {
    let world = sim.world();
    let key = match tenant.to_ascii_lowercase().as_str() {
        "common" | "organizations" => match hint {
            Some(hint) => hint.to_owned(),
            None if world.m365.len() == 1 => world.m365[0].id.clone(),
            None => return None,
        },
        _ => tenant.to_owned(),
    };
    world.tenant(&key).map(|t| t.id.clone())
}

#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    domain_hint: Option<String>,
    login_hint: Option<String>,
}

/// `GET /{tenant}/adminconsent`: the simulated tenant admin signs in and
/// approves (or, if `/_sim/consent` queued a denial, refuses), and the
/// browser is redirected back to the app.
pub async fn admin_consent(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    Query(q): Query<ConsentQuery>,
) -> Response {
    let app = sim.world().app.clone();
    let Some(client_id) = q.client_id.as_deref() else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if client_id != app.client_id {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    }
    let Some(redirect) = q
        .redirect_uri
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
    else {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 50011, "The redirect URI specified in the request does not match the redirect URIs configured for the application.");
    };
    let hint = q
        .domain_hint
        .as_deref()
        .or_else(|| q.login_hint.as_deref().and_then(|h| h.split('@').nth(1)));
    let Some(tenant_id) = resolve_tenant(&sim, &tenant, hint) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    };
    let approved = {
        let mut world = sim.world();
        let tenant = world.tenant_mut(&tenant_id).expect("resolved above");
        let approved = tenant.next_consent.take().unwrap_or(true);
        if approved {
            tenant.consented = true;
        }
        approved
    };
    let mut target = redirect;
    {
        let mut pairs = target.query_pairs_mut();
        if approved {
            pairs.append_pair("admin_consent", "True");
            pairs.append_pair("tenant", &tenant_id);
        } else {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair(
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            );
        }
        if let Some(state) = &q.state {
            pairs.append_pair("state", state);
        }
    }
    found(target.as_str())
}

#[derive(Debug, Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    response_type: Option<String>,
    domain_hint: Option<String>,
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the authorization-code flow; the
/// simulated admin signs in at once and the code is redeemable at `/token`.
pub async fn authorize(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let app = sim.world().app.clone();
    if q.client_id.as_deref() != Some(app.client_id.as_str()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if q.response_type.as_deref() != Some("code") {
        return aad_error(StatusCode::BAD_REQUEST, "unsupported_response_type", 70005, "The provided value for the input parameter 'response_type' is not allowed for this request. Expected value: code.");
    }
    let Some(mut target) = q
        .redirect_uri
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
    else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50011,
            "The redirect URI specified in the request does not match.",
        );
    };
    let Some(tenant_id) = resolve_tenant(&sim, &tenant, q.domain_hint.as_deref()) else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    };
    let code = format!("0.sim.{}", uuid::Uuid::new_v4().simple());
    lock(&sim.codes).insert(code.clone(), tenant_id);
    {
        let mut pairs = target.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = &q.state {
            pairs.append_pair("state", state);
        }
    }
    found(target.as_str())
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub async fn token(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let app = sim.world().app.clone();
    let grant_type = form.get("grant_type").map(String::as_str);
    let tenant_id = match tenant.to_ascii_lowercase().as_str() {
        "common" | "organizations" if grant_type == Some("client_credentials") => {
            return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 900023, "Specified tenant identifier 'common' is neither a valid DNS name, nor a valid external domain. Use a tenant-specific endpoint for the client credentials flow.");
        }
        _ => match resolve_tenant(&sim, &tenant, None) {
            Some(id) => id,
            None => return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 90002, &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")),
        },
    };
    let Some(client_id) = form.get("client_id") else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if *client_id != app.client_id {
        return aad_error(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."));
    }
    match form.get("client_secret") {
        None => return aad_error(StatusCode::BAD_REQUEST, "invalid_request", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
        Some(secret) if *secret != app.client_secret => {
            return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.");
        }
        Some(_) => {}
    }
    let scope = form.get("scope").map(String::as_str).unwrap_or_default();
    match grant_type {
        Some("client_credentials") => {
            if scope != GRAPH_DEFAULT_SCOPE {
                return aad_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."));
            }
        }
        Some("authorization_code") => {
            let code = form.get("code").map(String::as_str).unwrap_or_default();
            if lock(&sim.codes).remove(code).as_deref() != Some(tenant_id.as_str()) {
                return aad_error(StatusCode::BAD_REQUEST, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.");
            }
        }
        other => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!(
                    "The app requested an unsupported grant type '{}'.",
                    other.unwrap_or("")
                ),
            );
        }
    }
    let roles = sim.world().tenant(&tenant_id).is_some_and(|t| t.consented);
    let (access_token, expires_in) = sim.issue_token(Grant::Graph { tenant_id, roles });
    let body = json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": access_token,
    });
    ([(header::CACHE_CONTROL, "no-store, no-cache")], Json(body)).into_response()
}

/// The OpenID configuration document of a tenant (MSAL reads it).
pub async fn openid_configuration(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    // Behind a TLS-terminating proxy (`X-Forwarded-Proto: https`) the links
    // say https, as MSAL insists on.
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v == "https");
    let base = if https {
        sim.base_url.replacen("http://", "https://", 1)
    } else {
        sim.base_url.clone()
    };
    Json(json!({
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct DiscoveryQuery {
    authorization_endpoint: Option<String>,
}

/// `GET /common/discovery/instance`: MSAL's instance discovery.
pub async fn instance_discovery(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<DiscoveryQuery>,
) -> Response {
    let host = sim.base_url.trim_start_matches("http://").to_owned();
    let tenant = q
        .authorization_endpoint
        .as_deref()
        .and_then(|a| url::Url::parse(a).ok())
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut s| s.next().map(str::to_owned))
        })
        .unwrap_or_else(|| "common".into());
    Json(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", sim.base_url),
        "api-version": "1.1",
        "metadata": [{ "preferred_network": host, "preferred_cache": host, "aliases": [host] }],
    }))
    .into_response()
}
