//! The sealed envelope: `version (1 byte) || nonce (12) || ciphertext || tag (16)`.
//!
//! Nonces are random (96 bits). Each key seals at most a few billion
//! envelopes in Arkiv's lifetime (one per chunk or metadata blob of one
//! tenant), far below the 2^32 bound at which random GCM nonces need care.

use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

const VERSION: u8 = 1;
/// Length of the random nonce in an envelope.
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Wrong key, wrong associated data, or tampered bytes. Permanent.
    #[error("authentication failed: wrong key, wrong context or corrupted data")]
    Authentication,
    /// Too short or an unknown envelope version. Permanent.
    #[error("malformed sealed data: {0}")]
    Malformed(&'static str),
}

/// Seal `plaintext` under `key`, bound to `aad`.
pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    seal_into(key, &mut out, aad, |out| out.extend_from_slice(plaintext));
    out
}

/// Append to `out` the envelope of what `write` appends, sealed in place:
/// a serialiser or compressor writes its output straight into the
/// envelope, and nothing is copied afterwards.
pub fn seal_into(key: &[u8; 32], out: &mut Vec<u8>, aad: &[u8], write: impl FnOnce(&mut Vec<u8>)) {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    let body = out.len();
    write(out);
    let tag = Aes256Gcm::new(key.into())
        .encrypt_inout_detached(&Nonce::from(nonce), aad, (&mut out[body..]).into())
        .expect("AES-GCM encryption cannot fail for in-memory buffers");
    out.extend_from_slice(&tag);
}

/// Open an envelope made by [`seal`] with the same key and `aad`.
pub fn open(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < OVERHEAD {
        return Err(CryptoError::Malformed("shorter than an envelope"));
    }
    if sealed[0] != VERSION {
        return Err(CryptoError::Malformed("unknown envelope version"));
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).expect("split at the nonce's length");
    Aes256Gcm::new(key.into())
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [42; 32];

    #[test]
    fn round_trip_and_overhead() {
        for len in [0, 1, 1000, 70_000] {
            let plain = vec![9u8; len];
            let sealed = seal(&KEY, &plain, b"ctx");
            assert_eq!(sealed.len(), len + OVERHEAD);
            assert_eq!(open(&KEY, &sealed, b"ctx").unwrap(), plain);
        }
    }

    #[test]
    fn sealing_in_place_after_a_prefix_opens_like_any_envelope() {
        let mut out = b"prefix".to_vec();
        seal_into(&KEY, &mut out, b"ctx", |o| {
            o.extend_from_slice(b"written in place")
        });
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out.len(), 6 + OVERHEAD + 16);
        assert_eq!(open(&KEY, &out[6..], b"ctx").unwrap(), b"written in place");
    }

    /// AES-256-GCM test case 14 of the GCM specification (McGrew & Viega):
    /// envelopes stay readable whatever implementation or version seals them.
    #[test]
    fn opens_the_gcm_specification_test_vector() {
        let mut envelope = vec![VERSION];
        envelope.extend_from_slice(&[0; NONCE_LEN]);
        envelope.extend_from_slice(&hex("cea7403d4d606b6e074ec5d3baf39d18"));
        envelope.extend_from_slice(&hex("d0d1c8a799996bf0265b98b5d48ab919"));
        assert_eq!(open(&[0; 32], &envelope, b"").unwrap(), [0; 16]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn same_plaintext_seals_differently_each_time() {
        assert_ne!(seal(&KEY, b"x", b""), seal(&KEY, b"x", b""));
    }

    #[test]
    fn wrong_key_context_or_flipped_bit_fails() {
        let sealed = seal(&KEY, b"secret", b"ctx");
        assert_eq!(
            open(&[1; 32], &sealed, b"ctx"),
            Err(CryptoError::Authentication)
        );
        assert_eq!(
            open(&KEY, &sealed, b"other"),
            Err(CryptoError::Authentication)
        );
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            open(&KEY, &flipped, b"ctx"),
            Err(CryptoError::Authentication)
        );
    }

    #[test]
    fn truncated_or_unknown_version_is_malformed() {
        assert!(matches!(
            open(&KEY, &[1, 2, 3], b""),
            Err(CryptoError::Malformed(_))
        ));
        let mut sealed = seal(&KEY, b"x", b"");
        sealed[0] = 99;
        assert!(matches!(
            open(&KEY, &sealed, b""),
            Err(CryptoError::Malformed(_))
        ));
    }
}
