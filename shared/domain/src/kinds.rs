//! Closed vocabularies stored as text in PostgreSQL and spoken in JSON.
//!
//! Each enum has one spelling, used everywhere: the database `CHECK`
//! constraints in `migrations/` list exactly these strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The error for a string that is not one of an enum's spellings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {kind} {value:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownVariant {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: &[$($text),+],
                    }),
                }
            }
        }
    };
}

string_enum!(
    /// Where a connection's data comes from.
    Provider, "provider" {
        M365 = "m365",
        Google = "google",
    }
);

string_enum!(
    /// The kind of data an item belongs to, across providers.
    Workload, "workload" {
        /// Exchange Online mail or Gmail.
        Mail = "mail",
        /// Outlook or Google calendars.
        Calendar = "calendar",
        /// OneDrive or Google Drive (shared drives included).
        Drive = "drive",
    }
);

string_enum!(
    /// What a principal may do; scopes are checked in the API.
    Role, "role" {
        /// Runs the service: sees every partner and tenant.
        Operator = "operator",
        /// Manages its partner's customer tenants.
        PartnerAdmin = "partner-admin",
        /// Manages one tenant.
        TenantAdmin = "tenant-admin",
        /// Sees a tenant's backup data only under an active support grant.
        Support = "support",
    }
);

string_enum!(
    /// A tenant's subscription.
    SubscriptionState, "subscription state" {
        Trial = "trial",
        Active = "active",
        /// Ended; purged once its grace period has passed unless reactivated.
        Ended = "ended",
        /// Keys destroyed, data deleted, tombstone kept.
        Purged = "purged",
    }
);

string_enum!(
    /// A connection's lifecycle.
    ConnectionStatus, "connection status" {
        /// Waiting for the tenant admin's consent or delegation.
        Pending = "pending",
        Active = "active",
        /// Access was verified once but now fails; `status_detail` says why.
        Error = "error",
        Revoked = "revoked",
    }
);

string_enum!(
    /// A backup run's lifecycle.
    RunState, "run state" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        PartiallyFailed = "partially_failed",
        Failed = "failed",
    }
);

string_enum!(
    /// Restore, export and erasure jobs share one lifecycle.
    JobState, "job state" {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
);

impl RunState {
    /// Whether the run has ended, one way or another.
    pub const fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::PartiallyFailed | RunState::Failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_round_trips_through_its_spelling() {
        for w in Workload::ALL {
            assert_eq!(w.as_str().parse::<Workload>().unwrap(), *w);
            assert_eq!(serde_json::to_string(w).unwrap(), format!("\"{w}\""));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), *r);
        }
        for s in RunState::ALL {
            assert_eq!(s.as_str().parse::<RunState>().unwrap(), *s);
        }
    }

    #[test]
    fn unknown_spelling_names_the_choices() {
        let err = "contacts".parse::<Workload>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown workload \"contacts\"; expected one of: mail, calendar, drive"
        );
    }

    #[test]
    fn only_finished_runs_are_terminal() {
        assert!(!RunState::Queued.is_terminal());
        assert!(!RunState::Running.is_terminal());
        assert!(RunState::PartiallyFailed.is_terminal());
    }
}
