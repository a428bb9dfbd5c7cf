//! The work-item schema: what connectors publish and the worker consumes.
//!
//! On the wire a work item is `schema version (1 byte) || envelope`, where
//! the envelope is the MessagePack encoding of a [`WorkItem`] sealed with
//! the transport key (AES-256-GCM), so RabbitMQ's disk never holds
//! plaintext. The version byte stays outside the envelope so a worker can
//! refuse a schema it does not know without trying keys.
//!
//! Content up to [`INLINE_MAX`] travels inside its [`WorkItem::Upsert`].
//! Larger content is cut by content-defined chunking (see `arkiv-vault`)
//! into [`WorkItem::Chunk`] messages, followed by the `Upsert` whose
//! [`Content::Chunked`] names the upload and how many chunks it has.

use arkiv_crypto::TransportKey;
use arkiv_domain::{Provider, Workload};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: u8 = 1;

/// Content up to this size is sent inline in its work item.
pub const INLINE_MAX: usize = 256 * 1024;

const AAD: &[u8] = b"arkiv work item v1";

/// Which item of which account a work item is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub account_id: Uuid,
    pub provider: Provider,
    pub workload: Workload,
    /// The provider's id of the item (message id, drive item id, event id).
    pub source_id: String,
}

/// What search and restore need to know about an item, sealed in the index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub subject: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// The item's own date: received, modified or start.
    pub date: Option<DateTime<Utc>>,
    pub folder_path: Option<String>,
    pub file_name: Option<String>,
    pub file_path: Option<String>,
    pub event_title: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub content_type: Option<String>,
    /// Mail: whether the message was read (restored as it was).
    #[serde(default)]
    pub read: Option<bool>,
    /// The provider's id of what the item sits in, where restore needs it
    /// and the path does not say: a Google calendar, a shared drive. Left
    /// out of the encoding when absent, so versions written before it
    /// existed compare equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Gmail: the message's thread, kept on restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
}

/// Where a change was seen: the backup run that saw it (the worker counts
/// the run's settled items and new versions) and the container the item
/// was in, such as a mail folder's id. The worker keeps only a keyed hash
/// of the container, so that "removed from folder A" after "now in folder
/// B" does not mark a moved item deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub run_id: Option<Uuid>,
    pub container: Option<String>,
}

/// An item's content: inline, or the chunks of an upload sent before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// Encoded as MessagePack binary, like `serde_bytes`.
    Inline(Bytes),
    Chunked {
        upload_id: Uuid,
        /// The upload's chunks are numbered `0..chunks`.
        chunks: u32,
        /// Total plaintext bytes, checked against the chunks.
        size: u64,
    },
}

/// One message on a work queue. Short-lived and moved rarely, so the size
/// difference between an `Upsert` and a `Chunk` costs nothing worth a box.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)]
pub enum WorkItem {
    /// The item as it is now at the source (new or changed).
    Upsert {
        item: ItemKey,
        /// etag / changeKey / historyId, as the provider gave it.
        change_marker: Option<String>,
        metadata: Metadata,
        content: Content,
        #[serde(default)]
        origin: Origin,
    },
    /// Consecutive content-defined chunks of a large item, numbered from
    /// `first` within the upload; the `Upsert` naming the upload follows.
    Chunk {
        tenant_id: Uuid,
        /// The account whose item this is (absent from work items published
        /// before it was added).
        #[serde(default)]
        account_id: Option<Uuid>,
        upload_id: Uuid,
        first: u32,
        pieces: Vec<Bytes>,
    },
    /// The item was deleted at the source.
    Deleted {
        item: ItemKey,
        change_marker: Option<String>,
        deleted_at: DateTime<Utc>,
        #[serde(default)]
        origin: Origin,
    },
    /// Items last seen in `origin.container` (or anywhere in the account's
    /// workload, when no container is named) are gone at the source, except
    /// those that run `keep_seen_by` saw. Sent when a container was deleted
    /// (nothing kept) and after a container was listed again in full because
    /// its cursor expired (what that listing saw is kept), since neither
    /// case reports its deletions one by one. `scope.source_id` names the
    /// sweep itself, so the run counts it like an item.
    Sweep {
        scope: ItemKey,
        keep_seen_by: Option<Uuid>,
        swept_at: DateTime<Utc>,
        origin: Origin,
    },
}

