//! One configuration model for every Arkiv service.
//!
//! Settings come from a TOML file (`--config PATH` or `ARKIV_CONFIG`) and are
//! overridden by environment variables named `ARKIV_<SECTION>_<KEY>`, where
//! nested keys are joined by a double underscore: `s3.endpoint` is
//! `ARKIV_S3_ENDPOINT`, `s3.buckets.eu` is `ARKIV_S3_BUCKETS__EU`.
//!
//! Every service reads the same [`Settings`]; sections a service does not use
//! may be absent, and the accessors ([`Settings::database`], ...) fail with a
//! [`ConfigError`] that names the missing setting and its variable. Unknown
//! settings are refused, so a typo fails at start instead of being ignored.
//!
//! This crate reads files and the environment and nothing else; it does not
//! connect anywhere.
//!
//! ```
//! use arkiv_config::Settings;
//! let settings = Settings::from_toml_str(r#"
//!     [database]
//!     url = "postgres://127.0.0.1/arkiv"
//! "#).unwrap();
//! assert_eq!(settings.database().unwrap().max_connections, 10);
//! let err = settings.rabbitmq().unwrap_err();
//! assert!(err.to_string().contains("rabbitmq.url"));
//! ```

mod error;
mod settings;

pub use error::ConfigError;
pub use settings::*;

use std::path::Path;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

/// The sections that environment variables may address. An `ARKIV_*`
/// variable whose first word is not one of these (`ARKIV_API`, `ARKIV_TOKEN`,
/// `ARKIV_CONFIG`, used by the CLI and scripts) is not a setting.
pub const SECTIONS: &[&str] = &[
    "log",
    "database",
    "rabbitmq",
    "s3",
    "keys",
    "api",
    "worker",
    "scheduler",
    "lifecycle",
    "m365",
    "google",
];

/// The environment variable that names the configuration file.
pub const CONFIG_FILE_VAR: &str = "ARKIV_CONFIG";

impl Settings {
    /// Load settings from `file` (or the file named by `ARKIV_CONFIG`, if any)
    /// and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let from_env = std::env::var_os(CONFIG_FILE_VAR).map(std::path::PathBuf::from);
        let file = file.map(Path::to_path_buf).or(from_env);
        let toml = match &file {
            Some(path) => Some(
                std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
            ),
            None => None,
        };
        Self::from_sources(toml.as_deref(), std::env::vars())
    }

    /// Settings from TOML text (if any) overridden by `ARKIV_*` variables
    /// from `vars`: what [`Settings::load`] does with a file and the process
    /// environment, for callers that have them elsewhere (a deployment
    /// manifest, say).
    pub fn from_sources(
        toml: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(toml) = toml {
            figment = figment.merge(Toml::string(toml));
        }
        Self::extract(figment.merge(EnvVars::from_vars(vars)))
    }

    /// Parse settings from TOML text alone (no environment). For tests and docs.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::from_sources(Some(toml), [])
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        figment.extract().map_err(ConfigError::from_figment)
    }
}

/// `ARKIV_*` variables as settings: `ARKIV_S3_BUCKETS__EU` is
/// `s3.buckets.eu`. Values stay the exact strings given (figment's own `Env`
/// would read `ARKIV_S3_SECRET_KEY=12e45` as a float); the few settings that
/// are not strings parse strings themselves (see `settings::lenient`).
struct EnvVars(Vec<(String, String)>);

impl EnvVars {
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let settings = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix("ARKIV_")?.to_ascii_lowercase();
                let (section, rest) = split_env_key(&key)?;
                Some((format!("{section}.{}", rest.replace("__", ".")), value))
            })
            .collect();
        Self(settings)
    }
}

impl Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, value) in &self.0 {
            let mut parts: Vec<&str> = key.split('.').collect();
            let leaf = parts.pop().expect("keys are non-empty");
            let mut dict = &mut root;
            for part in parts {
                let entry = dict
                    .entry(part.to_owned())
                    .or_insert_with(|| Value::from(Dict::new()));
                if entry.as_dict().is_none() {
                    *entry = Value::from(Dict::new());
                }
                dict = match entry {
                    Value::Dict(_, d) => d,
                    _ => unreachable!("made a dict above"),
                };
            }
            dict.insert(leaf.to_owned(), Value::from(value.clone()));
        }
        Ok(Profile::Default.collect(root))
    }
}

fn split_env_key(key: &str) -> Option<(&str, &str)> {
    let (section, rest) = key.split_once('_')?;
    (SECTIONS.contains(&section) && !rest.is_empty()).then_some((section, rest))
}

/// The environment variable that overrides a dotted setting name.
pub fn env_var_for(setting: &str) -> String {
    let mut parts = setting.splitn(2, '.');
    let section = parts.next().unwrap_or_default();
    match parts.next() {
        Some(rest) => format!(
            "ARKIV_{}_{}",
            section.to_uppercase(),
            rest.replace('.', "__").to_uppercase()
        ),
        None => format!("ARKIV_{}", section.to_uppercase()),
    }
}

#[cfg(test)]
mod tests;
