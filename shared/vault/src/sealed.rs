//! A chunk's id and its stored form.
//!
//! id = BLAKE3(plaintext) keyed with the tenant's dedup key: equal content
//! in one tenant has one id; another tenant's key gives another.
//! stored = AES-256-GCM(zstd(plaintext)) under the tenant's data key with a
//! fresh nonce, the associated data binding it to the tenant and the id, so
//! a chunk moved to another tenant or id does not open.

use std::cell::RefCell;

use arkiv_crypto::{KeyedHash, TenantKeys};
use uuid::Uuid;

/// zstd level: fast enough for the worker's throughput target.
const ZSTD_LEVEL: i32 = 1;

pub fn chunk_id(keys: &TenantKeys, plaintext: &[u8]) -> KeyedHash {
    keys.dedup.content_id(plaintext)
}

fn aad(tenant: Uuid, id: &KeyedHash) -> Vec<u8> {
    [b"arkiv chunk ".as_slice(), tenant.as_bytes(), id].concat()
}

thread_local! {
    /// A compression context per thread: making one per chunk cost more
    /// than compressing a 16 KiB chunk.
    static COMPRESSOR: RefCell<zstd::bulk::Compressor<'static>> = RefCell::new(
        zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context at a valid level"),
    );
    static DECOMPRESSOR: RefCell<zstd::bulk::Decompressor<'static>> = RefCell::new(
        zstd::bulk::Decompressor::new().expect("a zstd context"),
    );
}

/// The stored form of a chunk whose id is `id`: compressed straight into
/// its envelope and sealed there.
pub fn seal_chunk(keys: &TenantKeys, tenant: Uuid, id: &KeyedHash, plaintext: &[u8]) -> Vec<u8> {
    let bound = zstd::zstd_safe::compress_bound(plaintext.len());
    let mut out = Vec::with_capacity(bound + arkiv_crypto::OVERHEAD);
    keys.data.seal_into(&mut out, &aad(tenant, id), |out| {
        let start = out.len();
        out.resize(start + bound, 0);
        let written = COMPRESSOR.with_borrow_mut(|c| {
            c.compress_to_buffer(plaintext, &mut out[start..])
                .expect("zstd compresses into a buffer of its bound")
        });
        out.truncate(start + written);
    });
    out
}

/// Why a stored chunk could not be read back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("the GCM tag does not verify (wrong key, moved or altered bytes)")]
    Tag,
    #[error("the decrypted chunk does not decompress")]
    Decompress,
    #[error("the content does not match the chunk id")]
    Hash,
}

/// Open a stored chunk, verifying its tag and its keyed hash.
pub fn open_chunk(
    keys: &TenantKeys,
    tenant: Uuid,
    id: &KeyedHash,
    plain_size: usize,
    stored: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    let compressed = keys
        .data
        .open(stored, &aad(tenant, id))
        .map_err(|_| ChunkError::Tag)?;
    let plain = DECOMPRESSOR
        .with_borrow_mut(|d| d.decompress(&compressed, plain_size))
        .map_err(|_| ChunkError::Decompress)?;
    if plain.len() != plain_size || &chunk_id(keys, &plain) != id {
        return Err(ChunkError::Hash);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_kind_of_damage() {
        let keys = TenantKeys::generate();
        let tenant = Uuid::from_u128(5);
        let plain = b"a chunk of a message, a chunk of a message".repeat(100);
        let id = chunk_id(&keys, &plain);
        let stored = seal_chunk(&keys, tenant, &id, &plain);
        assert!(stored.len() < plain.len(), "compressed");
        assert_eq!(
            open_chunk(&keys, tenant, &id, plain.len(), &stored).unwrap(),
            plain
        );

        for plain in [
            Vec::new(),
            (0..70_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ] {
            let id = chunk_id(&keys, &plain);
            let stored = seal_chunk(&keys, tenant, &id, &plain);
            assert_eq!(
                open_chunk(&keys, tenant, &id, plain.len(), &stored).unwrap(),
                plain
            );
        }

        let mut flipped = stored.clone();
        flipped[20] ^= 1;
        assert_eq!(
            open_chunk(&keys, tenant, &id, plain.len(), &flipped),
            Err(ChunkError::Tag)
        );
        let other = Uuid::from_u128(6);
        assert_eq!(
            open_chunk(&keys, other, &id, plain.len(), &stored),
            Err(ChunkError::Tag)
        );
        let other_keys = TenantKeys::generate();
        assert_ne!(
            chunk_id(&other_keys, &plain),
            id,
            "ids differ between tenants"
        );
        assert_eq!(
            open_chunk(&other_keys, tenant, &id, plain.len(), &stored),
            Err(ChunkError::Tag)
        );
    }
}
