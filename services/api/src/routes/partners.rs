//! `/v1/partners`: operators create partners; partner admins see their own.

use arkiv_db::entity::partners;
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::sea_query::Func;
use arkiv_db::sea_orm::{ActiveValue::Set, QueryOrder};
use arkiv_domain::access::{Action, Context, Scope};
use arkiv_domain::{PartnerId, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::{partner, require};
use crate::state::AppState;
use crate::validate;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePartner {
    /// 1 to 200 characters; unique, ignoring case.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerOut {
    pub id: Uuid,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<partners::Model> for PartnerOut {
    fn from(p: partners::Model) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
        }
    }
}

#[utoipa::path(post, path = "/v1/partners", tag = "partners", request_body = CreatePartner,
    responses((status = 201, body = PartnerOut), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<CreatePartner>,
) -> Result<(StatusCode, axum::Json<PartnerOut>), ApiError> {
    let out = audited(&state, &caller, "partner.create", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            require(
                &caller,
                Action::CreatePartner,
                Scope::Service,
                Context::default(),
                "partner",
            )?;
            let name = validate::name("name", &body.name)?;
            let taken = partners::Entity::find()
                .filter(
                    Expr::expr(Func::lower(Expr::col(partners::Column::Name)))
                        .eq(name.to_lowercase()),
                )
                .one(txn)
                .await?;
            if taken.is_some() {
                return Err(ApiError::Conflict {
                    field: Some("name".into()),
                    message: "a partner with this name exists".into(),
                });
            }
            let id = PartnerId::new().as_uuid();
            let row = partners::ActiveModel {
                id: Set(id),
                name: Set(name),
                created_at: Set(chrono::Utc::now()),
            }
            .insert(txn)
            .await?;
            Ok((
                PartnerOut::from(row),
                Audited {
                    target: Some(id.to_string()),
                    details: json!({ "partner_id": id }),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

#[utoipa::path(get, path = "/v1/partners", tag = "partners",
    responses((status = 200, body = [PartnerOut]), (status = 401, body = Problem)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<PartnerOut>>, ApiError> {
    let query = partners::Entity::find().order_by_asc(partners::Column::Name);
    let rows = match (caller.principal.role, caller.principal.partner) {
        (Role::Operator, _) => query.all(&state.db).await?,
        (Role::PartnerAdmin, Some(own)) => {
            query
                .filter(partners::Column::Id.eq(own.as_uuid()))
                .all(&state.db)
                .await?
        }
        _ => Vec::new(),
    };
    Ok(axum::Json(rows.into_iter().map(PartnerOut::from).collect()))
}

#[utoipa::path(get, path = "/v1/partners/{id}", tag = "partners", params(("id" = Uuid, Path)),
    responses((status = 200, body = PartnerOut), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PartnerOut>, ApiError> {
    require(
        &caller,
        Action::ReadPartner,
        Scope::Partner(PartnerId::from_uuid(id)),
        Context::default(),
        "partner",
    )?;
    Ok(axum::Json(partner(&state.db, id).await?.into()))
}
