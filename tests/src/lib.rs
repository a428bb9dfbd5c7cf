//! The test kit: every integration test gets its own world on the real
//! servers that `make setup` starts.
//!
//! - [`base_config`] reads `.run/arkiv.toml` (written by `make setup`); if it
//!   is missing the test fails with one line saying to run `make setup`.
//! - [`TestDb::create`] makes a fresh, migrated database with a unique name
//!   (and drops those left behind by runs more than two hours old).
//! - [`unique`] gives a unique name for queue prefixes and S3 key prefixes,
//!   so tests run in parallel and a rerun never sees old state.
//! - [`TestConfig`] is a configuration document with per-test overrides,
//!   loadable in-process or written to a file for a spawned service.
//! - [`bin_path`] finds a workspace binary built by `cargo build`.
//! - [`canary`] searches the places plaintext must never reach.
//! - [`seed`] writes the partner, tenant and key rows the pipeline needs.

pub mod canary;
pub mod seed;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use arkiv_config::Settings;
use arkiv_db::sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use rand::Rng;
use secrecy::ExposeSecret;

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// The configuration `make setup` wrote for the local servers.
pub fn base_config_path() -> PathBuf {
    std::env::var_os("ARKIV_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".run/arkiv.toml"))
}

/// The configuration document for the local servers.
pub fn base_config() -> toml::Table {
    let path = base_config_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. Run `make setup` first: it starts PostgreSQL, RabbitMQ and Garage and writes this file.",
            path.display()
        )
    });
    text.parse().expect("the setup configuration is valid TOML")
}

/// A unique, lowercase name for this test: `{label}-{seconds}-{random}`.
pub fn unique(label: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let random: u32 = rand::thread_rng().gen();
    format!("{label}-{secs}-{random:08x}")
}

/// A configuration document to adjust per test.
#[derive(Clone, Debug)]
pub struct TestConfig {
    pub doc: toml::Table,
}

impl TestConfig {
    /// The local servers' configuration with an isolated queue prefix and S3
    /// key prefix, and every listener on a free port.
    pub fn isolated(label: &str) -> Self {
        let mut config = Self { doc: base_config() };
        let name = unique(label);
        config.set("rabbitmq.queue_prefix", format!("test.{name}"));
        config.set("s3.key_prefix", format!("test/{name}/"));
        // Tests run two at a time, each with up to four pools (API,
        // worker, connector, the test's own): 8 each stays under
        // PostgreSQL's 100 connections.
        config.set("database.max_connections", 8);
        for section in ["api", "worker", "scheduler", "m365", "google"] {
            config.set(&format!("{section}.listen"), "127.0.0.1:0");
        }
        config
    }

    /// Set a dotted setting, creating sections as needed.
    pub fn set(&mut self, setting: &str, value: impl Into<toml::Value>) -> &mut Self {
        let mut table = &mut self.doc;
        let mut parts: Vec<&str> = setting.split('.').collect();
        let last = parts.pop().expect("a setting has a name");
        for part in parts {
            table = table
                .entry(part)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a section is a table");
        }
        table.insert(last.to_owned(), value.into());
        self
    }

    /// Remove a setting or a whole section.
    pub fn remove(&mut self, setting: &str) -> &mut Self {
        let mut table = &mut self.doc;
        let mut parts: Vec<&str> = setting.split('.').collect();
        let last = parts.pop().expect("a setting has a name");
        for part in parts {
            match table.get_mut(part).and_then(|v| v.as_table_mut()) {
                Some(t) => table = t,
                None => return self,
            }
        }
        table.remove(last);
        self
    }

    pub fn get_str(&self, setting: &str) -> Option<String> {
        let mut value = None;
        let mut table = Some(&self.doc);
        for part in setting.split('.') {
            value = table.and_then(|t| t.get(part));
            table = value.and_then(|v| v.as_table());
        }
        value.and_then(|v| v.as_str()).map(str::to_owned)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(&self.doc).expect("a TOML table serialises")
    }

