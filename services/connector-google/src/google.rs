//! The Google APIs for one connection, as a good citizen.
//!
//! Tokens: one per impersonated user, by the JWT-bearer grant of the
//! connection's service account (yup-oauth2, the google-apis crates' own
//! authenticator, in `arkiv_provider::google`), cached until shortly before
//! they expire and renewed once more on a 401.
//!
//! Requests go out with reqwest rather than through google-gmail1,
//! google-drive3 and google-calendar3 (API-REFERENCE §13.2): those crates
//! retry nothing, page nothing, cannot send `Range`, decode Gmail's
//! unpadded base64 parts wrongly, re-encode every resource from typed
//! structs (a backup keeps the JSON exactly as Google sent it), and need
//! a whole upload in memory as `Read + Seek`. What they would add, URL
//! building, is a line here.
//!
//! Limits: at most `user_concurrency` requests in flight per user and a
//! requests-per-second budget for the connection. Google sends no
//! `Retry-After`: 429 and 403 `rateLimitExceeded` / `userRateLimitExceeded`
//! block the user's lane for a jittered, growing backoff (not counted as
//! attempts, but bounded in total); 5xx and timeouts are retried with
//! backoff up to `max_attempts`; other 4xx are not retried.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arkiv_backup::record::RunRecord;
use arkiv_provider::google::{self, ServiceAccount};
use arkiv_provider::{AccessToken, ProviderError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

/// How a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum GoogleError {
    /// Google answered with an error we do not retry (or retried in vain).
    #[error("Google answered {status} {reason}: {message}")]
    Status {
        status: u16,
        reason: String,
        message: String,
        /// Where in the request the problem is (`pageToken`, say).
        location: Option<String>,
    },
    #[error("Google could not be reached: {0}")]
    Transport(String),
    /// No token for the user: delegation, or the key.
    #[error(transparent)]
    Token(#[from] ProviderError),
}

impl GoogleError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GoogleError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            GoogleError::Status { reason, .. } => reason.clone(),
            GoogleError::Transport(_) => "transport".into(),
            GoogleError::Token(_) => "token".into(),
        }
    }

    fn location(&self) -> Option<&str> {
        match self {
            GoogleError::Status { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    /// A Gmail history id, Drive page token or Calendar sync token Google
    /// no longer knows: list that scope again in full.
    pub fn is_expired_cursor(&self) -> bool {
        match self.status() {
            Some(410) => true,
            // Gmail: a historyId too old (or otherwise unknown).
            Some(404) => self.reason() == "notFound",
            // Drive: "Invalid Value" for the page token.
            Some(400) => self.location() == Some("pageToken"),
            _ => false,
        }
    }

    /// The account may not be read or written at all.
    pub fn is_access_denied(&self) -> bool {
        matches!(self.status(), Some(401))
            || (self.status() == Some(403)
                && matches!(
                    self.reason().as_str(),
                    "forbidden" | "insufficientPermissions" | "domainPolicy"
                ))
            || matches!(self, GoogleError::Token(ProviderError::NotAuthorised(_)))
    }
}

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct Limits {
    pub user_concurrency: usize,
    pub requests_per_second: u32,
    pub max_attempts: u32,
    /// The longest a request waits out throttling in all before it fails.
    pub max_throttled: Duration,
}

/// One user's share of the limits.
struct Lane {
    slots: Semaphore,
    /// No request for this user before this instant (backing off).
    blocked_until: Mutex<Option<Instant>>,
    /// Throttled answers in a row, for the backoff's growth.
    strikes: Mutex<u32>,
}

/// Renew tokens this long before they expire (or at half their life, if
/// that is sooner: the simulator's tokens can be short).
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// A connection's Google client.
pub struct Google {
    http: reqwest::Client,
    root: Url,
    account: ServiceAccount,
    tokens: tokio::sync::Mutex<HashMap<String, AccessToken>>,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    budget: DefaultDirectRateLimiter,
    limits: Limits,
    record: Option<Arc<RunRecord>>,
}

impl std::fmt::Debug for Google {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Google")
            .field("root", &self.root.as_str())
            .finish_non_exhaustive()
    }
}

/// A successful answer, its body unread.
pub type Response = reqwest::Response;

impl Google {
    pub fn new(
        root: Url,
        account: ServiceAccount,
        limits: Limits,
        record: Option<Arc<RunRecord>>,
    ) -> Self {
        let rate = NonZeroU32::new(limits.requests_per_second.max(1)).expect("at least 1");
        Self {
            http: arkiv_provider::http_client(),
            root,
            account,
            tokens: tokio::sync::Mutex::default(),
            lanes: Mutex::default(),
            budget: RateLimiter::direct(Quota::per_second(rate)),
            limits,
            record,
        }
    }

    /// A URL below the API root: `gmail/v1/users/me/profile`.
    pub fn url(&self, path: &str) -> Url {
        self.root.join(path).expect("API paths join the root")
    }

    /// A token acting as `user` (an address), good for a while yet.
    async fn token(&self, user: &str, force_new: bool) -> Result<String, GoogleError> {
        let mut cache = self.tokens.lock().await;
        if let Some(t) = cache.get(user) {
            let life = (t.expires_at - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            if !force_new && !t.expires_within(TOKEN_MARGIN.min(life / 2)) {
                return Ok(t.secret.expose_secret().to_owned());
            }
        }
        let token = google::delegated_token(&self.account, user, google::SCOPES).await?;
        let secret = token.secret.expose_secret().to_owned();
        cache.insert(user.to_owned(), token);
        Ok(secret)
    }

    fn lane(&self, user: &str) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().expect("never poisoned");
        lanes
            .entry(user.to_owned())
            .or_insert_with(|| {
                Arc::new(Lane {
                    slots: Semaphore::new(self.limits.user_concurrency.max(1)),
                    blocked_until: Mutex::new(None),
                    strikes: Mutex::new(0),
                })
            })
            .clone()
    }

    /// Send a request built by `make` (given the client and a token) as
    /// `user`, with the limits and retries above. Returns the successful
    /// response, its body unread.
    pub async fn send(
        &self,
        user: &str,
        make: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Response, GoogleError> {
        let lane = self.lane(user);
        let mut attempt = 0u32;
        let mut renewed = false;
        let mut throttled = Duration::ZERO;
        loop {
            attempt += 1;
            self.wait_unblocked(&lane, &mut throttled).await;
            self.budget.until_ready().await;
            let slot = lane.slots.acquire().await.expect("never closed");
            let token = self.token(user, false).await?;
            let result = make(&self.http, &token).send().await;
            drop(slot);
            metrics::counter!("arkiv_connector_requests_total", "provider" => "google")
                .increment(1);
            let response = match result {
                Ok(r) => r,
                Err(e) if attempt < self.limits.max_attempts => {
                    tracing::debug!(error = %e, attempt, "Google request failed; backing off");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(GoogleError::Transport(e.to_string())),
            };
            let status = response.status().as_u16();
            if response.status().is_success() || status == 308 {
                *lane.strikes.lock().expect("never poisoned") = 0;
                return Ok(response);
            }
            let text = response.text().await.unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let first = &body["error"]["errors"][0];
            let error = GoogleError::Status {
                status,
                reason: first["reason"]
                    .as_str()
                    .or(body["error"]["status"].as_str())
                    .unwrap_or("unknown")
                    .to_owned(),
                message: match body["error"]["message"].as_str() {
                    Some(m) => m.to_owned(),
                    None => text.chars().take(200).collect(),
                },
                location: first["location"].as_str().map(str::to_owned),
            };
            match google::classify(status, &body, None) {
                ProviderError::Throttled { .. } => {
                    // Throttling is not failure: it costs no attempt, but
                    // its total wait is bounded.
                    attempt -= 1;
                    if throttled >= self.limits.max_throttled {
                        return Err(error);
                    }
                    let mut blocked = lane.blocked_until.lock().expect("never poisoned");
                    // Requests that were in flight when the lane closed
                    // do not make the backoff grow again.
                    if blocked.is_none_or(|b| b <= Instant::now()) {
                        let wait = {
                            let mut strikes = lane.strikes.lock().expect("never poisoned");
                            *strikes += 1;
                            backoff(*strikes)
                        };
                        *blocked = Some(Instant::now() + wait);
                    }
                    metrics::counter!("arkiv_connector_throttled_total", "provider" => "google")
                        .increment(1);
                }
                ProviderError::Credentials(_) if status == 401 && !renewed => {
                    renewed = true;
                    attempt -= 1;
                    self.token(user, true).await?;
                }
                ProviderError::Transient(_) if attempt < self.limits.max_attempts => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// Wait until the user's lane is open again, counting the wait.
    async fn wait_unblocked(&self, lane: &Lane, throttled: &mut Duration) {
        loop {
            let until = *lane.blocked_until.lock().expect("never poisoned");
            match until {
                Some(t) if t > Instant::now() => {
                    let started = Instant::now();
                    tokio::time::sleep_until(t).await;
                    *throttled += started.elapsed();
                    if let Some(record) = &self.record {
                        record.throttled(started.elapsed());
                    }
                }
                _ => return,
            }
        }
    }

    /// GET `path` (below the root) with `query`, as JSON.
    pub async fn get_json(
        &self,
        user: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, GoogleError> {
        let url = self.url(path);
        let response = self
            .send(user, |http, token| {
                http.get(url.clone()).query(query).bearer_auth(token)
            })
            .await?;
        read_json(response).await
    }

    /// POST a JSON body to `path` with `query`, as JSON.
    pub async fn post_json(
        &self,
        user: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, GoogleError> {
        let url = self.url(path);
        let response = self
            .send(user, |http, token| {
                http.post(url.clone())
                    .query(query)
                    .bearer_auth(token)
                    .json(body)
            })
            .await?;
        read_json(response).await
    }
}

pub async fn read_json(response: Response) -> Result<Value, GoogleError> {
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| GoogleError::Transport(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| GoogleError::Status {
        status,
        reason: "malformedResponse".into(),
        message: format!("Google's answer is not JSON: {e}"),
        location: None,
    })
}

/// Jittered exponential backoff: 1 s, 2 s, 4 s ... up to 32 s, each
/// scaled by a random factor in [0.5, 1).
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1) * 2u32.saturating_pow(attempt.saturating_sub(1).min(5));
    base.mul_f64(rand::thread_rng().gen_range(0.5..1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, reason: &str, location: Option<&str>) -> GoogleError {
        GoogleError::Status {
            status,
            reason: reason.into(),
            message: String::new(),
            location: location.map(str::to_owned),
        }
    }

    #[test]
    fn each_api_says_its_cursor_expired_in_its_own_way() {
        assert!(
            status(404, "notFound", None).is_expired_cursor(),
            "Gmail history"
        );
        assert!(
            status(400, "invalid", Some("pageToken")).is_expired_cursor(),
            "Drive"
        );
        assert!(
            status(410, "fullSyncRequired", None).is_expired_cursor(),
            "Calendar"
        );
        assert!(!status(400, "invalid", Some("q")).is_expired_cursor());
        assert!(!status(403, "userRateLimitExceeded", None).is_expired_cursor());
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(32), "{attempt}: {d:?}");
            assert!(d >= Duration::from_millis(500), "{attempt}: {d:?}");
        }
        assert!(backoff(6) >= Duration::from_secs(16));
    }
}
