//! Run requests: which run of which connection to carry out. Ids only, so
//! nothing here needs sealing.

use arkiv_domain::Provider;
use arkiv_queue::{Broker, Publisher, QueueError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: Uuid,
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
}

/// The local name of a provider's run-request queue.
pub fn queue(provider: Provider) -> String {
    format!("runs.{}", provider.as_str())
}

/// Declare both providers' run-request queues (idempotent); returns the
/// full name of `provider`'s.
pub async fn declare(broker: &Broker, provider: Provider) -> Result<String, QueueError> {
    let mut mine = String::new();
    for p in [Provider::M365, Provider::Google] {
        let name = broker.declare_quorum_queue(&queue(p)).await?;
        if p == provider {
            mine = name;
        }
    }
    Ok(mine)
}

/// Publish a run request, confirmed.
pub async fn publish(
    broker: &Broker,
    publisher: &Publisher,
    provider: Provider,
    request: &RunRequest,
) -> Result<(), QueueError> {
    crate::jobs::publish_json(broker, publisher, &queue(provider), request).await
}

impl RunRequest {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a run request: {e}"))
    }
}