    /// Parse into settings, as a service in this process would.
    pub fn settings(&self) -> Settings {
        Settings::from_toml_str(&self.to_toml()).expect("test configuration is valid")
    }

    /// Write to a file for a spawned process; the file lives as long as the
    /// returned guard.
    pub fn write(&self) -> ConfigFile {
        let dir = std::env::temp_dir().join("arkiv-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{}.toml", unique("config")));
        std::fs::write(&path, self.to_toml()).expect("write test config");
        ConfigFile { path }
    }
}

/// A configuration file deleted on drop.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
}

impl ConfigFile {
    /// A temporary file holding `contents`.
    pub fn with_contents(label: &str, contents: &str) -> Self {
        let dir = std::env::temp_dir().join("arkiv-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(unique(label));
        std::fs::write(&path, contents).expect("write temp file");
        ConfigFile { path }
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A fresh database for one test.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub conn: DatabaseConnection,
}

const TEST_DB_PREFIX: &str = "arkiv_t_";

impl TestDb {
    /// A new database, migrated to the latest schema.
    pub async fn create() -> Self {
        let db = Self::create_empty().await;
        arkiv_db::migrate::up(&db.conn)
            .await
            .expect("migrations apply to a fresh database");
        db
    }

    /// A new database with no schema at all.
    pub async fn create_empty() -> Self {
        let admin_url = admin_url();
        let admin = Database::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at {admin_url}: {e}. Run `make setup`.")
        });
        drop_stale_databases(&admin).await;
        let name = unique("db").replace('-', "_");
        let name = format!("{TEST_DB_PREFIX}{}", name.trim_start_matches("db_"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        let conn = Database::connect(&url)
            .await
            .expect("connect to test database");
        Self { name, url, conn }
    }

    /// Drop the database now (otherwise a later run drops it when stale).
    pub async fn drop_database(self) {
        let _ = self.conn.close().await;
        if let Ok(admin) = Database::connect(&admin_url()).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .await;
        }
    }
}

fn setup_database_url() -> String {
    let config = TestConfig { doc: base_config() };
    config
        .settings()
        .database()
        .expect("setup configuration has [database]")
        .url
        .expose_secret()
        .to_owned()
}

fn admin_url() -> String {
    with_database(&setup_database_url(), "postgres")
}

fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url
        .rsplit_once('/')
        .expect("a database URL names a database");
    format!("{base}/{database}")
}

/// Test databases are named `arkiv_t_{unix seconds}_{random}`; drop those
/// older than two hours, left behind by earlier runs.
async fn drop_stale_databases(admin: &DatabaseConnection) {
    let rows = admin
        .query_all(Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{TEST_DB_PREFIX}%'"),
        ))
        .await
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let created = name
            .trim_start_matches(TEST_DB_PREFIX)
            .split('_')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| now.saturating_sub(t) > 2 * 3600) {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
    }
}

/// The path of a workspace binary, built next to this test executable.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/{profile}/deps/it-xxxx or target/{profile}/arkiv-bench
    //   → target/{profile}/{name}
    let mut dir = exe.parent().expect("an executable lives in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("deps lives in target/{profile}");
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --workspace` (make test does)",
        path.display()
    );
    path
}

/// An app-only Graph token from the simulator for its Microsoft tenant
/// `tenant` (a `manifest.m365[]` entry), as a test client of Graph.
pub async fn graph_app_token(sim: &str, tenant: &serde_json::Value) -> String {
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{sim}/{}/oauth2/v2.0/token",
            tenant["tenant_id"].as_str().expect("a tenant id")
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            (
                "client_id",
                tenant["client_id"].as_str().expect("a client id"),
            ),
            (
                "client_secret",
                tenant["client_secret"].as_str().expect("a client secret"),
            ),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .expect("the simulator answers")
        .json()
        .await
        .expect("a token response");
    response["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}
