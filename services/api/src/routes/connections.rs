//! Connections: the OAuth admin consent for Microsoft 365 and the
//! domain-wide delegation check for Google Workspace.
//!
//! Microsoft: `POST .../connections/m365` makes a pending connection and a
//! single-use, expiring `state` (random nonce + MAC, bound to the tenant and
//! connection), and returns the admin-consent URL. The callback checks the
//! state, proves access with an app-only token (oauth2 crate), lists the
//! users into protected accounts and activates the connection, all or
//! nothing.
//!
//! Google: the admin gives the domain and an admin address; Arkiv
//! impersonates the admin (JWT bearer) and lists the directory. If the
//! delegation is missing, the connection stays pending with exactly what to
//! authorise, and `POST /v1/connections/{id}/verify` tries again.

use arkiv_db::accounts::{AccountKeys, SourceUser};
use arkiv_db::entity::{connections, consent_states, tenants};
use arkiv_db::sea_orm::entity::prelude::*;
use arkiv_db::sea_orm::{
    ActiveValue::Set, DatabaseTransaction, QueryOrder, QuerySelect, TransactionTrait,
};
use arkiv_domain::access::Action;
use arkiv_domain::{ConnectionId, ConnectionStatus, Provider};
use arkiv_provider::google::{self, ServiceAccount};
use arkiv_provider::m365::{self, AppCredentials};
use arkiv_provider::ProviderError;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine;
use chrono::{Duration, Utc};
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::audit::{audited, Audited};
use crate::auth::Caller;
use crate::error::{ApiError, Json, Problem};
use crate::scope::tenant_for;
use crate::state::AppState;
use crate::validate;

/// How long an admin has to complete the consent.
const STATE_TTL: Duration = Duration::minutes(30);
const NONCE_LEN: usize = 16;

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionOut {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// `m365` or `google`.
    pub provider: String,
    /// `pending`, `active`, `error` or `revoked`.
    pub status: String,
    /// The Microsoft tenant id or the Google domain, once known.
    pub external_id: Option<String>,
    /// What is wrong or missing, when not active.
    pub status_detail: Option<String>,
    pub schedule_minutes: i32,
    pub created_at: chrono::DateTime<Utc>,
    pub activated_at: Option<chrono::DateTime<Utc>>,
}

impl From<connections::Model> for ConnectionOut {
    fn from(c: connections::Model) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            provider: c.provider,
            status: c.status,
            external_id: c.external_id,
            status_detail: c.status_detail,
            schedule_minutes: c.schedule_minutes,
            created_at: c.created_at,
            activated_at: c.activated_at,
        }
    }
}

fn account_keys(state: &AppState) -> AccountKeys<'_> {
    AccountKeys {
        blind: &state.blind,
        seal: &state.service,
    }
}

fn provider_error(e: ProviderError) -> ApiError {
    ApiError::Provider {
        detail: e.to_string(),
    }
}

type Sealed = arkiv_provider::secrets::ConnectionSecrets;

fn seal(state: &AppState, connection: Uuid, sealed: &Sealed) -> Vec<u8> {
    sealed.seal(&state.service, connection)
}

fn unseal(state: &AppState, c: &connections::Model) -> Result<Sealed, ApiError> {
    Sealed::open(&state.service, c.id, c.credentials_sealed.as_deref()).map_err(ApiError::internal)
}

fn new_connection(
    tenant_id: Uuid,
    provider: Provider,
    external_id: Option<String>,
) -> connections::ActiveModel {
    let now = Utc::now();
    connections::ActiveModel {
        id: Set(ConnectionId::new().as_uuid()),
        tenant_id: Set(tenant_id),
        provider: Set(provider.as_str().to_owned()),
        external_id: Set(external_id),
        credentials_sealed: Set(None),
        status: Set(ConnectionStatus::Pending.as_str().to_owned()),
        status_detail: Set(None),
        schedule_minutes: Set(240),
        next_run_at: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(now),
        activated_at: Set(None),
        updated_at: Set(now),
    }
}

