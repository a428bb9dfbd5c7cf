//! The simulator's shared state: the world, issued tokens, faults,
//! throttling and statistics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::world::World;

#[derive(Debug)]
pub struct Sim {
    /// `http://127.0.0.1:PORT`: the base of every absolute link.
    pub base_url: String,
    pub world: Mutex<World>,
    pub faults: Mutex<Faults>,
    pub stats: Mutex<Stats>,
    pub tokens: Mutex<HashMap<String, AccessToken>>,
    pub throttle: Mutex<HashMap<String, ThrottleState>>,
    /// Pre-authenticated download URLs: token → content.
    pub downloads: Mutex<HashMap<String, Download>>,
    /// Upload sessions (Graph and Google resumable): id → session.
    pub uploads: Mutex<HashMap<String, UploadSession>>,
    /// Unredeemed authorization codes: code → tenant id.
    pub codes: Mutex<HashMap<String, String>>,
    /// Restores `/_sim/reset` to the dataset as generated.
    pub reset: Generator,
    request_counter: std::sync::atomic::AtomicU64,
}

/// Builds the dataset's world, for start-up and `/_sim/reset`.
pub struct Generator(pub Box<dyn Fn() -> World + Send + Sync>);

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<dataset generator>")
    }
}

/// Lock a mutex, recovering from a poisoned one (a panicking handler must
/// not take the whole simulator down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sim {
    pub fn new(base_url: String, reset: Generator) -> Arc<Self> {
        Arc::new(Self {
            base_url,
            world: Mutex::new((reset.0)()),
            faults: Mutex::new(Faults::default()),
            stats: Mutex::new(Stats::default()),
            tokens: Mutex::new(HashMap::new()),
            throttle: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            reset,
            request_counter: Default::default(),
        })
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// A sequence number per request, for deterministic fault injection.
    pub fn next_request(&self) -> u64 {
        self.request_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn issue_token(&self, grant: Grant) -> (String, u64) {
        let lifetime = self.faults().token_lifetime_secs;
        let token: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(48)
            .map(char::from)
            .collect();
        let token = match grant {
            Grant::Graph { .. } => format!("eyJ0eXAiOiJKV1Qi.sim.{token}"),
            Grant::Google { .. } => format!("ya29.sim.{token}"),
        };
        lock(&self.tokens).insert(
            token.clone(),
            AccessToken {
                grant,
                expires_at: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }

    /// The grant of a bearer token that exists and has not expired.
    pub fn check_token(&self, token: &str) -> Option<Grant> {
        let tokens = lock(&self.tokens);
        let t = tokens.get(token)?;
        (t.expires_at > Instant::now()).then(|| t.grant.clone())
    }

    pub fn add_download(&self, content: Content, etag: String) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        lock(&self.downloads).insert(
            id.clone(),
            Download {
                content,
                etag,
                expires_at: Instant::now() + Duration::from_secs(600),
            },
        );
        format!("{}/_sim/download/{id}", self.base_url)
    }

    pub fn record(&self, endpoint: &str, status: u16) {
        let mut stats = lock(&self.stats);
        *stats
            .requests
            .entry(endpoint.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
}

/// What a bearer token allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// App-only Graph token for one tenant. `roles` is false when the
    /// tenant never consented: Graph then answers 403.
    Graph { tenant_id: String, roles: bool },
    /// A Google token for one user of one domain, with its scopes.
    Google {
        domain: String,
        subject: String,
        scopes: Vec<String>,
    },
}

#[derive(Debug)]
pub struct AccessToken {
    pub grant: Grant,
    pub expires_at: Instant,
}

#[derive(Debug)]
pub struct Download {
    pub content: Content,
    pub etag: String,
    pub expires_at: Instant,
}

#[derive(Debug)]
pub struct UploadSession {
    pub target: UploadTarget,
    pub total: Option<u64>,
    pub received: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub enum UploadTarget {
    /// A OneDrive item to create or replace.
    Graph {
        tenant_id: String,
        user_id: String,
        parent_id: String,
        name: String,
        conflict: String,
    },
    /// A Drive file to create (`file_id` None) or update.
    Drive {
        domain: String,
        user: String,
        metadata: serde_json::Value,
        file_id: Option<String>,
        supports_all_drives: bool,
    },
    /// A Gmail message to import or insert.
    Gmail {
        domain: String,
        user: String,
        metadata: serde_json::Value,
        import: bool,
        internal_date_source: String,
    },
}

/// Injected faults and limits, set with `POST /_sim/faults` (fields given
/// replace the current ones, the others stay).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every API request, while it holds its concurrency slot.
    pub latency_ms: u64,
    /// Fraction of API requests answered 503 (deterministic by request number).
    pub error_rate: f64,
    /// Graph: in-flight requests allowed per (app, mailbox).
    pub mailbox_concurrency: u32,
    /// Graph: requests allowed per (app, mailbox) per window.
    pub mailbox_budget: Option<Budget>,
    /// Google: requests allowed per user per window.
    pub user_budget: Option<Budget>,
    /// The next N API requests are throttled whatever the limits.
    pub throttle_burst: u32,
    /// Seconds in the Retry-After of throttled and 503 responses.
    pub retry_after_secs: u64,
    /// Lifetime of issued access tokens.
    pub token_lifetime_secs: u64,
    /// Graph: user ids whose mailbox, calendar and drive the app may not
    /// touch (as an Exchange application access policy does): 403
    /// `ErrorAccessDenied`.
    pub denied_mailboxes: Vec<String>,
}

impl Faults {
    /// Refuse settings the simulator cannot honour, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 6] = [
            (
                self.latency_ms <= 60_000,
                "latency_ms must be at most 60000",
            ),
            (
                (0.0..=1.0).contains(&self.error_rate),
                "error_rate must be between 0 and 1",
            ),
            (
                self.mailbox_concurrency >= 1,
                "mailbox_concurrency must be at least 1",
            ),
            (
                (1..=3600).contains(&self.retry_after_secs),
                "retry_after_secs must be between 1 and 3600",
            ),
            (
                self.token_lifetime_secs <= 86_400,
                "token_lifetime_secs must be at most 86400",
            ),
            (
                [self.mailbox_budget, self.user_budget]
                    .iter()
                    .flatten()
                    .all(|b| b.requests >= 1 && (1..=86_400_000).contains(&b.window_ms)),
                "a budget needs requests >= 1 and window_ms between 1 and 86400000",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, why)) => Err((*why).to_owned()),
            None => Ok(()),
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            mailbox_concurrency: 4,
            mailbox_budget: Some(Budget {
                requests: 10_000,
                window_ms: 600_000,
            }),
            user_budget: None,
            throttle_burst: 0,
            retry_after_secs: 1,
            token_lifetime_secs: 3599,
            denied_mailboxes: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub requests: u32,
    pub window_ms: u64,
}

/// Throttling state of one mailbox (Graph) or user (Google).
#[derive(Debug, Default)]
pub struct ThrottleState {
    pub in_flight: u32,
    pub recent: VecDeque<Instant>,
    /// A Retry-After was given: requests before this instant are throttled.
    pub blocked_until: Option<Instant>,
    /// When the first Retry-After of the current block was given.
    pub blocked_since: Option<Instant>,
}

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// `"GET graph /users/{id}/mailFolders/{id}/messages/delta"` → status → count.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Responses that were 429, or 403 rate-limit errors.
    pub throttled: u64,
    /// Requests that arrived before a Retry-After they had been given elapsed.
    pub violations: u64,
    /// Highest number of requests in flight at once, per mailbox / user.
    pub max_concurrency: BTreeMap<String, u32>,
}
