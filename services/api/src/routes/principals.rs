//! `/v1/principals`: console and API users, their credentials and tokens.

use arkiv_db::entity::{api_tokens, principals, tenants};
use arkiv_db::principals::NewPrincipal;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{ActiveValue::Set, Condition, QueryOrder};
use arkiv_domain::access::{authorize, may_create_principal, Action, Context, Scope};
use arkiv_domain::{PartnerId, PrincipalId, Role, TenantId};
use axum::extract::{Path, State};
use axum::http::StatusCode;

use chrono::Utc;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, Audited};
use crate::auth::{hash_password, totp, Caller};
use crate::error::{ApiError, Json, Problem};
use crate::scope::{principal_scope, tenant};
use crate::state::AppState;
use crate::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipal {
    /// `operator`, `partner-admin`, `tenant-admin` or `support`.
    pub role: String,
    pub email: String,
    /// For partner admins and partner support staff.
    pub partner_id: Option<Uuid>,
    /// For tenant admins.
    pub tenant_id: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalOut {
    pub id: Uuid,
    pub role: String,
    pub email: String,
    pub partner_id: Option<Uuid>,
    pub tenant_id: Option<Uuid>,
    /// Whether console login is set up (password and TOTP).
    pub console_login: bool,
    pub disabled: bool,
    pub created_at: chrono::DateTime<Utc>,
}

fn out(state: &AppState, p: principals::Model) -> PrincipalOut {
    PrincipalOut {
        email: arkiv_db::principals::email(&state.principal_keys(), &p).unwrap_or_default(),
        id: p.id,
        role: p.role,
        partner_id: p.partner_id,
        tenant_id: p.tenant_id,
        console_login: p.password_hash.is_some() && p.totp_secret_sealed.is_some(),
        disabled: p.disabled_at.is_some(),
        created_at: p.created_at,
    }
}

/// The principal, if the caller is it or may manage it.
async fn managed<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    allow_self: bool,
) -> Result<principals::Model, ApiError> {
    let p = principals::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("principal"))?;
    let is_self = caller.principal.id.as_uuid() == id;
    if (allow_self && is_self)
        || authorize(
            &caller.principal,
            Action::ManagePrincipals,
            principal_scope(&p),
            Context::default(),
        )
        .is_allowed()
    {
        Ok(p)
    } else {
        Err(ApiError::NotFound("principal"))
    }
}

#[utoipa::path(post, path = "/v1/principals", tag = "principals", request_body = CreatePrincipal,
    responses((status = 201, body = PrincipalOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreatePrincipal>,
) -> Result<(StatusCode, axum::Json<PrincipalOut>), ApiError> {
    let row = audited(&state, &caller, "principal.create", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            let role: Role = body
                .role
                .parse()
                .map_err(|e: arkiv_domain::UnknownVariant| {
                    ApiError::invalid("role", e.to_string())
                })?;
            let email = validate::email("email", &body.email)?;
            // Where the new principal sits, from the ids given.
            let (scope, partner, tenant_id) = match role {
                Role::Operator => {
                    if body.partner_id.is_some() || body.tenant_id.is_some() {
                        return Err(ApiError::invalid(
                            "partner_id",
                            "an operator belongs to no partner or tenant",
                        ));
                    }
                    (Scope::Service, None, None)
                }
                Role::PartnerAdmin | Role::Support => {
                    if body.tenant_id.is_some() {
                        return Err(ApiError::invalid(
                            "tenant_id",
                            "partner admins and support belong to a partner, not a tenant",
                        ));
                    }
                    match (role, body.partner_id) {
                        (_, Some(p)) => (Scope::Partner(PartnerId::from_uuid(p)), Some(p), None),
                        (Role::Support, None) => (Scope::Service, None, None),
                        _ => {
                            return Err(ApiError::invalid(
                                "partner_id",
                                "a partner admin needs partner_id",
                            ))
                        }
                    }
                }
                Role::TenantAdmin => {
                    let t = body.tenant_id.ok_or_else(|| {
                        ApiError::invalid("tenant_id", "a tenant admin needs tenant_id")
                    })?;
                    if body.partner_id.is_some() {
                        return Err(ApiError::invalid(
                            "partner_id",
                            "a tenant admin's partner is its tenant's",
                        ));
                    }
                    // Unknown tenants and foreign ones look the same.
                    let tenant_row = tenants::Entity::find_by_id(t).one(txn).await?;
                    let partner = tenant_row.map(|r| r.partner_id).unwrap_or_default();
                    (
                        Scope::Tenant {
                            partner: PartnerId::from_uuid(partner),
                            tenant: TenantId::from_uuid(t),
                        },
                        Some(partner),
                        Some(t),
                    )
                }
            };
            if !may_create_principal(&caller.principal, role, scope).is_allowed() {
                return Err(ApiError::NotFound(if tenant_id.is_some() {
                    "tenant"
                } else {
                    "partner"
                }));
            }
            match scope {
                Scope::Partner(p) => {
                    crate::scope::partner(txn, p.as_uuid()).await?;
                }
                Scope::Tenant { tenant: t, .. } => {
                    tenant(txn, t.as_uuid()).await?;
                }
                Scope::Service => {}
            }
            let keys = state.principal_keys();
            let hash = arkiv_db::principals::email_hash(&keys, &email);
            if principals::Entity::find()
                .filter(principals::Column::EmailHash.eq(hash))
                .one(txn)
                .await?
                .is_some()
            {
                return Err(ApiError::Conflict {
                    field: Some("email".into()),
                    message: "a principal with this e-mail address exists".into(),
                });
            }
            let new = NewPrincipal {
                role,
                partner_id: partner.map(PartnerId::from_uuid),
                tenant_id: tenant_id.map(TenantId::from_uuid),
                email,
            };
            let row = arkiv_db::principals::create(txn, &keys, new).await?;
            let audited = Audited {
                tenant: tenant_id,
                target: Some(row.id.to_string()),
                details: json!({ "role": role.as_str() }),
            };
            Ok((row, audited))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(out(&state, row))))
}

