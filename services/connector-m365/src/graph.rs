//! Microsoft Graph for one connection, as a good citizen: graph-rs-sdk
//! builds every request (pointed at `m365.graph_url`); this module adds
//! what the SDK does not do for us (see API-REFERENCE §13.1):
//!
//! - app-only tokens by client credentials (oauth2 crate), renewed five
//!   minutes before they expire and once more on a 401;
//! - at most `mailbox_concurrency` requests in flight per mailbox, and a
//!   shared requests-per-second budget for the connection;
//! - `Retry-After` honoured exactly: a 429 or 503 stops *every* request to
//!   that mailbox until the time given has passed (the SDK only retries
//!   whole-number Retry-After on its own thread, and not while paging);
//! - jittered exponential backoff on other 5xx and on timeouts; other 4xx
//!   are not retried and come back as [`GraphError::Status`] with the
//!   response's `request-id`.
//!
//! Delta and next links are absolute URLs the SDK cannot build, so they
//! are sent through its `custom` request with the URL replaced.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arkiv_backup::record::RunRecord;
use arkiv_provider::m365::{self, AppCredentials, Endpoints};
use arkiv_provider::{AccessToken, ProviderError};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use graph_http::api_impl::RequestHandler;
use graph_rs_sdk::http::Method;
use graph_rs_sdk::{GraphClient, GraphFailure, ODataQuery};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

/// How a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error we do not retry (or retried in vain).
    #[error("Graph answered {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// The network failed on every attempt.
    #[error("Graph could not be reached: {0}")]
    Transport(String),
    /// A token could not be had: credentials or consent.
    #[error(transparent)]
    Token(#[from] ProviderError),
}

impl GraphError {
    pub fn request_id(&self) -> Option<String> {
        match self {
            GraphError::Status { request_id, .. } => request_id.clone(),
            _ => None,
        }
    }