/// Why a payload could not be read. Each is permanent for that payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkError {
    #[error("empty payload")]
    Empty,
    #[error("unknown work-item schema version {0} (this worker reads {SCHEMA_VERSION})")]
    Schema(u8),
    #[error("the payload does not open with the transport key")]
    Undecryptable,
    #[error("the payload is not a work item: {0}")]
    Malformed(String),
}

impl WorkItem {
    /// The tenant whose data this is.
    pub fn tenant_id(&self) -> Uuid {
        match self {
            WorkItem::Upsert { item, .. }
            | WorkItem::Deleted { item, .. }
            | WorkItem::Sweep { scope: item, .. } => item.tenant_id,
            WorkItem::Chunk { tenant_id, .. } => *tenant_id,
        }
    }

    /// Encode and seal for publishing. The encoding is written straight
    /// into the envelope and sealed in place: a chunk message's bytes are
    /// copied once on their way to RabbitMQ.
    pub fn seal(&self, key: &TransportKey) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.content_len() + 512 + arkiv_crypto::OVERHEAD);
        out.push(SCHEMA_VERSION);
        key.seal_into(&mut out, AAD, |out| {
            rmp_serde::encode::write_named(out, self).expect("work items always encode")
        });
        out
    }

    /// Bytes of content this message carries.
    fn content_len(&self) -> usize {
        match self {
            WorkItem::Upsert {
                content: Content::Inline(data),
                ..
            } => data.len(),
            WorkItem::Chunk { pieces, .. } => pieces.iter().map(Bytes::len).sum(),
            _ => 0,
        }
    }

    /// Open a payload made by [`WorkItem::seal`].
    pub fn open(payload: &[u8], key: &TransportKey) -> Result<Self, WorkError> {
        let (&version, sealed) = payload.split_first().ok_or(WorkError::Empty)?;
        if version != SCHEMA_VERSION {
            return Err(WorkError::Schema(version));
        }
        let plain = key
            .open(sealed, AAD)
            .map_err(|_| WorkError::Undecryptable)?;
        rmp_serde::from_slice(&plain).map_err(|e| WorkError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> WorkItem {
        WorkItem::Upsert {
            item: ItemKey {
                tenant_id: Uuid::from_u128(1),
                connection_id: Uuid::from_u128(2),
                account_id: Uuid::from_u128(3),
                provider: Provider::M365,
                workload: Workload::Mail,
                source_id: "AAMk1".into(),
            },
            change_marker: Some("ck1".into()),
            metadata: Metadata {
                subject: Some("Quarterly numbers".into()),
                ..Metadata::default()
            },
            content: Content::Inline(Bytes::from_static(b"From: a@example.com\r\n\r\nhello")),
            origin: Origin::default(),
        }
    }

    #[test]
    fn seals_and_opens_without_plaintext_on_the_wire() {
        let key = TransportKey::generate();
        let sealed = item().seal(&key);
        assert_eq!(sealed[0], SCHEMA_VERSION);
        assert!(!sealed.windows(9).any(|w| w == b"Quarterly"));
        assert_eq!(WorkItem::open(&sealed, &key).unwrap(), item());
    }

    #[test]
    fn a_wrong_key_version_or_body_is_refused_for_what_it_is() {
        let key = TransportKey::generate();
        let mut sealed = item().seal(&key);
        assert_eq!(
            WorkItem::open(&sealed, &TransportKey::generate()),
            Err(WorkError::Undecryptable)
        );
        sealed[0] = 9;
        assert_eq!(WorkItem::open(&sealed, &key), Err(WorkError::Schema(9)));
        assert_eq!(WorkItem::open(&[], &key), Err(WorkError::Empty));
        let mut garbage = vec![SCHEMA_VERSION];
        garbage.extend(key.seal(b"\xc1not msgpack", AAD));
        assert!(matches!(
            WorkItem::open(&garbage, &key),
            Err(WorkError::Malformed(_))
        ));
    }

    #[test]
    fn content_bytes_encode_as_the_msgpack_binary_earlier_builds_wrote() {
        let data = vec![0u8, 1, 2, 255];
        let before = rmp_serde::to_vec_named(&serde_bytes::ByteBuf::from(data.clone())).unwrap();
        assert_eq!(
            rmp_serde::to_vec_named(&Bytes::from(data.clone())).unwrap(),
            before
        );
        assert_eq!(rmp_serde::from_slice::<Bytes>(&before).unwrap(), data);
    }
}
