//! The typed settings. Field doc comments are the operator documentation;
//! README.md's configuration reference mirrors them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use arkiv_domain::Region;
use base64::Engine;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Deserialize;
use url::Url;

use crate::ConfigError;

/// Every setting of every Arkiv service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub log: LogSettings,
    database: Option<DatabaseSettings>,
    rabbitmq: Option<RabbitMqSettings>,
    s3: Option<S3Settings>,
    keys: Option<KeySettings>,
    #[serde(default)]
    pub api: ApiSettings,
    #[serde(default)]
    pub worker: WorkerSettings,
    #[serde(default)]
    pub scheduler: SchedulerSettings,
    #[serde(default)]
    pub lifecycle: LifecycleSettings,
    #[serde(default)]
    pub m365: M365Settings,
    #[serde(default)]
    pub google: GoogleSettings,
}

impl Settings {
    /// `[database]`: required by every service but the simulator.
    pub fn database(&self) -> Result<&DatabaseSettings, ConfigError> {
        self.database
            .as_ref()
            .ok_or_else(|| ConfigError::missing("database.url"))
    }

    /// `[rabbitmq]`: required by the API, connectors, worker and scheduler.
    pub fn rabbitmq(&self) -> Result<&RabbitMqSettings, ConfigError> {
        self.rabbitmq
            .as_ref()
            .ok_or_else(|| ConfigError::missing("rabbitmq.url"))
    }

    /// `[s3]`: required by the worker, the scheduler and the API (export).
    pub fn s3(&self) -> Result<&S3Settings, ConfigError> {
        let s3 = self
            .s3
            .as_ref()
            .ok_or_else(|| ConfigError::missing("s3.endpoint"))?;
        if s3.buckets.is_empty() {
            return Err(ConfigError::invalid(
                "s3.buckets",
                "no region is configured; add one bucket per region, e.g. eu = \"arkiv-eu\"",
            ));
        }
        Ok(s3)
    }

    /// `[keys]`: required wherever customer data or credentials are sealed.
    pub fn keys(&self) -> Result<&KeySettings, ConfigError> {
        self.keys
            .as_ref()
            .ok_or_else(|| ConfigError::missing("keys.master_key"))
    }

    /// The regions this deployment serves: the keys of `s3.buckets`.
    pub fn regions(&self) -> Result<Vec<Region>, ConfigError> {
        Ok(self.s3()?.buckets.keys().cloned().collect())
    }
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `human` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter such as `info,sqlx=warn` (the default) or
    /// `info,arkiv_worker=debug`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_filter")]
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            filter: default_log_filter(),
        }
    }
}

fn default_log_filter() -> String {
    // sqlx reports every NOTICE (such as "relation already exists") as info.
    "info,sqlx=warn".into()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `[database]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// PostgreSQL URL, e.g. `postgres://postgres@127.0.0.1:5432/arkiv`.
    pub url: SecretString,
    /// Connection pool size per process.
    #[serde(
        default = "default_max_connections",
        deserialize_with = "lenient::number"
    )]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    10
}

/// `[rabbitmq]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RabbitMqSettings {
    /// AMQP URL including the vhost, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: SecretString,
    /// Prefix of every exchange and queue Arkiv declares, so several
    /// deployments (or test runs) can share one broker.
    #[serde(default = "default_queue_prefix")]
    pub queue_prefix: String,
}

fn default_queue_prefix() -> String {
    "arkiv".into()
}

/// `[s3]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// S3 endpoint, e.g. `http://127.0.0.1:3900` for the local Garage.
    pub endpoint: Url,
    /// The S3 signing region (Garage's `s3_region`; AWS's region name).
    #[serde(default = "default_s3_region")]
    pub region: String,
    pub access_key: SecretString,
    pub secret_key: SecretString,
    /// Path-style addressing (`endpoint/bucket/key`), needed by Garage and MinIO.
    #[serde(default = "default_true", deserialize_with = "lenient::boolean")]
    pub path_style: bool,
    /// A prefix put before every object key (tests use a fresh one each).
    #[serde(default)]
    pub key_prefix: String,
    /// One bucket per data-residency region: `eu = "arkiv-eu"`.
    #[serde(default)]
    pub buckets: BTreeMap<Region, String>,
}

