//! Arkiv's RabbitMQ layer.
//!
//! [`Broker`] owns one AMQP connection and names everything Arkiv declares
//! with the configured `rabbitmq.queue_prefix`, so deployments and test runs
//! can share a broker. [`Publisher`] publishes on a channel in confirm mode:
//! [`Publisher::publish`] returns only once RabbitMQ has confirmed the
//! message, which is what lets a connector store its cursor afterwards.
//! Queues are durable quorum queues; consumers use manual acks.
//!
//! This crate moves opaque bytes. Work items are sealed before they get
//! here, so RabbitMQ's disk never holds plaintext customer data.

use arkiv_config::RabbitMqSettings;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use secrecy::ExposeSecret;

pub use lapin;

pub mod topology;
pub mod work;

pub use topology::RegionQueues;
pub use work::{Content, ItemKey, Metadata, Origin, WorkError, WorkItem};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Transient: the broker is unreachable or the connection dropped.
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    /// The broker refused a message (negative acknowledgement); retry later.
    #[error("RabbitMQ did not accept the message on {target} (nack)")]
    Nacked { target: String },
    /// The consumer was cancelled or its channel closed.
    #[error("the consumer of {queue} stopped")]
    ConsumerClosed { queue: String },
    /// The broker accepted the TCP connection but did not complete the
    /// AMQP handshake in time: it is overloaded or wedged.
    #[error("RabbitMQ did not complete the connection handshake within {0:?}")]
    HandshakeTimeout(std::time::Duration),
}

/// How long [`Broker::connect`] waits for the AMQP handshake. A broker that
/// accepts TCP but never answers would otherwise hang its client forever.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One connection to RabbitMQ.
#[derive(Debug)]
pub struct Broker {
    connection: Connection,
    prefix: String,
}

impl Broker {
    pub async fn connect(settings: &RabbitMqSettings) -> Result<Self, QueueError> {
        let connection = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            Connection::connect(
                settings.url.expose_secret(),
                ConnectionProperties::default().with_connection_name("arkiv".into()),
            ),
        )
        .await
        .map_err(|_| QueueError::HandshakeTimeout(HANDSHAKE_TIMEOUT))??;
        Ok(Self {
            connection,
            prefix: settings.queue_prefix.clone(),
        })
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// The broker-wide name of an Arkiv queue or exchange: `{prefix}.{local}`.
    pub fn name(&self, local: &str) -> String {
        format!("{}.{local}", self.prefix)
    }

    pub async fn channel(&self) -> Result<Channel, QueueError> {
        Ok(self.connection.create_channel().await?)
    }

    /// A publisher whose every publish is confirmed by the broker.
    pub async fn publisher(&self) -> Result<Publisher, QueueError> {
        let channel = self.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Publisher { channel })
    }

    /// Declare a durable quorum queue (idempotent). `local` is prefixed.
    pub async fn declare_quorum_queue(&self, local: &str) -> Result<String, QueueError> {
        let name = self.name(local);
        self.declare_durable(&name, quorum_args()).await?;
        Ok(name)
    }

    /// Declare a durable queue by its full name with `args` (idempotent as
    /// long as the arguments stay the same).
    pub(crate) async fn declare_durable(
        &self,
        name: &str,
        args: FieldTable,
    ) -> Result<(), QueueError> {
        let channel = self.channel().await?;
        channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }

    /// Messages ready in a queue (full name), by a passive declare.
    pub async fn queue_depth(&self, name: &str) -> Result<u32, QueueError> {
        let channel = self.channel().await?;
        let queue = channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let _ = channel.close(200, "counted".into()).await;
        Ok(queue.message_count())
    }

    /// Delete a queue by its full name (tests clean up after themselves).
    pub async fn delete_queue(&self, name: &str) -> Result<(), QueueError> {
        self.channel()
            .await?
            .queue_delete(name.into(), QueueDeleteOptions::default())
            .await?;
        Ok(())
    }

    /// Consume `queue` (full name) with manual acks and at most `prefetch`
    /// unacknowledged deliveries.
    pub async fn consume(&self, queue: &str, prefetch: u16) -> Result<Consumer, QueueError> {
        let channel = self.channel().await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let inner = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Consumer {
            inner,
            queue: queue.to_owned(),
        })
    }

    pub async fn close(self) -> Result<(), QueueError> {
        self.connection.close(200, "bye".into()).await?;
        Ok(())
    }
}

