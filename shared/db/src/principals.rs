//! Principals (console and API users) and their API tokens.
//!
//! E-mail addresses are stored sealed under the service key, with a blind
//! index for lookups; tokens are stored as SHA-256 hashes only.

use arkiv_crypto::{ApiToken, BlindIndexKey, ServiceKey};
use arkiv_domain::{PartnerId, PrincipalId, Role, TenantId};
use chrono::{Duration, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{QueryOrder, Set};

use crate::entity::{api_tokens, principals};

/// The keys principals' personal data is protected with.
#[derive(Debug)]
pub struct PrincipalKeys<'a> {
    pub blind: &'a BlindIndexKey,
    pub seal: &'a ServiceKey,
}

const EMAIL_FIELD: &str = "principal.email";

/// E-mail addresses compare case-insensitively and without surrounding space.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The blind index of a principal's e-mail address.
pub fn email_hash(keys: &PrincipalKeys<'_>, email: &str) -> Vec<u8> {
    keys.blind
        .index(EMAIL_FIELD, normalise_email(email).as_bytes())
        .to_vec()
}

/// A new principal, before it is stored.
#[derive(Clone, Debug)]
pub struct NewPrincipal {
    pub role: Role,
    pub partner_id: Option<PartnerId>,
    pub tenant_id: Option<TenantId>,
    pub email: String,
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    keys: &PrincipalKeys<'_>,
    new: NewPrincipal,
) -> Result<principals::Model, DbErr> {
    let id = PrincipalId::new();
    let email = normalise_email(&new.email);
    principals::ActiveModel {
        id: Set(id.as_uuid()),
        role: Set(new.role.as_str().to_owned()),
        partner_id: Set(new.partner_id.map(|p| p.as_uuid())),
        tenant_id: Set(new.tenant_id.map(|t| t.as_uuid())),
        email_hash: Set(email_hash(keys, &email)),
        email_sealed: Set(keys.seal.seal(email.as_bytes(), id.as_uuid().as_bytes())),
        password_hash: Set(None),
        totp_secret_sealed: Set(None),
        failed_logins: Set(0),
        locked_until: Set(None),
        last_login_at: Set(None),
        disabled_at: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
}

/// The principal's e-mail address, unsealed.
pub fn email(keys: &PrincipalKeys<'_>, principal: &principals::Model) -> Option<String> {
    keys.seal
        .open(&principal.email_sealed, principal.id.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// The earliest operator, if any exists.
pub async fn first_operator<C: ConnectionTrait>(
    db: &C,
) -> Result<Option<principals::Model>, DbErr> {
    principals::Entity::find()
        .filter(principals::Column::Role.eq(Role::Operator.as_str()))
        .filter(principals::Column::DisabledAt.is_null())
        .order_by_asc(principals::Column::CreatedAt)
        .one(db)
        .await
}

/// Issue a token for `principal`, valid for `ttl`. The returned token is the
/// only copy of its secret.
pub async fn issue_token<C: ConnectionTrait>(
    db: &C,
    principal: PrincipalId,
    label: &str,
    ttl: Duration,
) -> Result<(api_tokens::Model, ApiToken), DbErr> {
    let token = ApiToken::generate();
    let now = Utc::now();
    let row = api_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        principal_id: Set(principal.as_uuid()),
        token_hash: Set(token.hash().to_vec()),
        label: Set(label.to_owned()),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        revoked_at: Set(None),
        last_used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((row, token))
}