#[utoipa::path(get, path = "/v1/principals", tag = "principals",
    responses((status = 200, body = [PrincipalOut])), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<PrincipalOut>>, ApiError> {
    let p = &caller.principal;
    let mut cond = Condition::all();
    match p.role {
        Role::Operator => {}
        Role::PartnerAdmin => {
            cond = cond.add(principals::Column::PartnerId.eq(p.partner.map(|x| x.as_uuid())))
        }
        Role::TenantAdmin => {
            cond = cond.add(principals::Column::TenantId.eq(p.tenant.map(|x| x.as_uuid())))
        }
        Role::Support => cond = cond.add(principals::Column::Id.eq(p.id.as_uuid())),
    }
    let rows = principals::Entity::find()
        .filter(cond)
        .order_by_asc(principals::Column::CreatedAt)
        .all(&state.db)
        .await?;
    Ok(axum::Json(
        rows.into_iter().map(|r| out(&state, r)).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/principals/{id}", tag = "principals", params(("id" = Uuid, Path)),
    responses((status = 200, body = PrincipalOut), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PrincipalOut>, ApiError> {
    let p = managed(&state.db, &caller, id, true).await?;
    Ok(axum::Json(out(&state, p)))
}

#[utoipa::path(delete, path = "/v1/principals/{id}", tag = "principals", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    audited(&state, &caller, "principal.disable", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let p = managed(txn, &caller, id, false).await?;
            let now = Utc::now();
            let tenant = p.tenant_id;
            let mut row: principals::ActiveModel = p.into();
            row.disabled_at = Set(Some(now));
            row.update(txn).await?;
            api_tokens::Entity::update_many()
                .col_expr(api_tokens::Column::RevokedAt, Expr::value(now))
                .filter(api_tokens::Column::PrincipalId.eq(id))
                .filter(api_tokens::Column::RevokedAt.is_null())
                .exec(txn)
                .await?;
            Ok((
                (),
                Audited {
                    tenant,
                    target: Some(id.to_string()),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCredentials {
    /// 12 to 256 characters.
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Credentials {
    /// The TOTP secret (base32), shown once: enrol it in an authenticator.
    pub totp_secret: String,
    /// The same as an `otpauth://` URL.
    pub otpauth_url: String,
}

#[utoipa::path(put, path = "/v1/principals/{id}/credentials", tag = "principals", params(("id" = Uuid, Path)), request_body = SetCredentials,
    responses((status = 200, body = Credentials), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn set_credentials(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<SetCredentials>,
) -> Result<axum::Json<Credentials>, ApiError> {
    let creds = audited(&state, &caller, "principal.credentials", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            let p = managed(txn, &caller, id, true).await?;
            validate::password("password", &body.password)?;
            let email =
                arkiv_db::principals::email(&state.principal_keys(), &p).unwrap_or_default();
            let mut secret = vec![0u8; 20];
            rand::thread_rng().fill_bytes(&mut secret);
            let t = totp(secret.clone(), &email)?;
            let creds = Credentials {
                totp_secret: t.get_secret_base32(),
                otpauth_url: t.get_url(),
            };
            let tenant = p.tenant_id;
            let mut row: principals::ActiveModel = p.into();
            row.password_hash = Set(Some(hash_password(&body.password)?));
            row.totp_secret_sealed = Set(Some(state.service.seal(&secret, id.as_bytes())));
            row.failed_logins = Set(0);
            row.locked_until = Set(None);
            row.update(txn).await?;
            Ok((
                creds,
                Audited {
                    tenant,
                    target: Some(id.to_string()),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok(axum::Json(creds))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What the token is for.
    pub label: Option<String>,
    /// 1 to 365; default 90.
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewToken {
    pub id: Uuid,
    /// Shown once; only its hash is stored.
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    pub id: Uuid,
    pub label: String,
    pub created_at: chrono::DateTime<Utc>,
    pub expires_at: chrono::DateTime<Utc>,
    pub revoked_at: Option<chrono::DateTime<Utc>>,
    pub last_used_at: Option<chrono::DateTime<Utc>>,
}

#[utoipa::path(post, path = "/v1/principals/{id}/tokens", tag = "principals", params(("id" = Uuid, Path)), request_body = CreateToken,
    responses((status = 201, body = NewToken), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, axum::Json<NewToken>), ApiError> {
    let token = audited(&state, &caller, "token.create", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let p = managed(txn, &caller, id, true).await?;
            if p.disabled_at.is_some() {
                return Err(ApiError::Conflict {
                    field: None,
                    message: "the principal is disabled".into(),
                });
            }
            let days = validate::range("days", body.days.unwrap_or(90), 1, 365)?;
            let label = match body.label.as_deref() {
                Some(l) => validate::name("label", l)?,
                None => "api".into(),
            };
            let (row, token) = arkiv_db::principals::issue_token(
                txn,
                PrincipalId::from_uuid(id),
                &label,
                chrono::Duration::days(days),
            )
            .await?;
            let out = NewToken {
                id: row.id,
                token: token.expose().to_owned(),
                expires_at: row.expires_at,
            };
            Ok((
                out,
                Audited {
                    tenant: p.tenant_id,
                    target: Some(row.id.to_string()),
                    details: json!({ "principal_id": id }),
                },
            ))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(token)))
}

#[utoipa::path(get, path = "/v1/principals/{id}/tokens", tag = "principals", params(("id" = Uuid, Path)),
    responses((status = 200, body = [TokenOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<TokenOut>>, ApiError> {
    managed(&state.db, &caller, id, true).await?;
    let rows = api_tokens::Entity::find()
        .filter(api_tokens::Column::PrincipalId.eq(id))
        .order_by_asc(api_tokens::Column::CreatedAt)
        .all(&state.db)
        .await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|t| TokenOut {
                id: t.id,
                label: t.label,
                created_at: t.created_at,
                expires_at: t.expires_at,
                revoked_at: t.revoked_at,
                last_used_at: t.last_used_at,
            })
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "principals", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    audited(&state, &caller, "token.revoke", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let token = api_tokens::Entity::find_by_id(id)
                .one(txn)
                .await?
                .ok_or(ApiError::NotFound("token"))?;
            let owner = managed(txn, &caller, token.principal_id, true)
                .await
                .map_err(|_| ApiError::NotFound("token"))?;
            let mut row: api_tokens::ActiveModel = token.into();
            row.revoked_at = Set(Some(Utc::now()));
            row.update(txn).await?;
            Ok((
                (),
                Audited {
                    tenant: owner.tenant_id,
                    target: Some(id.to_string()),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
