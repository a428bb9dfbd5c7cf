//! Google's token endpoint for the JWT-bearer grant (service accounts with
//! domain-wide delegation): the RS256 signature is verified with the
//! service account's public key, and `iss`, `aud`, `scope`, `exp`/`iat`
//! and `sub` are checked as Google does.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{json, Value};

use crate::state::{Grant, Sim};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Audiences Google accepts (google-auth always sends the first).
const AUDIENCES: &[&str] = &[
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// Decode a JWT's parts without verifying it (tests use this to inspect).
pub fn jwt_claims(jwt: &str) -> Option<(Value, Value, Vec<u8>, String)> {
    let mut parts = jwt.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: Value = serde_json::from_slice(&b64.decode(h.trim_end_matches('=')).ok()?).ok()?;
    let claims: Value = serde_json::from_slice(&b64.decode(c.trim_end_matches('=')).ok()?).ok()?;
    let signature = b64.decode(s.trim_end_matches('=')).ok()?;
    Some((header, claims, signature, format!("{h}.{c}")))
}

pub async fn token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let form = super::form(&body);
    match form.get("grant_type").map(String::as_str) {
        Some(JWT_BEARER) => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type",
            )
        }
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let Some((header, claims, signature, signed)) = jwt_claims(assertion) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: could not be parsed.",
        );
    };
    if header["alg"] != "RS256" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: alg must be RS256.",
        );
    }
    let sa = sim.world().service_account.clone();
    if claims["iss"].as_str() != Some(sa.client_email.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid grant: account not found",
        );
    }
    let verified = rsa::RsaPublicKey::from_public_key_pem(&sa.public_key_pem)
        .ok()
        .map(rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new)
        .zip(rsa::pkcs1v15::Signature::try_from(signature.as_slice()).ok())
        .is_some_and(|(key, sig)| key.verify(signed.as_bytes(), &sig).is_ok());
    if !verified {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT Signature.",
        );
    }
    let own = format!("{}/token", sim.base_url);
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !AUDIENCES.contains(&aud) && aud != own {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Invalid JWT: Failed audience check.",
        );
    }
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp <= now || iat > now + 300 || exp - iat > 3600 {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
    }
    let scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    let Some(subject) = claims["sub"].as_str().map(str::to_lowercase) else {
        // The service account itself: no Workspace data, but a valid token.
        let (access_token, expires_in) = sim.issue_token(Grant::Google {
            domain: String::new(),
            subject: sa.client_email.clone(),
            scopes,
        });
        return Json(json!({ "access_token": access_token, "expires_in": expires_in, "token_type": "Bearer" })).into_response();
    };
    let domain = {
        let world = sim.world();
        let Some(domain) = subject.split('@').nth(1).and_then(|d| world.domain(d)) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid email or User ID",
            );
        };
        if !domain
            .users
            .values()
            .any(|u| u.email.eq_ignore_ascii_case(&subject))
        {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid email or User ID",
            );
        }
        let delegated: BTreeSet<String> = domain
            .delegations
            .get(&sa.client_id)
            .cloned()
            .unwrap_or_default();
        if delegated.is_empty() || !scopes.iter().all(|s| delegated.contains(s)) {
            return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.");
        }
        domain.domain.clone()
    };
    let (access_token, expires_in) = sim.issue_token(Grant::Google {
        domain,
        subject,
        scopes,
    });
    Json(json!({ "access_token": access_token, "expires_in": expires_in, "token_type": "Bearer" }))
        .into_response()
}
