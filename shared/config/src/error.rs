use figment::error::Kind;

use crate::env_var_for;

/// A configuration problem, always naming the setting (or file) at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: String, reason: String },

    #[error("setting `{setting}` is missing: set it in the configuration file or with {env}")]
    Missing { setting: String, env: String },

    #[error("setting `{setting}` is invalid: {reason} (configuration file or {env})")]
    Invalid {
        setting: String,
        env: String,
        reason: String,
    },

    #[error("unknown setting `{setting}` (from the configuration file or {env}); {hint}")]
    Unknown {
        setting: String,
        env: String,
        hint: String,
    },
}

impl ConfigError {
    pub fn missing(setting: &str) -> Self {
        Self::Missing {
            setting: setting.to_owned(),
            env: env_var_for(setting),
        }
    }

    pub fn invalid(setting: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.to_owned(),
            env: env_var_for(setting),
            reason: reason.into(),
        }
    }

    /// The name of the setting at fault, if the error is about one.
    pub fn setting(&self) -> Option<&str> {
        match self {
            Self::File { .. } => None,
            Self::Missing { setting, .. }
            | Self::Invalid { setting, .. }
            | Self::Unknown { setting, .. } => Some(setting),
        }
    }

    pub(crate) fn from_figment(errors: figment::Error) -> Self {
        // figment may collect several errors; the first is enough to act on.
        let error = errors
            .into_iter()
            .next()
            .expect("figment errors are non-empty");
        let path = error.path.join(".");
        let join = |field: &str| {
            if path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            }
        };
        match &error.kind {
            Kind::MissingField(field) => Self::missing(&join(field)),
            // figment's path already ends with the unknown field's name.
            Kind::UnknownField(_, expected) => Self::Unknown {
                setting: path.clone(),
                env: env_var_for(&path),
                hint: if expected.is_empty() {
                    "this section takes no settings".into()
                } else {
                    format!("expected one of: {}", expected.join(", "))
                },
            },
            Kind::Message(msg) if path.is_empty() => Self::File {
                path: error
                    .metadata
                    .as_ref()
                    .and_then(|m| m.source.as_ref())
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "(configuration)".into()),
                reason: msg.clone(),
            },
            other => Self::invalid(&path, other.to_string()),
        }
    }
}