// ---------------------------------------------------------------- Microsoft

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectM365 {
    /// The customer's Microsoft 365 domain, if known (sends the admin
    /// straight to their tenant's sign-in).
    pub domain: Option<String>,
    /// An app registration of the customer's own, instead of Arkiv's.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentStarted {
    pub id: Uuid,
    /// Send the tenant admin here; Microsoft returns them to the callback.
    pub consent_url: String,
    pub expires_at: chrono::DateTime<Utc>,
}

pub fn callback_url(state: &AppState) -> String {
    state
        .public_url
        .join("v1/oauth/m365/callback")
        .expect("static path joins")
        .to_string()
}

#[utoipa::path(post, path = "/v1/tenants/{id}/connections/m365", tag = "connections", params(("id" = Uuid, Path)), request_body = ConnectM365,
    responses((status = 201, body = ConsentStarted), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn connect_m365(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Json(body): Json<ConnectM365>,
) -> Result<(StatusCode, axum::Json<ConsentStarted>), ApiError> {
    let started = audited(&state, &caller, "connection.m365.start", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            tenant_for(txn, &caller, tenant_id, Action::ManageConnections).await?;
            let domain = body.domain.as_deref().map(|d| validate::domain("domain", d)).transpose()?;
            let own = match (body.client_id, body.client_secret) {
                (Some(id), Some(secret)) => {
                    validate::uuid("client_id", &id)?;
                    if secret.trim().is_empty() {
                        return Err(ApiError::invalid("client_secret", "must not be empty"));
                    }
                    Some(Sealed { m365_client_id: Some(id), m365_client_secret: Some(secret), ..Sealed::default() })
                }
                (None, None) => None,
                (Some(_), None) => return Err(ApiError::invalid("client_secret", "give it with client_id")),
                (None, Some(_)) => return Err(ApiError::invalid("client_id", "give it with client_secret")),
            };
            let client_id = match (own.as_ref().and_then(|o| o.m365_client_id.clone()), &state.m365_app) {
                (Some(own), _) => own,
                (None, Some(app)) => app.client_id.clone(),
                (None, None) => return Err(ApiError::invalid("client_id", "this deployment has no Microsoft app registration (m365.client_id): give client_id and client_secret")),
            };
            let mut row = new_connection(tenant_id, Provider::M365, None);
            let id = *row.id.as_ref();
            if let Some(own) = &own {
                row.credentials_sealed = Set(Some(seal(&state, id, own)));
            }
            row.insert(txn).await?;
            let mut nonce = [0u8; NONCE_LEN];
            rand::thread_rng().fill_bytes(&mut nonce);
            let expires_at = Utc::now() + STATE_TTL;
            consent_states::ActiveModel {
                nonce: Set(nonce.to_vec()),
                tenant_id: Set(tenant_id),
                connection_id: Set(id),
                created_by: Set(Some(caller.principal.id.as_uuid())),
                created_at: Set(Utc::now()),
                expires_at: Set(expires_at),
                used_at: Set(None),
            }
            .insert(txn)
            .await?;
            let mac = state.signing.mac(&[nonce.as_slice(), id.as_bytes(), tenant_id.as_bytes()].concat());
            let oauth_state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([nonce.as_slice(), id.as_bytes(), &mac].concat());
            let url = m365::admin_consent_url(&state.m365, domain.as_deref().unwrap_or("organizations"), &client_id, &callback_url(&state), &oauth_state);
            let out = ConsentStarted { id, consent_url: url.to_string(), expires_at };
            Ok((out, Audited { tenant: Some(tenant_id), target: Some(id.to_string()), details: json!({ "provider": "m365" }) }))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(started)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct Callback {
    pub admin_consent: Option<String>,
    /// The Microsoft tenant id that consented.
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Connected {
    pub connection_id: Uuid,
    pub status: String,
    /// Accounts discovered in the source.
    pub accounts: u64,
}

/// The consent, checked: the nonce's row, locked for this transaction.
async fn check_state(
    state: &AppState,
    txn: &DatabaseTransaction,
    raw: Option<&str>,
) -> Result<consent_states::Model, ApiError> {
    let forged = || {
        ApiError::invalid(
            "state",
            "the state is not one Arkiv issued; start the connection again",
        )
    };
    let bytes = raw
        .and_then(|r| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(r)
                .ok()
        })
        .ok_or_else(forged)?;
    if bytes.len() != NONCE_LEN + 16 + 32 {
        return Err(forged());
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let (connection, mac) = rest.split_at(16);
    let row = consent_states::Entity::find_by_id(nonce.to_vec())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(forged)?;
    let signed = [nonce, connection, row.tenant_id.as_bytes()].concat();
    if connection != row.connection_id.as_bytes() || !state.signing.verify(&signed, mac) {
        return Err(forged());
    }
    if row.used_at.is_some() {
        return Err(ApiError::invalid(
            "state",
            "this consent was already completed; start the connection again to repeat it",
        ));
    }
    if row.expires_at <= Utc::now() {
        return Err(ApiError::invalid(
            "state",
            "the consent took too long and expired; start the connection again",
        ));
    }
    Ok(row)
}

#[utoipa::path(get, path = "/v1/oauth/m365/callback", tag = "connections", params(Callback),
    responses((status = 200, body = Connected), (status = 422, body = Problem), (status = 502, body = Problem)))]
pub async fn m365_callback(
    State(state): State<AppState>,
    Query(q): Query<Callback>,
) -> Result<axum::Json<Connected>, ApiError> {
    let txn = state.db.begin().await?;
    let consent = check_state(&state, &txn, q.state.as_deref()).await?;
    if let Some(error) = &q.error {
        // Denied: nothing changes; the admin may try again with the same link.
        return Err(ApiError::invalid(
            "error",
            format!("the administrator did not grant consent ({error}: {}); ask them to approve, or start again", q.error_description.clone().unwrap_or_default()),
        ));
    }
    if q.admin_consent.as_deref() != Some("True") {
        return Err(ApiError::invalid(
            "admin_consent",
            "Microsoft did not report an admin consent",
        ));
    }
    let ms_tenant = q.tenant.as_deref().ok_or_else(|| {
        ApiError::invalid("tenant", "Microsoft did not name the consenting tenant")
    })?;
    validate::uuid("tenant", ms_tenant)?;
    let connection = connections::Entity::find_by_id(consent.connection_id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    let tenant = tenants::Entity::find_by_id(connection.tenant_id)
        .one(&txn)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let sealed = unseal(&state, &connection)?;
    let credentials = match (sealed.m365_client_id, sealed.m365_client_secret) {
        (Some(client_id), Some(secret)) => AppCredentials {
            client_id,
            client_secret: SecretString::from(secret),
        },
        _ => state.m365_app.clone().ok_or_else(|| ApiError::Provider {
            detail: "no Microsoft app registration is configured".into(),
        })?,
    };
    // Prove access and discover the users before anything is recorded.
    let token = m365::app_token(&state.http, &state.m365, ms_tenant, &credentials)
        .await
        .map_err(provider_error)?;
    let users = m365::list_users(&state.m365.graph, &token)
        .await
        .map_err(provider_error)?;
    let taken = connections::Entity::find()
        .filter(connections::Column::TenantId.eq(connection.tenant_id))
        .filter(connections::Column::Provider.eq(Provider::M365.as_str()))
        .filter(connections::Column::ExternalId.eq(ms_tenant))
        .filter(connections::Column::Status.ne(ConnectionStatus::Revoked.as_str()))
        .one(&txn)
        .await?;
    if taken.is_some_and(|t| t.id != connection.id) {
        return Err(ApiError::Conflict {
            field: Some("tenant".into()),
            message: "this Microsoft 365 tenant is already connected".into(),
        });
    }
    let source: Vec<SourceUser> = users
        .into_iter()
        .map(|u| SourceUser {
            external_id: u.id,
            email: u.email,
        })
        .collect();
    let counts = arkiv_db::accounts::sync(
        &txn,
        &account_keys(&state),
        tenant.id,
        connection.id,
        &source,
        tenant.include_new_accounts,
    )
    .await?;
    let now = Utc::now();
    let mut row: connections::ActiveModel = connection.into();
    row.external_id = Set(Some(ms_tenant.to_owned()));
    row.status = Set(ConnectionStatus::Active.as_str().to_owned());
    row.status_detail = Set(None);
    row.activated_at = Set(Some(now));
    row.next_run_at = Set(Some(now));
    row.updated_at = Set(now);
    let connection = row.update(&txn).await?;
    let mut used: consent_states::ActiveModel = consent.into();
    used.used_at = Set(Some(now));
    used.update(&txn).await?;
    arkiv_db::audit::append(
        &txn,
        arkiv_db::audit::Entry {
            tenant_id: Some(tenant.id),
            actor: arkiv_db::audit::Actor {
                id: None,
                role: Some("tenant-admin (consent)".into()),
            },
            target: Some(connection.id.to_string()),
            details: json!({ "provider": "m365", "accounts_added": counts.added }),
            ..arkiv_db::audit::Entry::new(
                "connection.m365.activate",
                arkiv_db::audit::Outcome::Success,
            )
        },
    )
    .await?;
    txn.commit().await?;
    Ok(axum::Json(Connected {
        connection_id: connection.id,
        status: connection.status,
        accounts: counts.added + counts.seen,
    }))
}

// ------------------------------------------------------------------- Google

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectGoogle {
    /// The Workspace primary domain.
    pub domain: String,
    /// An administrator of the domain; Arkiv impersonates them to read the
    /// directory.
    pub admin_email: String,
    /// A service-account key (JSON) of the customer's own, instead of Arkiv's.
    pub service_account_key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GoogleConnection {
    pub id: Uuid,
    /// `active`, or `pending` until the delegation is in place.
    pub status: String,
    /// The service account's client id, for the Admin console.
    pub client_id: String,
    /// The scopes to authorise for it.
    pub scopes: Vec<String>,
    /// When pending: exactly what is missing.
    pub detail: Option<String>,
    pub accounts: u64,
}

/// Verify a Google connection: impersonate its admin and list the
/// directory into accounts (active), or say exactly what to authorise
/// (pending). Provider failures abort the caller's transaction.
async fn verify_google(
    state: &AppState,
    txn: &DatabaseTransaction,
    connection: connections::Model,
    tenant: &tenants::Model,
) -> Result<GoogleConnection, ApiError> {
    let sealed = unseal(state, &connection)?;
    let sa = match &sealed.google_key {
        Some(key) => ServiceAccount::parse(key).map_err(ApiError::internal)?,
        None => state.google_sa.clone().ok_or_else(|| ApiError::Provider {
            detail: "no service account is configured".into(),
        })?,
    };
    let admin = sealed
        .google_admin
        .clone()
        .ok_or_else(|| ApiError::internal("a Google connection without its admin"))?;
    let domain = connection.external_id.clone().unwrap_or_default();
    let scopes: Vec<String> = google::SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let listed = match google::delegated_token(&sa, &admin, google::SCOPES).await {
        Ok(token) => google::list_users(&state.http, &state.google_api_root, &token).await,
        Err(e) => Err(e),
    };
    let now = Utc::now();
    let mut row: connections::ActiveModel = connection.clone().into();
    row.updated_at = Set(now);
    let (status, detail, accounts) = match listed {
        Ok(users) => {
            let suffix = format!("@{domain}");
            let source: Vec<SourceUser> = users
                .into_iter()
                .filter(|u| u.email.ends_with(&suffix))
                .map(|u| SourceUser {
                    external_id: u.id,
                    email: u.email,
                })
                .collect();
            let counts = arkiv_db::accounts::sync(
                txn,
                &account_keys(state),
                tenant.id,
                connection.id,
                &source,
                tenant.include_new_accounts,
            )
            .await?;
            row.status = Set(ConnectionStatus::Active.as_str().to_owned());
            row.status_detail = Set(None);
            row.activated_at = Set(Some(now));
            row.next_run_at = Set(Some(now));
            (ConnectionStatus::Active, None, counts.added + counts.seen)
        }
        Err(ProviderError::NotAuthorised(why)) => {
            let detail = format!(
                "{why}. In the Google Admin console of {domain}: Security → Access and data control → API controls → Domain-wide delegation → Add new, client id {}, scopes {}; then verify again",
                sa.client_id(),
                scopes.join(",")
            );
            row.status = Set(ConnectionStatus::Pending.as_str().to_owned());
            row.status_detail = Set(Some(detail.clone()));
            (ConnectionStatus::Pending, Some(detail), 0)
        }
        Err(e) => return Err(provider_error(e)),
    };
    row.update(txn).await?;
    Ok(GoogleConnection {
        id: connection.id,
        status: status.as_str().to_owned(),
        client_id: sa.client_id().to_owned(),
        scopes,
        detail,
        accounts,
    })
}

#[utoipa::path(post, path = "/v1/tenants/{id}/connections/google", tag = "connections", params(("id" = Uuid, Path)), request_body = ConnectGoogle,
    responses((status = 201, body = GoogleConnection), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)), security(("token" = [])))]
pub async fn connect_google(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
    Json(body): Json<ConnectGoogle>,
) -> Result<(StatusCode, axum::Json<GoogleConnection>), ApiError> {
    let out = audited(&state, &caller, "connection.google.connect", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            let tenant = tenant_for(txn, &caller, tenant_id, Action::ManageConnections).await?;
            let domain = validate::domain("domain", &body.domain)?;
            let admin = validate::email("admin_email", &body.admin_email)?;
            if !admin.ends_with(&format!("@{domain}")) {
                return Err(ApiError::invalid("admin_email", format!("must be an address in {domain}")));
            }
            if let Some(key) = &body.service_account_key {
                ServiceAccount::parse(key).map_err(|e| ApiError::invalid("service_account_key", e))?;
            } else if state.google_sa.is_none() {
                return Err(ApiError::invalid("service_account_key", "this deployment has no service account (google.service_account_file): give service_account_key"));
            }
            let exists = connections::Entity::find()
                .filter(connections::Column::TenantId.eq(tenant_id))
                .filter(connections::Column::Provider.eq(Provider::Google.as_str()))
                .filter(connections::Column::ExternalId.eq(domain.clone()))
                .filter(connections::Column::Status.ne(ConnectionStatus::Revoked.as_str()))
                .one(txn)
                .await?;
            if exists.is_some() {
                return Err(ApiError::Conflict { field: Some("domain".into()), message: format!("{domain} is already connected; verify or revoke that connection") });
            }
            let mut row = new_connection(tenant_id, Provider::Google, Some(domain));
            let id = *row.id.as_ref();
            let sealed = Sealed { google_admin: Some(admin), google_key: body.service_account_key.clone(), ..Sealed::default() };
            row.credentials_sealed = Set(Some(seal(&state, id, &sealed)));
            let connection = row.insert(txn).await?;
            let out = verify_google(&state, txn, connection, &tenant).await?;
            let audited = Audited { tenant: Some(tenant_id), target: Some(id.to_string()), details: json!({ "provider": "google", "status": out.status, "accounts": out.accounts }) };
            Ok((out, audited))
        })
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// A connection the caller may manage.
async fn managed_connection<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: Uuid,
    action: Action,
) -> Result<(connections::Model, tenants::Model), ApiError> {
    let c = connections::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::NotFound("connection"))?;
    let t = tenant_for(db, caller, c.tenant_id, action)
        .await
        .map_err(|_| ApiError::NotFound("connection"))?;
    Ok((c, t))
}

