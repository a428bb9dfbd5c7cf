//! Job queues: run requests and restore jobs travel as small JSON messages
//! (ids only) on quorum queues, and a connector takes each in a task of
//! its own. A message stays unacknowledged until its job has ended, so a
//! job an instance drops (a crash, a stop) goes to the next instance.

use std::future::Future;

use arkiv_queue::lapin::options::{BasicAckOptions, BasicNackOptions};
use arkiv_queue::lapin::BasicProperties;
use arkiv_queue::{Broker, Publisher, QueueError};
use serde::Serialize;

/// Publish a job message as JSON on a local queue name, confirmed.
pub async fn publish_json(
    broker: &Broker,
    publisher: &Publisher,
    queue: &str,
    message: &impl Serialize,
) -> Result<(), QueueError> {
    let body = serde_json::to_vec(message).expect("a job message serialises");
    publisher
        .publish(
            "",
            &broker.name(queue),
            &body,
            BasicProperties::default().with_content_type("application/json".into()),
        )
        .await
}

/// What to do with a job's message once its task ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done (or not a job at all): take it off the queue.
    Ack,
    /// Not done: give it back for this instance or another, at once.
    Requeue,
    /// Our side failed (the database): give it back after a pause, so a
    /// broken dependency is not hammered.
    RetryLater,
}

/// How long a job waits before it is given back after `RetryLater`.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Take messages from `queue` (its full name), at most `prefetch` at once,
/// each handled by `handle` in its own task and settled as it says. Ends
/// only with the broker.
pub async fn serve<F, Fut>(
    broker: &Broker,
    queue: &str,
    prefetch: u16,
    handle: F,
) -> Result<(), QueueError>
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: Future<Output = Settle> + Send + 'static,
{
    let mut consumer = broker.consume(queue, prefetch.max(1)).await?;
    tracing::info!(%queue, "waiting for jobs");
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let delivery = tokio::select! {
            d = consumer.next() => d?,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(%queue, error = %e, "a job task panicked");
                }
                continue;
            }
        };
        let task = handle(delivery.data.clone());
        tasks.spawn(async move {
            let settle = task.await;
            if settle == Settle::RetryLater {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            let _ = match settle {
                Settle::Ack => delivery.acker.ack(BasicAckOptions::default()).await,
                Settle::Requeue | Settle::RetryLater => {
                    delivery
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await
                }
            };
        });
    }
}
