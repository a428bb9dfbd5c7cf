//! API tokens: 256 random bits, shown once, stored only as a SHA-256 hash.
//!
//! A fast hash is right here (unlike for passwords): the token has full
//! entropy, so there is nothing to brute-force.

use std::fmt;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "ark_";

/// A freshly generated token, to be shown to its owner once.
pub struct ApiToken(String);

/// What the database stores for a token.
pub type TokenHash = [u8; 32];

impl ApiToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        Self::hash_presented(&self.0)
    }

    /// The hash of a token presented by a client, to look it up.
    pub fn hash_presented(token: &str) -> TokenHash {
        Sha256::digest(token.as_bytes()).into()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hash_consistently() {
        let a = ApiToken::generate();
        let b = ApiToken::generate();
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with("ark_"));
        assert_eq!(a.expose().len(), 4 + 43);
        assert_eq!(a.hash(), ApiToken::hash_presented(a.expose()));
        assert_ne!(a.hash(), b.hash());
    }
}
