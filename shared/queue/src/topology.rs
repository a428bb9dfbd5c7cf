//! The work queues, declared idempotently by every process that uses them.
//!
//! Per region, all durable quorum queues on the default exchange:
//! - `work.{region}`: what connectors publish and workers consume;
//! - `retry.{region}`: a failed delivery waits here for the retry delay
//!   (message TTL), then is dead-lettered back to `work.{region}`;
//! - `parking.{region}`: after the configured number of attempts, with the
//!   reason in the `x-arkiv-reason` header, for an operator to look at.

use std::time::Duration;

use arkiv_domain::Region;
use lapin::types::{AMQPValue, FieldTable, ShortString};

use crate::{quorum_args, Broker, QueueError};

/// Header counting a message's failed attempts.
pub const ATTEMPTS_HEADER: &str = "x-arkiv-attempts";
/// Header with the last failure's reason (retry and parking lot).
pub const REASON_HEADER: &str = "x-arkiv-reason";

/// The full names of one region's queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionQueues {
    pub region: Region,
    pub work: String,
    pub retry: String,
    pub parking: String,
}

impl RegionQueues {
    pub fn new(broker: &Broker, region: &Region) -> Self {
        Self {
            region: region.clone(),
            work: broker.name(&format!("work.{region}")),
            retry: broker.name(&format!("retry.{region}")),
            parking: broker.name(&format!("parking.{region}")),
        }
    }
}

/// Declare the queues of `region` (idempotent: the same arguments each
/// time; RabbitMQ refuses a redeclaration with different ones).
pub async fn declare(
    broker: &Broker,
    region: &Region,
    retry_delay: Duration,
) -> Result<RegionQueues, QueueError> {
    let names = RegionQueues::new(broker, region);
    broker.declare_durable(&names.work, quorum_args()).await?;
    broker
        .declare_durable(&names.parking, quorum_args())
        .await?;
    let mut retry = quorum_args();
    let ttl = i64::try_from(retry_delay.as_millis()).unwrap_or(i64::MAX);
    retry.insert(
        ShortString::from("x-message-ttl"),
        AMQPValue::LongLongInt(ttl),
    );
    retry.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString("".into()),
    );
    retry.insert(
        ShortString::from("x-dead-letter-routing-key"),
        AMQPValue::LongString(names.work.as_str().into()),
    );
    broker.declare_durable(&names.retry, retry).await?;
    Ok(names)
}

/// Failed attempts recorded on a delivery (0 for a first delivery).
pub fn attempts(properties: &lapin::BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPTS_HEADER))
        .and_then(|v| match v {
            AMQPValue::LongUInt(n) => Some(*n),
            AMQPValue::LongInt(n) => u32::try_from(*n).ok(),
            AMQPValue::LongLongInt(n) => u32::try_from(*n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Properties for a message that failed `attempts` times, last for `reason`.
pub fn failed_properties(attempts: u32, reason: &str) -> lapin::BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(ATTEMPTS_HEADER),
        AMQPValue::LongUInt(attempts),
    );
    headers.insert(
        ShortString::from(REASON_HEADER),
        AMQPValue::LongString(reason.into()),
    );
    lapin::BasicProperties::default().with_headers(headers)
}

/// The reason recorded on a retried or parked message.
pub fn reason(properties: &lapin::BasicProperties) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(REASON_HEADER)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        _ => None,
    }
}