/// Publishes on a confirm-mode channel.
#[derive(Debug)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    /// Publish a persistent message and wait for the broker's confirm.
    /// Returns [`QueueError::Nacked`] if the broker refuses it.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), QueueError> {
        self.send(exchange, routing_key, payload, properties)
            .await?
            .confirmed()
            .await
    }

    /// Publish a persistent message without waiting for its confirm: many
    /// messages can be in flight at once, and each [`PendingConfirm`] says
    /// when its own was confirmed. Stamped with the publish time, which
    /// consumers turn into queue lag.
    pub async fn send(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<PendingConfirm, QueueError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let confirm = self
            .channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload,
                properties.with_delivery_mode(2).with_timestamp(now),
            )
            .await?;
        Ok(PendingConfirm {
            confirm,
            target: format!("{exchange}/{routing_key}"),
        })
    }
}

/// A published message whose confirm has not been awaited yet.
#[must_use = "a message is safe only once its confirm has been awaited"]
pub struct PendingConfirm {
    confirm: lapin::PublisherConfirm,
    target: String,
}

impl std::fmt::Debug for PendingConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingConfirm")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PendingConfirm {
    /// Wait for the broker's confirm; [`QueueError::Nacked`] if it refused.
    pub async fn confirmed(self) -> Result<(), QueueError> {
        match self.confirm.await? {
            Confirmation::Ack(_) => Ok(()),
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(QueueError::Nacked {
                target: self.target,
            }),
        }
    }
}

/// Confirms awaited in publish order, at most `window` outstanding: a
/// publisher keeps many messages in flight and still knows, at any
/// [`ConfirmWindow::drain`], that everything before it is safe.
#[derive(Debug)]
pub struct ConfirmWindow {
    pending: std::collections::VecDeque<PendingConfirm>,
    window: usize,
}

impl ConfirmWindow {
    pub fn new(window: usize) -> Self {
        Self {
            pending: std::collections::VecDeque::new(),
            window: window.max(1),
        }
    }

    /// Track a message; waits for the oldest confirm when the window is full.
    pub async fn push(&mut self, pending: PendingConfirm) -> Result<(), QueueError> {
        self.pending.push_back(pending);
        while self.pending.len() > self.window {
            if let Some(oldest) = self.pending.pop_front() {
                oldest.confirmed().await?;
            }
        }
        Ok(())
    }

    /// Wait until every tracked message is confirmed.
    pub async fn drain(&mut self) -> Result<(), QueueError> {
        while let Some(oldest) = self.pending.pop_front() {
            oldest.confirmed().await?;
        }
        Ok(())
    }
}

/// What connectors publish with: work items sealed with the transport key,
/// confirmed by RabbitMQ before [`WorkPublisher::publish`] returns, so a
/// connector may store its cursor afterwards.
#[derive(Debug)]
pub struct WorkPublisher {
    publisher: Publisher,
    key: arkiv_crypto::TransportKey,
    prefix: String,
}

impl WorkPublisher {
    pub async fn new(broker: &Broker, key: arkiv_crypto::TransportKey) -> Result<Self, QueueError> {
        Ok(Self {
            publisher: broker.publisher().await?,
            key,
            prefix: broker.prefix.clone(),
        })
    }

    /// Publish one work item to its region's work queue and wait for the
    /// broker's confirm.
    pub async fn publish(
        &self,
        region: &arkiv_domain::Region,
        item: &WorkItem,
    ) -> Result<(), QueueError> {
        self.send(region, item).await?.confirmed().await
    }

    /// Publish one work item without waiting for its confirm (see
    /// [`ConfirmWindow`]).
    pub async fn send(
        &self,
        region: &arkiv_domain::Region,
        item: &WorkItem,
    ) -> Result<PendingConfirm, QueueError> {
        let queue = format!("{}.work.{region}", self.prefix);
        self.publisher
            .send(
                "",
                &queue,
                &item.seal(&self.key),
                BasicProperties::default(),
            )
            .await
    }
}

/// The arguments of a quorum queue.
pub(crate) fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// A stream of deliveries that must each be acked (or nacked) explicitly.
#[derive(Debug)]
pub struct Consumer {
    inner: lapin::Consumer,
    queue: String,
}

/// One delivered message.
pub type Delivery = lapin::message::Delivery;

impl Consumer {
    /// The next delivery; `Err` if the consumer or its channel closed.
    pub async fn next(&mut self) -> Result<Delivery, QueueError> {
        match self.inner.next().await {
            Some(delivery) => Ok(delivery?),
            None => Err(QueueError::ConsumerClosed {
                queue: self.queue.clone(),
            }),
        }
    }
}

/// Acknowledge a delivery once its effects are durable.
pub async fn ack(delivery: &Delivery) -> Result<(), QueueError> {
    delivery.acker.ack(BasicAckOptions::default()).await?;
    Ok(())
}
