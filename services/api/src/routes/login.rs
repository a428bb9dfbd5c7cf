//! Console login (password + TOTP) and who-am-I.

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{anonymised_ip, login as check_login, Caller, Peer};
use crate::error::{ApiError, Json, Problem};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
    /// The current six-digit TOTP code.
    pub totp: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    pub principal_id: uuid::Uuid,
    /// A bearer token for the session.
    pub token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = Session), (status = 401, body = Problem), (status = 423, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<axum::Json<Session>, ApiError> {
    let ip = anonymised_ip(&headers, peer);
    let (p, token, expires_at) =
        check_login(&state, &body.email, &body.password, body.totp.trim(), ip).await?;
    Ok(axum::Json(Session {
        principal_id: p.id,
        token: token.expose().to_owned(),
        expires_at,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub principal_id: uuid::Uuid,
    pub role: String,
    pub partner_id: Option<uuid::Uuid>,
    pub tenant_id: Option<uuid::Uuid>,
}

#[utoipa::path(get, path = "/v1/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = Problem)), security(("token" = [])))]
pub async fn me(caller: Caller) -> axum::Json<Me> {
    let p = caller.principal;
    axum::Json(Me {
        principal_id: p.id.as_uuid(),
        role: p.role.as_str().to_owned(),
        partner_id: p.partner.map(|x| x.as_uuid()),
        tenant_id: p.tenant.map(|x| x.as_uuid()),
    })
}
