//! Arkiv's sealed chunk store, shared by the worker (writes), and restore
//! and export (reads).
//!
//! - [`chunking`]: content-defined chunking (FastCDC), for connectors that
//!   stream large content and for the worker.
//! - [`sealed`]: a chunk's id (BLAKE3 keyed with the tenant's dedup key) and
//!   its stored form: zstd, then AES-256-GCM under the tenant's data key,
//!   bound to the tenant and the chunk id.
//! - [`keyring`]: tenant keys unwrapped with the master key, cached briefly.
//! - [`metadata`]: a version's sealed metadata and the blind indexes that
//!   search filters on.
//! - [`reader`]: streams a version's content back, verifying every chunk.
//! - [`search`]: finding versions: search, an item's versions, and what an
//!   account held at a point in time.
//! - [`upload`]: what a connector calls to publish an item of any size.
//!
//! Object keys name tenant ids and random pack ids only:
//! `t/{tenant}/p/{pack}`.

pub mod chunking;
pub mod keyring;
pub mod metadata;
pub mod reader;
pub mod sealed;
pub mod search;
pub mod upload;

use uuid::Uuid;

/// The object key of a pack.
pub fn pack_key(tenant: Uuid, pack: Uuid) -> String {
    format!("t/{tenant}/p/{pack}")
}

/// The prefix under which every object of a tenant lives.
pub fn tenant_prefix(tenant: Uuid) -> String {
    format!("t/{tenant}/")
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("unknown tenant {0}")]
    UnknownTenant(Uuid),
    #[error("the keys of tenant {tenant} do not open: {reason}")]
    Keys { tenant: Uuid, reason: String },
    #[error("chunk {chunk} in pack {pack} is corrupt: {reason}")]
    Corrupt {
        pack: String,
        chunk: String,
        reason: String,
    },
    #[error("reading the item's content: {0}")]
    Content(String),
    #[error("version {0} not found")]
    NoSuchVersion(Uuid),
    #[error(transparent)]
    Store(#[from] arkiv_store::StoreError),
    #[error(transparent)]
    Db(#[from] arkiv_db::sea_orm::DbErr),
    #[error(transparent)]
    Queue(#[from] arkiv_queue::QueueError),
}
