//! Arkiv's keys and sealing.
//!
//! - [`MasterKey`]: the key-encryption key from configuration. It wraps each
//!   tenant's keys ([`TenantKeys::wrap`]) and derives the service-wide keys
//!   for sealed credentials and blind indexes.
//! - [`TenantKeys`]: a tenant's data key (AES-256-GCM over chunks and sealed
//!   metadata) and dedup key (BLAKE3 keyed hash of plaintext, so identical
//!   content deduplicates within a tenant and never across tenants).
//! - [`TransportKey`]: seals work items before they reach RabbitMQ.
//!
//! Every sealed blob is a small versioned envelope (see [`seal`]) bound to an
//! *associated data* string naming what it is (`b"chunk"`, a tenant id, ...),
//! so a blob moved to another context fails to open instead of decrypting
//! into the wrong place.
//!
//! This crate does no I/O and knows nothing of databases or buckets.
//!
//! ```
//! use arkiv_crypto::{MasterKey, TenantKeys};
//! let master = MasterKey::from_bytes([7; 32]);
//! let keys = TenantKeys::generate();
//! let wrapped = keys.wrap(&master, b"tenant-1");
//! let unwrapped = TenantKeys::unwrap(&master, &wrapped, b"tenant-1").unwrap();
//! let sealed = unwrapped.data.seal(b"hello", b"chunk");
//! assert_eq!(keys.data.open(&sealed, b"chunk").unwrap(), b"hello");
//! assert!(TenantKeys::unwrap(&master, &wrapped, b"tenant-2").is_err());
//! ```

mod envelope;
mod keys;

pub use envelope::{open, seal, seal_into, CryptoError, NONCE_LEN, OVERHEAD};
pub use keys::*;

mod token;
pub use token::{ApiToken, TokenHash};