    pub fn code(&self) -> String {
        match self {
            GraphError::Status { code, .. } => code.clone(),
            GraphError::Transport(_) => "transport".into(),
            GraphError::Token(_) => "token".into(),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Graph says the account has no such service: no mailbox (an
    /// unlicensed user) for mail and calendar, no OneDrive for drive.
    pub fn means_no_service(&self, workload: arkiv_domain::Workload) -> bool {
        match self {
            GraphError::Status {
                status: 404, code, ..
            } => match workload {
                arkiv_domain::Workload::Drive => {
                    matches!(
                        code.as_str(),
                        "itemNotFound" | "ResourceNotFound" | "notFound"
                    )
                }
                _ => code == "MailboxNotEnabledForRESTAPI",
            },
            _ => false,
        }
    }

    /// A delta token Graph no longer knows: start that delta over.
    pub fn is_expired_cursor(&self) -> bool {
        match self {
            GraphError::Status { status, code, .. } => {
                *status == 410
                    || matches!(
                        code.to_ascii_lowercase().as_str(),
                        "syncstatenotfound" | "resyncrequired" | "syncstateinvalid"
                    )
            }
            _ => false,
        }
    }
}

/// How the client behaves.
#[derive(Clone, Debug)]
pub struct Limits {
    pub mailbox_concurrency: usize,
    pub requests_per_second: u32,
    pub max_attempts: u32,
}

/// A connection's Graph client.
pub struct Graph {
    http: reqwest::Client,
    endpoints: Endpoints,
    tenant: String,
    credentials: AppCredentials,
    token: tokio::sync::Mutex<Option<(AccessToken, GraphClient)>>,
    mailboxes: Mutex<HashMap<String, Arc<Mailbox>>>,
    budget: DefaultDirectRateLimiter,
    limits: Limits,
    /// The backup run whose throttled time this client counts (none for
    /// restores).
    record: Option<Arc<RunRecord>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// One mailbox's share of the limits.
struct Mailbox {
    slots: Semaphore,
    /// No request to this mailbox before this instant (Retry-After).
    blocked_until: Mutex<Option<Instant>>,
}

/// Renew tokens this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

impl Graph {
    pub fn new(
        endpoints: Endpoints,
        tenant: String,
        credentials: AppCredentials,
        limits: Limits,
        record: Option<Arc<RunRecord>>,
    ) -> Self {
        let rate = NonZeroU32::new(limits.requests_per_second.max(1)).expect("at least 1");
        Self {
            http: arkiv_provider::http_client(),
            endpoints,
            tenant,
            credentials,
            token: tokio::sync::Mutex::new(None),
            mailboxes: Mutex::new(HashMap::new()),
            budget: RateLimiter::direct(Quota::per_second(rate)),
            limits,
            record,
        }
    }

    /// A client with a token good for a while yet.
    async fn client(&self, force_new: bool) -> Result<GraphClient, GraphError> {
        let mut cached = self.token.lock().await;
        match cached.as_ref() {
            Some((token, client)) if !force_new && !token.expires_within(TOKEN_MARGIN) => {
                Ok(client.clone())
            }
            _ => {
                let token =
                    m365::app_token(&self.http, &self.endpoints, &self.tenant, &self.credentials)
                        .await?;
                let client =
                    m365::graph_client(&self.endpoints.graph, token.secret.expose_secret());
                *cached = Some((token, client.clone()));
                Ok(client)
            }
        }
    }

    fn mailbox(&self, id: &str) -> Arc<Mailbox> {
        let mut map = self.mailboxes.lock().expect("never poisoned");
        map.entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(Mailbox {
                    slots: Semaphore::new(self.limits.mailbox_concurrency.max(1)),
                    blocked_until: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Every user of the tenant (the directory), for account discovery.
    pub async fn users(&self) -> Result<Vec<arkiv_provider::DirectoryUser>, GraphError> {
        let mut users = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = match &next {
                None => {
                    self.json("", |c| {
                        c.users()
                            .list_user()
                            .select(&["id", "userPrincipalName", "mail"])
                            .top("999")
                    })
                    .await?
                }
                Some(link) => self.json_at("", link).await?,
            };
            for u in page["value"].as_array().into_iter().flatten() {
                let (Some(id), Some(upn)) = (u["id"].as_str(), u["userPrincipalName"].as_str())
                else {
                    continue;
                };
                users.push(arkiv_provider::DirectoryUser {
                    id: id.to_owned(),
                    email: u["mail"].as_str().unwrap_or(upn).to_lowercase(),
                });
            }
            match page["@odata.nextLink"].as_str() {
                Some(link) => next = Some(link.to_owned()),
                None => return Ok(users),
            }
        }
    }

    /// Send a request built by `make` against `mailbox` ("" for none),
    /// with the limits, retries and token handling above. Returns the
    /// successful response, its body unread.
    pub async fn send(
        &self,
        mailbox: &str,
        make: impl Fn(&GraphClient) -> RequestHandler,
    ) -> Result<reqwest::Response, GraphError> {
        self.attempts(mailbox, |client| {
            let request = make(client);
            async move { request.send().await }
        })
        .await
    }

    /// PUT one chunk of an upload session to its upload URL, under the
    /// mailbox's limits and retries. The URL is pre-authenticated and must
    /// not carry our token, so the SDK does not build this request.
    /// Returns Graph's answer: the session's state, or the item at the end.
    pub async fn put_upload_chunk(
        &self,
        mailbox: &str,
        upload_url: &str,
        chunk: bytes::Bytes,
        start: u64,
        end: u64,
        total: u64,
    ) -> Result<Value, GraphError> {
        let response = self
            .attempts(mailbox, |_| {
                let request = self
                    .http
                    .put(upload_url)
                    .header("content-range", format!("bytes {start}-{end}/{total}"))
                    .body(chunk.clone());
                async move { request.send().await.map_err(GraphFailure::from) }
            })
            .await?;
        read_json(response).await
    }

    /// Make requests with `call` until one succeeds or fails for good,
    /// with the limits, retries and token handling described above.
    async fn attempts<F, Fut>(
        &self,
        mailbox: &str,
        call: F,
    ) -> Result<reqwest::Response, GraphError>
    where
        F: Fn(&GraphClient) -> Fut,
        Fut: std::future::Future<Output = Result<reqwest::Response, GraphFailure>>,
    {
        let lane = self.mailbox(mailbox);
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            self.wait_unblocked(&lane).await;
            self.budget.until_ready().await;
            let slot = lane.slots.acquire().await.expect("never closed");
            // Blocked while we queued for a slot: wait again.
            if lane
                .blocked_until
                .lock()
                .expect("never poisoned")
                .is_some_and(|t| t > Instant::now())
            {
                drop(slot);
                continue;
            }
            let client = self.client(false).await?;
            let result = call(&client).await;
            drop(slot);
            metrics::counter!("arkiv_connector_requests_total", "provider" => "m365").increment(1);
            let response = match result {
                Ok(r) => r,
                Err(e) if attempt < self.limits.max_attempts && is_transient(&e) => {
                    tracing::debug!(error = %e, attempt, "Graph request failed; backing off");
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => return Err(GraphError::Transport(e.to_string())),
            };
            let status = response.status().as_u16();
            if response.status().is_success() || response.status().is_redirection() {
                return Ok(response);
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(Duration::from_secs_f64);
            let request_id = request_id(response.headers());
            let text = response.text().await.unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let error = GraphError::Status {
                status,
                code: body["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                // Not Graph's error JSON (a proxy's page, say): its start.
                message: match body["error"]["message"].as_str() {
                    Some(m) => m.to_owned(),
                    None => text.chars().take(200).collect(),
                },
                request_id,
            };
            match (status, retry_after) {
                (429 | 503 | 504, Some(wait)) => {
                    // Exactly as long as we are told, for the whole mailbox.
                    let until = Instant::now() + wait;
                    {
                        let mut blocked = lane.blocked_until.lock().expect("never poisoned");
                        *blocked = Some(blocked.map_or(until, |b| b.max(until)));
                    }
                    metrics::counter!("arkiv_connector_throttled_total", "provider" => "m365")
                        .increment(1);
                    // Throttling is not failure: no attempt is used up.
                    attempt -= 1;
                }
                (401, _) if !renewed => {
                    renewed = true;
                    attempt -= 1;
                    self.client(true).await?;
                }
                (429 | 500..=599, _) if attempt < self.limits.max_attempts => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// Wait until the mailbox may be called again, counting the wait as
    /// time throttled.
    async fn wait_unblocked(&self, lane: &Mailbox) {
        loop {
            let until = *lane.blocked_until.lock().expect("never poisoned");
            match until {
                Some(t) if t > Instant::now() => {
                    let started = Instant::now();
                    tokio::time::sleep_until(t).await;
                    if let Some(record) = &self.record {
                        record.throttled(started.elapsed());
                    }
                }
                _ => return,
            }
        }
    }

    /// [`Graph::send`] for a JSON answer.
    pub async fn json(
        &self,
        mailbox: &str,
        make: impl Fn(&GraphClient) -> RequestHandler,
    ) -> Result<Value, GraphError> {
        let response = self.send(mailbox, make).await?;
        read_json(response).await
    }

    /// GET an absolute link Graph gave us (a nextLink or deltaLink).
    pub async fn get_link(
        &self,
        mailbox: &str,
        link: &str,
    ) -> Result<reqwest::Response, GraphError> {
        let url = Url::parse(link).map_err(|e| GraphError::Status {
            status: 0,
            code: "badLink".into(),
            message: format!("Graph gave a link that is not a URL: {e}"),
            request_id: None,
        })?;
        self.send(mailbox, |c| {
            let mut request = c.custom(Method::GET, None);
            *request.as_mut() = url.clone();
            request
        })
        .await
    }

    pub async fn json_at(&self, mailbox: &str, link: &str) -> Result<Value, GraphError> {
        let response = self.get_link(mailbox, link).await?;
        read_json(response).await
    }
}

/// The response's `request-id` (or `client-request-id`).
pub fn request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("request-id")
        .or_else(|| headers.get("client-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_json(response: reqwest::Response) -> Result<Value, GraphError> {
    let request_id = request_id(response.headers());
    let status = response.status().as_u16();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| GraphError::Transport(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| GraphError::Status {
        status,
        code: "malformedResponse".into(),
        message: format!("Graph's answer is not JSON: {e}"),
        request_id,
    })
}

fn is_transient(e: &GraphFailure) -> bool {
    match e {
        GraphFailure::ReqwestError(e) => {
            e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()
        }
        GraphFailure::Io(_) => true,
        _ => false,
    }
}

/// Jittered exponential backoff: 0.5 s, 1 s, 2 s ... up to 30 s, each
/// scaled by a random factor in [0.5, 1).
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500) * 2u32.saturating_pow(attempt.saturating_sub(1).min(6));
    let capped = base.min(Duration::from_secs(30));
    capped.mul_f64(rand::thread_rng().gen_range(0.5..1.0))
}
