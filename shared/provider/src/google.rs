//! Google Workspace: service-account keys, delegated tokens, the Directory.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::{AccessToken, DirectoryUser, ProviderError};

/// The scopes Arkiv asks a domain's admin to delegate.
pub const SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/drive",
    "https://www.googleapis.com/auth/calendar",
];

/// A service-account key (the JSON Google issues).
#[derive(Clone)]
pub struct ServiceAccount {
    key: yup_oauth2::ServiceAccountKey,
    json: SecretString,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.key.client_email)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    pub fn parse(json: &str) -> Result<Self, String> {
        let key = yup_oauth2::parse_service_account_key(json)
            .map_err(|e| format!("not a service-account key: {e}"))?;
        Ok(Self {
            key,
            json: SecretString::from(json.to_owned()),
        })
    }

    /// The OAuth client id an admin enters in the Admin console.
    pub fn client_id(&self) -> &str {
        self.key.client_id.as_deref().unwrap_or_default()
    }

    pub fn client_email(&self) -> &str {
        &self.key.client_email
    }

    /// The key as JSON, to seal for storage.
    pub fn json(&self) -> &SecretString {
        &self.json
    }
}

/// A token acting as `subject`, by the JWT-bearer grant.
pub async fn delegated_token(
    sa: &ServiceAccount,
    subject: &str,
    scopes: &[&str],
) -> Result<AccessToken, ProviderError> {
    let auth = yup_oauth2::ServiceAccountAuthenticator::builder(sa.key.clone())
        .subject(subject)
        .build()
        .await
        .map_err(|e| ProviderError::Transient(e.to_string()))?;
    let token = auth.token(scopes).await.map_err(|e| match e {
        yup_oauth2::Error::AuthError(a) => {
            let description = a.error_description.clone().unwrap_or_default();
            match a.error {
                yup_oauth2::error::AuthErrorCode::UnauthorizedClient => ProviderError::NotAuthorised(format!(
                    "domain-wide delegation is missing: authorise client id {} for the scopes {} ({description})",
                    sa.client_id(),
                    scopes.join(",")
                )),
                yup_oauth2::error::AuthErrorCode::InvalidGrant => ProviderError::NotAuthorised(format!(
                    "{subject} cannot be impersonated: is it a user of the domain? ({description})"
                )),
                yup_oauth2::error::AuthErrorCode::InvalidClient => ProviderError::Credentials(description),
                _ => ProviderError::Refused { status: 400, code: a.error.as_str().to_owned(), message: description, request_id: None },
            }
        }
        other => ProviderError::Transient(other.to_string()),
    })?;
    let secret = token
        .token()
        .ok_or_else(|| ProviderError::Transient("no access token in the response".into()))?;
    Ok(AccessToken {
        secret: SecretString::from(secret.to_owned()),
        expires_at: token
            .expiration_time()
            .map(|t| chrono::DateTime::from_timestamp(t.unix_timestamp(), 0).unwrap_or_default())
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::seconds(3000)),
    })
}

/// A Google error body as a [`ProviderError`].
pub fn classify(status: u16, body: &Value, retry_after: Option<Duration>) -> ProviderError {
    let reason = body["error"]["errors"][0]["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
    match (status, reason.as_str()) {
        (429, _) | (403, "rateLimitExceeded" | "userRateLimitExceeded") => {
            ProviderError::Throttled { retry_after }
        }
        (500..=599, _) => ProviderError::Transient(format!("{status} {reason}: {message}")),
        (401, _) => ProviderError::Credentials(message),
        (403, "forbidden" | "insufficientPermissions") => ProviderError::NotAuthorised(message),
        _ => ProviderError::Refused {
            status,
            code: reason,
            message,
            request_id: None,
        },
    }
}

/// Every user of the customer's domain, as the admin `token` sees it.
///
/// With reqwest rather than a google-apis crate: the Admin SDK crate
/// (google-admin1_directory) is not among Arkiv's dependencies, and this is
/// one paged GET.
pub async fn list_users(
    http: &reqwest::Client,
    api_root: &Url,
    token: &AccessToken,
) -> Result<Vec<DirectoryUser>, ProviderError> {
    let mut users = Vec::new();
    let mut page_token: Option<String> = None;
    loop {
        let mut url = api_root
            .join("admin/directory/v1/users")
            .expect("static path joins");
        url.query_pairs_mut()
            .append_pair("customer", "my_customer")
            .append_pair("maxResults", "500")
            .append_pair("orderBy", "email");
        if let Some(t) = &page_token {
            url.query_pairs_mut().append_pair("pageToken", t);
        }
        let response = http
            .get(url)
            .bearer_auth(token.secret.expose_secret())
            .send()
            .await
            .map_err(|e| ProviderError::Transient(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err(classify(status, &body, None));
        }
        let (listed, next) = users_page(&body);
        users.extend(listed);
        match next {
            Some(t) => page_token = Some(t),
            None => return Ok(users),
        }
    }
}

/// One page of the Directory's `users.list`: its users and the next page.
pub fn users_page(body: &Value) -> (Vec<DirectoryUser>, Option<String>) {
    let users = body["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            Some(DirectoryUser {
                id: u["id"].as_str()?.to_owned(),
                email: u["primaryEmail"].as_str()?.to_lowercase(),
            })
        })
        .collect();
    (users, body["nextPageToken"].as_str().map(str::to_owned))
}
