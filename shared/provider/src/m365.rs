//! Microsoft 365: admin consent, app-only tokens, the directory of users.

use std::time::Duration;

use graph_rs_sdk::{GraphClient, GraphClientConfiguration, ODataQuery};
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::{AccessToken, DirectoryUser, ProviderError};

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// Where Microsoft lives: the identity platform and Graph (the simulator's
/// URLs in tests and the demo).
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// e.g. `https://login.microsoftonline.com/`
    pub authority: Url,
    /// e.g. `https://graph.microsoft.com/v1.0`
    pub graph: Url,
}

/// An app registration's credentials.
#[derive(Clone, Debug)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// The admin-consent URL for `tenant` (a GUID, a domain, or
/// `organizations` when the customer's tenant is not known yet).
pub fn admin_consent_url(
    endpoints: &Endpoints,
    tenant: &str,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
) -> Url {
    let mut url = endpoints
        .authority
        .join(&format!("{tenant}/adminconsent"))
        .expect("a tenant segment joins onto the authority");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    url
}

/// An app-only Graph token for `tenant_id` by the client-credentials grant.
pub async fn app_token(
    http: &reqwest::Client,
    endpoints: &Endpoints,
    tenant_id: &str,
    credentials: &AppCredentials,
) -> Result<AccessToken, ProviderError> {
    let token_url = endpoints
        .authority
        .join(&format!("{tenant_id}/oauth2/v2.0/token"))
        .map_err(|e| ProviderError::Refused {
            status: 0,
            code: "bad_tenant".into(),
            message: e.to_string(),
            request_id: None,
        })?;
    let client = BasicClient::new(ClientId::new(credentials.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            credentials.client_secret.expose_secret().to_owned(),
        ))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::from_url(token_url));
    let response = client
        .exchange_client_credentials()
        .add_scope(Scope::new(GRAPH_SCOPE.into()))
        .request_async(http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => {
                let code = r.error().as_ref().to_owned();
                let description = r.error_description().cloned().unwrap_or_default();
                match code.as_str() {
                    "invalid_client" => ProviderError::Credentials(description),
                    "unauthorized_client" | "invalid_grant" => {
                        ProviderError::NotAuthorised(description)
                    }
                    _ => ProviderError::Refused {
                        status: 400,
                        code,
                        message: description,
                        request_id: None,
                    },
                }
            }
            RequestTokenError::Request(e) => ProviderError::Transient(e.to_string()),
            other => ProviderError::Transient(other.to_string()),
        })?;
    let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3599));
    Ok(AccessToken {
        secret: SecretString::from(response.access_token().secret().to_owned()),
        expires_at: chrono::Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default(),
    })
}

/// A graph-rs-sdk client for `graph_url` with `token`. Only the real Graph
/// hosts pass the SDK's host check; anything else (the simulator) goes
/// through its `test-util` escape hatch, which is why that feature is on.
pub fn graph_client(graph_url: &Url, token: &str) -> GraphClient {
    let config = GraphClientConfiguration::new()
        .access_token(token)
        .https_only(graph_url.scheme() == "https");
    let mut client = GraphClient::from(config);
    let official = matches!(
        graph_url.host_str(),
        Some(
            "graph.microsoft.com"
                | "graph.microsoft.us"
                | "dod-graph.microsoft.us"
                | "microsoftgraph.chinacloudapi.cn"
        )
    );
    if official && graph_url.scheme() == "https" {
        client.use_endpoint(graph_url);
    } else {
        client.use_test_endpoint(graph_url);
    }
    client
}

/// A Graph error body as a [`ProviderError`].
pub fn classify(
    status: u16,
    body: &Value,
    retry_after: Option<Duration>,
    request_id: Option<String>,
) -> ProviderError {
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or("unknown")
        .to_owned();
    let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
    match status {
        429 | 503 | 504 => ProviderError::Throttled { retry_after },
        500..=599 => ProviderError::Transient(format!("{status} {code}: {message}")),
        401 => ProviderError::Credentials(format!("{code}: {message}")),
        403 if code == "Authorization_RequestDenied" => ProviderError::NotAuthorised(message),
        _ => ProviderError::Refused {
            status,
            code,
            message,
            request_id,
        },
    }
}

/// Every user of the tenant, paging through `/users`.
pub async fn list_users(
    graph_url: &Url,
    token: &AccessToken,
) -> Result<Vec<DirectoryUser>, ProviderError> {
    let client = graph_client(graph_url, token.secret.expose_secret());
    let pages = client
        .users()
        .list_user()
        .select(&["id", "userPrincipalName", "mail"])
        .top("999")
        .paging()
        .json::<Value>()
        .await
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    let mut users = Vec::new();
    for page in pages {
        let status = page.status().as_u16();
        let request_id = page
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = page.into_body().unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            return Err(classify(status, &body, None, request_id));
        }
        for u in body["value"].as_array().into_iter().flatten() {
            let (Some(id), Some(upn)) = (u["id"].as_str(), u["userPrincipalName"].as_str()) else {
                continue;
            };
            let email = u["mail"].as_str().unwrap_or(upn);
            users.push(DirectoryUser {
                id: id.to_owned(),
                email: email.to_lowercase(),
            });
        }
    }
    Ok(users)
}
