//! Typed ids. Each is a UUID underneath, but a `TenantId` can never be passed
//! where a `ConnectionId` is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7), so that rows inserted together
            /// sit together in B-tree indexes.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// A partner (MSP or reseller) that onboards customer tenants.
    PartnerId
);
id_type!(
    /// A customer organisation whose Microsoft 365 tenant or Google domain is backed up.
    TenantId
);
id_type!(
    /// A console or API user.
    PrincipalId
);
id_type!(
    /// An authorised link between a tenant and one Microsoft 365 tenant or Google domain.
    ConnectionId
);
id_type!(
    /// A mailbox, drive or calendar owner in the source.
    AccountId
);
id_type!(
    /// A backup run of one connection.
    RunId
);
id_type!(
    /// A backed-up item (message, file, event), across all its versions.
    ItemId
);
id_type!(
    /// A pack object holding many sealed chunks.
    PackId
);
id_type!(
    /// A restore job.
    RestoreJobId
);
id_type!(
    /// An export job.
    ExportJobId
);
id_type!(
    /// A GDPR erasure request.
    ErasureRequestId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_json() {
        let id = TenantId::new();
        let parsed: TenantId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), id);
    }

    #[test]
    fn new_ids_are_time_ordered() {
        let a = RunId::new();
        let b = RunId::new();
        assert!(a < b, "UUIDv7 ids created later must sort later");
    }

    #[test]
    fn malformed_id_is_rejected() {
        assert!("not-a-uuid".parse::<AccountId>().is_err());
    }
}
