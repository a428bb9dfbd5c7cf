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

/// What a connector does with the jobs it takes.
pub trait Connector: Send + Sync + 'static {
    /// Carry out a backup run to its end, or until `stop`.
    fn run(
        &self,
        request: crate::request::RunRequest,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> impl Future<Output = Result<(), crate::run::RunError>> + Send;

    /// Carry out a restore job; `Err` only when our side fails.
    fn restore(
        &self,
        job: uuid::Uuid,
    ) -> impl Future<Output = Result<(), crate::restore::RestoreError>> + Send;
}

/// Take run requests from `queue` and carry each out in its own task, at
/// most `prefetch` at once.
pub async fn serve_runs<C: Connector>(
    connector: std::sync::Arc<C>,
    broker: &Broker,
    queue: &str,
    prefetch: u16,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), QueueError> {
    serve(broker, queue, prefetch, move |data| {
        let (connector, stop) = (connector.clone(), stop.clone());
        async move {
            let request = match crate::request::RunRequest::parse(&data) {
                Ok(r) => r,
                Err(reason) => {
                    tracing::error!(%reason, "dropping a malformed run request");
                    return Settle::Ack;
                }
            };
            let run_id = request.run_id;
            match connector.run(request, stop).await {
                Ok(()) => Settle::Ack,
                Err(crate::run::RunError::Stopped) => Settle::Requeue,
                Err(e) => {
                    tracing::error!(run = %run_id, error = %e, "run could not be carried out; retrying later");
                    Settle::RetryLater
                }
            }
        }
    })
    .await
}

/// Take restore jobs from `queue` and carry each out in its own task, a
/// few at once; a job in hand when `stop` comes is left for the next
/// instance.
pub async fn serve_restores<C: Connector>(
    connector: std::sync::Arc<C>,
    broker: &Broker,
    queue: &str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), QueueError> {
    serve(broker, queue, 4, move |data| {
        let (connector, mut stop) = (connector.clone(), stop.clone());
        async move {
            let message = match crate::restore::RestoreMessage::parse(&data) {
                Ok(m) => m,
                Err(reason) => {
                    tracing::error!(%reason, "dropping a malformed restore message");
                    return Settle::Ack;
                }
            };
            tokio::select! {
                r = connector.restore(message.job_id) => match r {
                    Ok(()) => Settle::Ack,
                    Err(e) => {
                        tracing::error!(job = %message.job_id, error = %e, "restore job could not be carried out; retrying later");
                        Settle::RetryLater
                    }
                },
                _ = stop.wait_for(|s| *s) => Settle::Requeue,
            }
        }
    })
    .await
}

/// Serve a connector's run requests and restore jobs until `shutdown`
/// (jobs in hand are then left for the next instance) or until the broker
/// fails (the error).
pub async fn serve_connector<C: Connector>(
    connector: std::sync::Arc<C>,
    broker: &Broker,
    runs: &str,
    restores: &str,
    max_concurrent_runs: u16,
    shutdown: impl Future<Output = ()>,
) -> Result<(), QueueError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = serve_runs(
        connector.clone(),
        broker,
        runs,
        max_concurrent_runs.max(1),
        stop_rx.clone(),
    );
    let restoring = serve_restores(connector, broker, restores, stop_rx);
    let result = tokio::select! {
        _ = shutdown => Ok(()),
        r = running => r,
        r = restoring => r,
    };
    let _ = stop_tx.send(true);
    result
}
