//! Arkiv's clients of the two providers, shared by the API (onboarding
//! checks) and the connectors (backup and restore).
//!
//! - [`m365`]: the admin-consent URL, app-only tokens by client credentials
//!   (the `oauth2` crate), and the directory of users (graph-rs-sdk).
//! - [`google`]: service-account keys, delegated tokens by the JWT-bearer
//!   grant (yup-oauth2), and the Directory `users.list`.
//! - [`secrets`]: a connection's credentials, sealed at rest.
//! - [`ProviderError`]: every failure classified, so callers know whether to
//!   retry, wait, ask an admin, or record an item as failed.
//!
//! Secrets stay in `secrecy` types and out of `Debug` and logs.

pub mod google;
pub mod m365;
pub mod secrets;

use std::time::Duration;

/// A user in a provider's directory: a candidate protected account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The provider's immutable id.
    pub id: String,
    pub email: String,
}

/// A bearer token and when it stops working.
#[derive(Clone)]
pub struct AccessToken {
    pub secret: secrecy::SecretString,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// Whether the token has less than `margin` left.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at - chrono::Duration::from_std(margin).unwrap_or_default()
            <= chrono::Utc::now()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Our own credentials are wrong (client secret, service-account key).
    #[error("the provider refused Arkiv's credentials: {0}")]
    Credentials(String),
    /// The customer's admin has not (or no longer) authorised Arkiv.
    #[error("access is not authorised: {0}")]
    NotAuthorised(String),
    /// Throttled: wait this long (Retry-After, or a backoff if none).
    #[error("throttled; retry after {retry_after:?}")]
    Throttled { retry_after: Option<Duration> },
    /// The provider or the network failed; retry with backoff.
    #[error("transient provider failure: {0}")]
    Transient(String),
    /// The request itself is wrong or the item is gone: do not retry.
    #[error("provider refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
}

impl ProviderError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Throttled { .. } | ProviderError::Transient(_)
        )
    }
}

/// An HTTP client for provider calls: no automatic redirects (callers
/// follow the ones they expect), sane timeouts.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(300))
        .build()
        .expect("a reqwest client with static settings builds")
}
