//! What a connection keeps sealed at rest in `connections.credentials_sealed`
//! (bound to the connection id): for Microsoft, an app registration of the
//! customer's own, if any; for Google, the admin to impersonate and a
//! service-account key of the customer's own, if any. Written by the API at
//! onboarding, read by the connectors. Never logged, never returned.

use arkiv_crypto::ServiceKey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Default, Serialize, Deserialize)]
pub struct ConnectionSecrets {
    #[serde(default)]
    pub m365_client_id: Option<String>,
    #[serde(default)]
    pub m365_client_secret: Option<String>,
    #[serde(default)]
    pub google_admin: Option<String>,
    #[serde(default)]
    pub google_key: Option<String>,
}

impl std::fmt::Debug for ConnectionSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionSecrets")
            .field("m365_client_id", &self.m365_client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the connection's sealed credentials cannot be read: {0}")]
pub struct SecretsError(String);

impl ConnectionSecrets {
    pub fn seal(&self, key: &ServiceKey, connection: Uuid) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("credentials serialise");
        key.seal(&json, connection.as_bytes())
    }

    /// The secrets of a connection a connector is to use, with the
    /// provider's id of it (`external_id`): refused, with what to do, if
    /// the connection is not active or has no such id (`without_id` says
    /// what is missing).
    pub fn of_active(
        key: &ServiceKey,
        connection: Uuid,
        status: &str,
        external_id: Option<&str>,
        sealed: Option<&[u8]>,
        without_id: &str,
    ) -> Result<(String, Self), String> {
        if status != "active" {
            return Err(format!(
                "the connection is {status}, not active: reconnect it"
            ));
        }
        let external_id = external_id.ok_or(without_id)?.to_owned();
        let secrets = Self::open(key, connection, sealed).map_err(|e| e.to_string())?;
        Ok((external_id, secrets))
    }

    /// Open what [`ConnectionSecrets::seal`] made; `None` is no secrets.
    pub fn open(
        key: &ServiceKey,
        connection: Uuid,
        sealed: Option<&[u8]>,
    ) -> Result<Self, SecretsError> {
        match sealed {
            None => Ok(Self::default()),
            Some(sealed) => {
                let plain = key
                    .open(sealed, connection.as_bytes())
                    .map_err(|e| SecretsError(e.to_string()))?;
                serde_json::from_slice(&plain).map_err(|e| SecretsError(e.to_string()))
            }
        }
    }
}