fn default_s3_region() -> String {
    "garage".into()
}

fn default_true() -> bool {
    true
}

/// `[keys]`: the master key-encryption key (KEK) and the transport key.
/// Each is given inline (base64 of 32 bytes) or as a file holding that text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    #[serde(default)]
    pub master_key: Option<SecretString>,
    #[serde(default)]
    pub master_key_file: Option<PathBuf>,
    #[serde(default)]
    pub transport_key: Option<SecretString>,
    #[serde(default)]
    pub transport_key_file: Option<PathBuf>,
}

/// 32 bytes of key material, wiped from memory on drop.
pub type KeyBytes = SecretBox<[u8; 32]>;

impl KeySettings {
    /// The master key-encryption key, which wraps every tenant's keys.
    pub fn master_key(&self) -> Result<KeyBytes, ConfigError> {
        load_key(
            "keys.master_key",
            self.master_key.as_ref(),
            self.master_key_file.as_ref(),
        )
    }

    /// The key that seals work items on their way through RabbitMQ.
    pub fn transport_key(&self) -> Result<KeyBytes, ConfigError> {
        load_key(
            "keys.transport_key",
            self.transport_key.as_ref(),
            self.transport_key_file.as_ref(),
        )
    }
}

fn load_key(
    setting: &str,
    inline: Option<&SecretString>,
    file: Option<&PathBuf>,
) -> Result<KeyBytes, ConfigError> {
    let file_setting = format!("{setting}_file");
    let text = match (inline, file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                setting,
                format!("give either `{setting}` or `{file_setting}`, not both"),
            ))
        }
        (Some(inline), None) => SecretString::from(inline.expose_secret().trim().to_owned()),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|t| SecretString::from(t.trim().to_owned()))
            .map_err(|e| ConfigError::invalid(&file_setting, format!("{}: {e}", path.display())))?,
        (None, None) => return Err(ConfigError::missing(setting)),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.expose_secret())
        .map_err(|_| ConfigError::invalid(setting, "not base64"))?;
    let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
        ConfigError::invalid(setting, format!("a key is 32 bytes, this is {}", b.len()))
    })?;
    Ok(SecretBox::new(Box::new(key)))
}

/// `[api]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Address the API listens on (loopback unless behind a proxy).
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// The URL people and OAuth redirects reach the API at.
    #[serde(default = "default_api_public_url")]
    pub public_url: Url,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            public_url: default_api_public_url(),
        }
    }
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_api_public_url() -> Url {
    Url::parse("http://127.0.0.1:8080/").expect("valid default URL")
}

/// `[worker]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Address of the worker's `/healthz` and `/metrics`.
    #[serde(default = "default_worker_listen")]
    pub listen: SocketAddr,
    /// Regions whose queues this worker consumes; empty means every
    /// configured region. From the environment: `eu,uk`.
    #[serde(default, deserialize_with = "lenient::list")]
    pub regions: Vec<Region>,
    /// Unacknowledged deliveries a worker holds at once (AMQP prefetch).
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// A pack is written once its sealed chunks reach this many bytes...
    #[serde(default = "default_pack_target_bytes")]
    pub pack_target_bytes: usize,
    /// ...or its oldest delivery has waited this long (milliseconds).
    #[serde(default = "default_pack_max_age_ms")]
    pub pack_max_age_ms: u64,
    /// Failed deliveries wait this long before their next attempt (ms).
    #[serde(default = "default_retry_delay_ms")]
    pub retry_delay_ms: u64,
    /// Attempts before a delivery goes to the parking lot.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            listen: default_worker_listen(),
            regions: Vec::new(),
            prefetch: default_prefetch(),
            pack_target_bytes: default_pack_target_bytes(),
            pack_max_age_ms: default_pack_max_age_ms(),
            retry_delay_ms: default_retry_delay_ms(),
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_prefetch() -> u16 {
    300
}

fn default_pack_target_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_pack_max_age_ms() -> u64 {
    500
}

fn default_retry_delay_ms() -> u64 {
    5_000
}

fn default_max_attempts() -> u32 {
    5
}

fn default_worker_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9101))
}