#[utoipa::path(post, path = "/v1/connections/{id}/verify", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = GoogleConnection), (status = 404, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)), security(("token" = [])))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<GoogleConnection>, ApiError> {
    let out = audited(&state, &caller, "connection.google.verify", |txn| {
        let (caller, state) = (caller.clone(), state.clone());
        Box::pin(async move {
            let (connection, tenant) = managed_connection(txn, &caller, id, Action::ManageConnections).await?;
            if connection.provider != Provider::Google.as_str() {
                return Err(ApiError::invalid("id", "only Google connections are verified this way; Microsoft 365 connections complete through admin consent"));
            }
            if connection.status == ConnectionStatus::Revoked.as_str() {
                return Err(ApiError::invalid("id", "the connection was revoked; connect again"));
            }
            let out = verify_google(&state, txn, connection, &tenant).await?;
            let audited = Audited { tenant: Some(tenant.id), target: Some(id.to_string()), details: json!({ "status": out.status }) };
            Ok((out, audited))
        })
    })
    .await?;
    Ok(axum::Json(out))
}

#[utoipa::path(get, path = "/v1/tenants/{id}/connections", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = [ConnectionOut]), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(tenant_id): Path<Uuid>,
) -> Result<axum::Json<Vec<ConnectionOut>>, ApiError> {
    let t = tenant_for(&state.db, &caller, tenant_id, Action::ReadTenant).await?;
    let rows = connections::Entity::find()
        .filter(connections::Column::TenantId.eq(t.id))
        .order_by_asc(connections::Column::CreatedAt)
        .all(&state.db)
        .await?;
    Ok(axum::Json(
        rows.into_iter().map(ConnectionOut::from).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConnectionOut), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<ConnectionOut>, ApiError> {
    let (c, _) = managed_connection(&state.db, &caller, id, Action::ReadTenant).await?;
    Ok(axum::Json(c.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnection {
    /// Minutes between scheduled backup runs: 60 (hourly) to 10,080 (weekly);
    /// 240 by default. The next run moves to now plus this.
    pub schedule_minutes: i32,
}

#[utoipa::path(patch, path = "/v1/connections/{id}", tag = "connections", params(("id" = Uuid, Path)), request_body = UpdateConnection,
    responses((status = 200, body = ConnectionOut), (status = 404, body = Problem), (status = 422, body = Problem)), security(("token" = [])))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(body): Json<UpdateConnection>,
) -> Result<axum::Json<ConnectionOut>, ApiError> {
    let out = audited(&state, &caller, "connection.schedule", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let minutes =
                validate::range("schedule_minutes", body.schedule_minutes.into(), 60, 10_080)?;
            let (connection, tenant) =
                managed_connection(txn, &caller, id, Action::ManageConnections).await?;
            let now = Utc::now();
            let mut row: connections::ActiveModel = connection.clone().into();
            row.schedule_minutes = Set(minutes as i32);
            if connection.next_run_at.is_some() {
                row.next_run_at = Set(Some(now + Duration::minutes(minutes)));
            }
            row.updated_at = Set(now);
            let updated = row.update(txn).await?;
            Ok((
                ConnectionOut::from(updated),
                Audited {
                    tenant: Some(tenant.id),
                    target: Some(id.to_string()),
                    details: json!({ "schedule_minutes": minutes }),
                },
            ))
        })
    })
    .await?;
    Ok(axum::Json(out))
}

#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("token" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    audited(&state, &caller, "connection.revoke", |txn| {
        let caller = caller.clone();
        Box::pin(async move {
            let (connection, tenant) =
                managed_connection(txn, &caller, id, Action::ManageConnections).await?;
            let mut row: connections::ActiveModel = connection.into();
            row.status = Set(ConnectionStatus::Revoked.as_str().to_owned());
            row.credentials_sealed = Set(None);
            row.next_run_at = Set(None);
            row.updated_at = Set(Utc::now());
            row.update(txn).await?;
            Ok((
                (),
                Audited {
                    tenant: Some(tenant.id),
                    target: Some(id.to_string()),
                    ..Default::default()
                },
            ))
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
