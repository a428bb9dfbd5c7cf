//! Loading a resource's scope and asking `arkiv_domain::access` about it.
//! A refusal is a 404, exactly like a resource that does not exist.

use arkiv_db::entity::{partners, principals, support_grants, tenants};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::ConnectionTrait;
use arkiv_domain::access::{authorize, Action, Context, Scope};
use arkiv_domain::{PartnerId, Role, TenantId};
use chrono::Utc;

use crate::auth::Caller;
use crate::error::ApiError;

/// Allow, or answer as if `what` did not exist.
pub fn require(
    caller: &Caller,
    action: Action,
    scope: Scope,
    ctx: Context,
    what: &'static str,
) -> Result<(), ApiError> {
    if authorize(&caller.principal, action, scope, ctx).is_allowed() {
        Ok(())
    } else {
        Err(ApiError::NotFound(what))
    }
}

pub fn tenant_scope(t: &tenants::Model) -> Scope {
    Scope::Tenant {
        partner: PartnerId::from_uuid(t.partner_id),
        tenant: TenantId::from_uuid(t.id),
    }
}

/// The tenant, if it exists (whoever asks: check scope after).
pub async fn tenant<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<tenants::Model, ApiError> {
    tenants::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("tenant"))
}

pub async fn partner<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<partners::Model, ApiError> {
    partners::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("partner"))
}

/// Load a tenant and require `action` on it.
pub async fn tenant_for<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<tenants::Model, ApiError> {
    let t = tenant(db, id).await?;
    let ctx = context(db, caller, &t).await?;
    require(caller, action, tenant_scope(&t), ctx, "tenant")?;
    Ok(t)
}

/// The facts a decision about this tenant may need (only looked up for
/// the callers whose decision depends on them).
pub async fn context<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    t: &tenants::Model,
) -> Result<Context, ApiError> {
    if caller.principal.role != Role::Support {
        return Ok(Context::default());
    }
    let now = Utc::now();
    let active = support_grants::Entity::find()
        .filter(support_grants::Column::TenantId.eq(t.id))
        .filter(support_grants::Column::RevokedAt.is_null())
        .filter(support_grants::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .is_some();
    Ok(Context {
        support_grant_active: active,
    })
}

/// Where a principal sits, for deciding who may manage it.
pub fn principal_scope(p: &principals::Model) -> Scope {
    match (p.partner_id, p.tenant_id) {
        (Some(partner), Some(tenant)) => Scope::Tenant {
            partner: PartnerId::from_uuid(partner),
            tenant: TenantId::from_uuid(tenant),
        },
        (Some(partner), None) => Scope::Partner(PartnerId::from_uuid(partner)),
        _ => Scope::Service,
    }
}
