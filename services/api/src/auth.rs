//! Who is calling: API tokens (bearer) for the CLI and automation, and the
//! console login (password + TOTP, with lockout) that issues a short-lived
//! token.

use std::net::{IpAddr, SocketAddr};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use arkiv_crypto::ApiToken;
use arkiv_db::entity::{api_tokens, login_events, principals, tenants};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::sea_query::Expr;
use arkiv_db::sea_orm::ActiveValue::Set;
use arkiv_domain::access::Principal;
use arkiv_domain::{PartnerId, PrincipalId, Role, TenantId};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::Utc;

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub token_id: Uuid,
}

impl Caller {
    pub fn actor(&self) -> arkiv_db::audit::Actor {
        arkiv_db::audit::Actor {
            id: Some(self.principal.id.as_uuid()),
            role: Some(self.principal.role.as_str().to_owned()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated)?;
        authenticate(state, token).await
    }
}

/// Look a presented token up: unknown, expired, revoked tokens and
/// disabled principals are all simply unauthenticated.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let hash = ApiToken::hash_presented(token).to_vec();
    let found = api_tokens::Entity::find()
        .filter(api_tokens::Column::TokenHash.eq(hash))
        .find_also_related(principals::Entity)
        .one(&state.db)
        .await?;
    let Some((token_row, Some(p))) = found else {
        return Err(ApiError::Unauthenticated);
    };
    let now = Utc::now();
    if token_row.revoked_at.is_some() || token_row.expires_at <= now || p.disabled_at.is_some() {
        return Err(ApiError::Unauthenticated);
    }
    let role: Role = p.role.parse().map_err(ApiError::internal)?;
    // Best effort: the last use is informational.
    let _ = api_tokens::Entity::update_many()
        .col_expr(api_tokens::Column::LastUsedAt, Expr::value(now))
        .filter(api_tokens::Column::Id.eq(token_row.id))
        .exec(&state.db)
        .await;
    Ok(Caller {
        principal: Principal {
            id: PrincipalId::from_uuid(p.id),
            role,
            partner: p.partner_id.map(PartnerId::from_uuid),
            tenant: p.tenant_id.map(TenantId::from_uuid),
        },
        token_id: token_row.id,
    })
}

/// The client's address with the host part cut off: IPv4 to its /24,
/// IPv6 to its /48. Behind a proxy, the first `X-Forwarded-For` entry.
pub fn anonymised_ip(parts_headers: &axum::http::HeaderMap, peer: Option<SocketAddr>) -> String {
    let forwarded = parts_headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok());
    match forwarded.or(peer.map(|p| p.ip())) {
        Some(IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        None => "unknown".into(),
    }
}

/// The peer address, when the server was started with connect info.
#[derive(Debug)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A TOTP (RFC 6238: SHA-1, 6 digits, 30 s) for a secret.
pub fn totp(secret: Vec<u8>, account: &str) -> Result<totp_rs::TOTP, ApiError> {
    totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        secret,
        Some("Arkiv".into()),
        account.to_owned(),
    )
    .map_err(ApiError::internal)
}

/// Failed logins in a row before the account locks, and for how long.
pub const LOCKOUT_AFTER: i32 = 5;
pub const LOCKOUT_FOR: chrono::Duration = chrono::Duration::minutes(15);
/// Console sessions are tokens that live this long.
pub const SESSION: chrono::Duration = chrono::Duration::hours(12);

/// Check a console login; record the attempt; lock after repeated failures.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    code: &str,
    ip: String,
) -> Result<(principals::Model, ApiToken, chrono::DateTime<Utc>), ApiError> {
    let hash = arkiv_db::principals::email_hash(&state.principal_keys(), email);
    let now = Utc::now();
    let principal = principals::Entity::find()
        .filter(principals::Column::EmailHash.eq(hash))
        .filter(principals::Column::DisabledAt.is_null())
        .one(&state.db)
        .await?;
    let record = |principal_id: Option<Uuid>, outcome: &'static str| login_events::ActiveModel {
        principal_id: Set(principal_id),
        at: Set(now),
        ip_anon: Set(ip.clone()),
        outcome: Set(outcome.to_owned()),
        ..Default::default()
    };
    let Some(p) = principal else {
        record(None, "unknown_principal").insert(&state.db).await?;
        return Err(ApiError::Unauthenticated);
    };
    if let Some(until) = p.locked_until.filter(|u| *u > now) {
        record(Some(p.id), "locked").insert(&state.db).await?;
        return Err(ApiError::Locked {
            until: until.to_rfc3339(),
        });
    }
    let password_ok = p
        .password_hash
        .as_deref()
        .is_some_and(|h| verify_password(h, password));
    let totp_ok = password_ok
        && p.totp_secret_sealed
            .as_ref()
            .and_then(|sealed| state.service.open(sealed, p.id.as_bytes()).ok())
            .is_some_and(|secret| {
                totp(secret, email).is_ok_and(|t| t.check_current(code).unwrap_or(false))
            });
    if !(password_ok && totp_ok) {
        let failures = p.failed_logins + 1;
        let mut update: principals::ActiveModel = p.clone().into();
        update.failed_logins = Set(failures);
        if failures >= LOCKOUT_AFTER {
            update.locked_until = Set(Some(now + LOCKOUT_FOR));
            update.failed_logins = Set(0);
        }
        update.update(&state.db).await?;
        record(
            Some(p.id),
            if password_ok {
                "bad_totp"
            } else {
                "bad_password"
            },
        )
        .insert(&state.db)
        .await?;
        return Err(ApiError::Unauthenticated);
    }
    let mut update: principals::ActiveModel = p.clone().into();
    update.failed_logins = Set(0);
    update.locked_until = Set(None);
    update.last_login_at = Set(Some(now));
    update.update(&state.db).await?;
    if let Some(tenant) = p.tenant_id {
        // A tenant whose admins log in is not inactive.
        tenants::Entity::update_many()
            .col_expr(tenants::Column::LastLoginAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(tenant))
            .exec(&state.db)
            .await?;
    }
    record(Some(p.id), "success").insert(&state.db).await?;
    let (row, token) = arkiv_db::principals::issue_token(
        &state.db,
        PrincipalId::from_uuid(p.id),
        "console session",
        SESSION,
    )
    .await?;
    Ok((p, token, row.expires_at))
}