/// `[scheduler]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Address of the scheduler's `/healthz` and `/metrics`.
    #[serde(default = "default_scheduler_listen")]
    pub listen: SocketAddr,
    /// How often due connections are looked for, seconds.
    #[serde(default = "default_tick_secs")]
    pub tick_secs: u64,
    /// After downtime, overdue connections start at random moments within
    /// this many seconds instead of all at once.
    #[serde(default = "default_catch_up_window_secs")]
    pub catch_up_window_secs: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            listen: default_scheduler_listen(),
            tick_secs: default_tick_secs(),
            catch_up_window_secs: default_catch_up_window_secs(),
        }
    }
}

/// `[lifecycle]`: retention, garbage collection and purges (the scheduler
/// carries them out; the API uses the grace periods when it records an end
/// or an exclusion).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleSettings {
    /// How often the lifecycle pass runs, seconds.
    #[serde(default = "default_lifecycle_tick_secs")]
    pub tick_secs: u64,
    /// One scheduler instance at a time runs the pass: it holds a lease for
    /// this long (seconds), renewed at every step; a crashed holder's lease
    /// is taken over once it has run out.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// An ended tenant is purged this long after its end, hours.
    #[serde(default = "default_grace_hours")]
    pub tenant_purge_grace_hours: u64,
    /// An excluded account's data is purged this long after, hours.
    #[serde(default = "default_grace_hours")]
    pub account_purge_grace_hours: u64,
    /// A tenant with no login and no successful run for this long is
    /// inactive: its admins are notified...
    #[serde(default = "default_inactive_after_days")]
    pub inactive_after_days: u64,
    /// ...and, still inactive this long after, it is ended.
    #[serde(default = "default_inactive_notice_days")]
    pub inactive_notice_days: u64,
    /// A chunk no version references any more is deleted after this long
    /// (seconds), so that a backup deduplicating against it meanwhile
    /// simply claims it back.
    #[serde(default = "default_hour_secs")]
    pub chunk_grace_secs: u64,
    /// Packs whose live bytes fall below this share of their size are
    /// rewritten with only their live chunks.
    #[serde(default = "default_pack_rewrite_below")]
    pub pack_rewrite_below: f64,
    /// A rewritten pack's old object is deleted after this long (seconds):
    /// a restore that looked up the old locations can still finish.
    #[serde(default = "default_hour_secs")]
    pub retired_pack_grace_secs: u64,
    /// A purged tenant's prefix is swept once more after this long
    /// (seconds): longer than workers keep a tenant's keys cached.
    #[serde(default = "default_final_sweep_secs")]
    pub final_sweep_after_secs: u64,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            tick_secs: default_lifecycle_tick_secs(),
            lease_secs: default_lease_secs(),
            tenant_purge_grace_hours: default_grace_hours(),
            account_purge_grace_hours: default_grace_hours(),
            inactive_after_days: default_inactive_after_days(),
            inactive_notice_days: default_inactive_notice_days(),
            chunk_grace_secs: default_hour_secs(),
            pack_rewrite_below: default_pack_rewrite_below(),
            retired_pack_grace_secs: default_hour_secs(),
            final_sweep_after_secs: default_final_sweep_secs(),
        }
    }
}

fn default_lifecycle_tick_secs() -> u64 {
    60
}

fn default_lease_secs() -> u64 {
    300
}

fn default_grace_hours() -> u64 {
    48
}

fn default_inactive_after_days() -> u64 {
    183
}

fn default_inactive_notice_days() -> u64 {
    14
}

fn default_hour_secs() -> u64 {
    3600
}

fn default_pack_rewrite_below() -> f64 {
    0.5
}

fn default_final_sweep_secs() -> u64 {
    900
}

fn default_tick_secs() -> u64 {
    30
}

fn default_catch_up_window_secs() -> u64 {
    600
}

fn default_scheduler_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9102))
}

/// `[m365]`: connector-m365 and the API's Microsoft consent flow.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct M365Settings {
    /// Address of connector-m365's `/healthz` and `/metrics`.
    #[serde(default = "default_m365_listen")]
    pub listen: SocketAddr,
    /// Microsoft identity platform; the simulator's URL in tests and the demo.
    #[serde(default = "default_m365_authority")]
    pub authority_url: Url,
    /// Microsoft Graph base URL including the version segment.
    #[serde(default = "default_graph_url")]
    pub graph_url: Url,
    /// The Arkiv app registration's application (client) id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The app registration's client secret.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// How backup runs are carried out.
    #[serde(default)]
    pub backup: ConnectorSettings,
}

impl Default for M365Settings {
    fn default() -> Self {
        Self {
            listen: default_m365_listen(),
            authority_url: default_m365_authority(),
            graph_url: default_graph_url(),
            client_id: None,
            client_secret: None,
            backup: ConnectorSettings::default(),
        }
    }
}

/// `[m365.backup]` and `[google.backup]`: how a connector carries out
/// backup runs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorSettings {
    /// Runs this instance carries out at once.
    pub max_concurrent_runs: u16,
    /// Accounts of one run backed up at once.
    pub accounts_in_parallel: usize,
    /// Requests in flight per mailbox (Graph allows 4).
    pub mailbox_concurrency: usize,
    /// Requests per second across one connection (a shared budget).
    pub requests_per_second: u32,
    /// Items per delta page asked for (`Prefer: odata.maxpagesize`).
    pub page_size: u32,
    /// Attempts of a request that fails with a 5xx or a timeout.
    pub max_attempts: u32,
    /// Seconds a connection's lease lasts unless renewed; a crashed
    /// instance's runs are taken over after this.
    pub lease_ttl_secs: u64,
    /// Seconds a run waits, after publishing, for the worker to store
    /// everything before it is reported.
    pub settle_timeout_secs: u64,
    /// Calendar window: days back and ahead of today.
    pub calendar_past_days: u32,
    pub calendar_future_days: u32,
}

impl Default for ConnectorSettings {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 2,
            accounts_in_parallel: 8,
            mailbox_concurrency: 4,
            requests_per_second: 200,
            page_size: 100,
            max_attempts: 6,
            lease_ttl_secs: 60,
            settle_timeout_secs: 600,
            calendar_past_days: 730,
            calendar_future_days: 365,
        }
    }
}

fn default_m365_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9103))
}

fn default_m365_authority() -> Url {
    Url::parse("https://login.microsoftonline.com/").expect("valid default URL")
}

fn default_graph_url() -> Url {
    Url::parse("https://graph.microsoft.com/v1.0").expect("valid default URL")
}

/// `[google]`: connector-google and the API's delegation check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    /// Address of connector-google's `/healthz` and `/metrics`.
    #[serde(default = "default_google_listen")]
    pub listen: SocketAddr,
    /// Root of the Google APIs (`/gmail/v1`, `/drive/v3`, `/calendar/v3` and
    /// `/admin/directory/v1` hang below it); the simulator's URL in tests.
    #[serde(default = "default_google_api_root")]
    pub api_root_url: Url,
    /// The service account key (JSON) used for domain-wide delegation.
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
    /// How backup runs are carried out (`mailbox_concurrency` is per user).
    #[serde(default)]
    pub backup: ConnectorSettings,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        Self {
            listen: default_google_listen(),
            api_root_url: default_google_api_root(),
            service_account_file: None,
            backup: ConnectorSettings::default(),
        }
    }
}

fn default_google_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9104))
}

fn default_google_api_root() -> Url {
    Url::parse("https://www.googleapis.com/").expect("valid default URL")
}

/// Deserializers for the few non-string settings, which also accept the
/// string an environment variable gives.
mod lenient {
    use std::str::FromStr;

    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OrString<T> {
        Native(T),
        Text(String),
    }

    fn parse<'de, D, T>(de: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned + FromStr,
        T::Err: std::fmt::Display,
    {
        match OrString::<T>::deserialize(de)? {
            OrString::Native(value) => Ok(value),
            OrString::Text(text) => text.trim().parse().map_err(D::Error::custom),
        }
    }

    pub fn number<'de, D: Deserializer<'de>>(de: D) -> Result<u32, D::Error> {
        parse(de)
    }

    pub fn boolean<'de, D: Deserializer<'de>>(de: D) -> Result<bool, D::Error> {
        parse(de)
    }

    pub fn list<'de, D, T>(de: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned + FromStr,
        T::Err: std::fmt::Display,
    {
        match OrString::<Vec<T>>::deserialize(de)? {
            OrString::Native(values) => Ok(values),
            OrString::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().map_err(D::Error::custom))
                .collect(),
        }
    }
}
