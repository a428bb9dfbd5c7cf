use std::fmt;

use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use zeroize::Zeroize;

use crate::envelope::{open, seal, seal_into, CryptoError};

/// 32 bytes of key material, wiped on drop and never printed.
struct KeyMaterial(SecretBox<[u8; 32]>);

impl KeyMaterial {
    fn new(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let key = Self::new(bytes);
        bytes.zeroize();
        key
    }

    fn bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

macro_rules! key_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        pub struct $name(KeyMaterial);

        impl $name {
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(KeyMaterial::new(bytes))
            }

            pub fn generate() -> Self {
                Self(KeyMaterial::random())
            }

            /// Take the key from configuration ([`arkiv_config`]'s key bytes).
            pub fn from_secret(secret: &SecretBox<[u8; 32]>) -> Self {
                Self::from_bytes(*secret.expose_secret())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

key_type!(
    /// The key-encryption key (KEK). It never encrypts data itself: it wraps
    /// tenant keys and derives the service-wide keys.
    MasterKey
);
key_type!(
    /// A tenant's data-encryption key: seals chunks and metadata.
    DataKey
);
key_type!(
    /// A tenant's dedup key: chunk ids are BLAKE3 keyed with it.
    DedupKey
);
key_type!(
    /// Seals work items in transit through RabbitMQ.
    TransportKey
);
key_type!(
    /// Keys a tenant's search index: blind hashes of the words and
    /// addresses in its sealed metadata. Derived from the tenant's dedup
    /// key, so it is destroyed with the tenant's keys and never matches
    /// across tenants.
    SearchKey
);
key_type!(
    /// Seals what the service itself keeps outside tenant content: connection
    /// credentials (client secrets, service-account keys), principals' e-mail
    /// addresses and TOTP secrets. Derived from the master key.
    ServiceKey
);
key_type!(
    /// Signs values Arkiv hands out and must recognise later (the OAuth
    /// `state`): a keyed BLAKE3 MAC. Derived from the master key.
    SigningKey
);
key_type!(
    /// Keys blind indexes: lookups by e-mail address or other personal data
    /// without storing it in plaintext. Derived from the master key.
    BlindIndexKey
);

impl MasterKey {
    fn derive(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, self.0.bytes())
    }

    pub fn service_key(&self) -> ServiceKey {
        ServiceKey::from_bytes(self.derive("arkiv 2026-11-22 service sealing v1"))
    }

    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(self.derive("arkiv 2026-11-22 signing v1"))
    }

    pub fn blind_index_key(&self) -> BlindIndexKey {
        BlindIndexKey::from_bytes(self.derive("arkiv 2026-11-22 blind index v1"))
    }

    fn wrap_key(&self, key: &KeyMaterial, aad: &[u8]) -> Vec<u8> {
        seal(self.0.bytes(), key.bytes(), aad)
    }

    fn unwrap_key(&self, wrapped: &[u8], aad: &[u8]) -> Result<KeyMaterial, CryptoError> {
        let mut plain = open(self.0.bytes(), wrapped, aad)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("wrapped key is not 32 bytes"))?;
        plain.zeroize();
        Ok(KeyMaterial::new(bytes))
    }
}

/// Keys that encrypt get `seal` and `open` (see [`crate::seal`]).
macro_rules! sealer {
    ($($name:ident),+) => {$(
        impl $name {
            pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
                seal(self.0.bytes(), plaintext, aad)
            }
            /// See [`crate::seal_into`].
            pub fn seal_into(&self, out: &mut Vec<u8>, aad: &[u8], write: impl FnOnce(&mut Vec<u8>)) {
                seal_into(self.0.bytes(), out, aad, write)
            }
            pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
                open(self.0.bytes(), sealed, aad)
            }
        }
    )+};
}

sealer!(DataKey, TransportKey, ServiceKey);

/// A 32-byte keyed hash: chunk ids and blind-index entries.
pub type KeyedHash = [u8; 32];

impl DedupKey {
    /// The content id of a chunk: identical plaintext in one tenant gives
    /// the same id; in another tenant (another key) a different one.
    pub fn content_id(&self, plaintext: &[u8]) -> KeyedHash {
        *blake3::keyed_hash(self.0.bytes(), plaintext).as_bytes()
    }

    /// An incremental hasher for content too large to hold at once.
    pub fn hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(self.0.bytes())
    }

    /// The tenant's search key.
    pub fn search_key(&self) -> SearchKey {
        SearchKey::from_bytes(blake3::derive_key(
            "arkiv 2026-12-01 search terms v1",
            self.0.bytes(),
        ))
    }
}

impl SearchKey {
    /// The blind index of a value within a named field.
    pub fn index(&self, field: &str, value: &[u8]) -> KeyedHash {
        let mut hasher = blake3::Hasher::new_keyed(self.0.bytes());
        hasher.update(field.as_bytes());
        hasher.update(&[0]);
        hasher.update(value);
        *hasher.finalize().as_bytes()
    }

    /// A 64-bit search term: the first 8 bytes of [`SearchKey::index`].
    /// Collisions are possible, so a match is a candidate to check.
    pub fn term(&self, field: &str, value: &[u8]) -> i64 {
        let hash = self.index(field, value);
        i64::from_le_bytes(hash[..8].try_into().expect("8 bytes"))
    }
}

impl BlindIndexKey {
    /// The blind index of a value within a named field, so equal values in
    /// different fields do not correlate.
    pub fn index(&self, field: &str, value: &[u8]) -> KeyedHash {
        let mut hasher = blake3::Hasher::new_keyed(self.0.bytes());
        hasher.update(field.as_bytes());
        hasher.update(&[0]);
        hasher.update(value);
        *hasher.finalize().as_bytes()
    }
}

impl SigningKey {
    pub fn mac(&self, data: &[u8]) -> KeyedHash {
        *blake3::keyed_hash(self.0.bytes(), data).as_bytes()
    }

    /// Constant-time check of a MAC made by [`SigningKey::mac`].
    pub fn verify(&self, data: &[u8], mac: &[u8]) -> bool {
        let Ok(mac) = <[u8; 32]>::try_from(mac) else {
            return false;
        };
        blake3::keyed_hash(self.0.bytes(), data) == blake3::Hash::from(mac)
    }
}

/// A tenant's keys, generated at onboarding.
#[derive(Debug)]
pub struct TenantKeys {
    pub data: DataKey,
    pub dedup: DedupKey,
}

/// A tenant's keys as stored in `tenant_keys`: sealed by the master key and
/// bound to the tenant, so a row copied to another tenant cannot be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedTenantKeys {
    pub data: Vec<u8>,
    pub dedup: Vec<u8>,
}

impl TenantKeys {
    pub fn generate() -> Self {
        Self {
            data: DataKey::generate(),
            dedup: DedupKey::generate(),
        }
    }

    /// Wrap for storage; `tenant` is the tenant id's bytes.
    pub fn wrap(&self, master: &MasterKey, tenant: &[u8]) -> WrappedTenantKeys {
        WrappedTenantKeys {
            data: master.wrap_key(&self.data.0, &aad(b"data", tenant)),
            dedup: master.wrap_key(&self.dedup.0, &aad(b"dedup", tenant)),
        }
    }

    pub fn unwrap(
        master: &MasterKey,
        wrapped: &WrappedTenantKeys,
        tenant: &[u8],
    ) -> Result<Self, CryptoError> {
        Ok(Self {
            data: DataKey(master.unwrap_key(&wrapped.data, &aad(b"data", tenant))?),
            dedup: DedupKey(master.unwrap_key(&wrapped.dedup, &aad(b"dedup", tenant))?),
        })
    }
}

fn aad(purpose: &[u8], tenant: &[u8]) -> Vec<u8> {
    [b"arkiv tenant key ".as_slice(), purpose, b" ", tenant].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_keys_open_only_with_the_same_master_and_tenant() {
        let master = MasterKey::generate();
        let keys = TenantKeys::generate();
        let wrapped = keys.wrap(&master, b"t1");
        let back = TenantKeys::unwrap(&master, &wrapped, b"t1").unwrap();
        assert_eq!(back.dedup.content_id(b"x"), keys.dedup.content_id(b"x"));
        assert!(TenantKeys::unwrap(&MasterKey::generate(), &wrapped, b"t1").is_err());
        assert!(TenantKeys::unwrap(&master, &wrapped, b"t2").is_err());
        // The data key cannot stand in for the dedup key.
        let swapped = WrappedTenantKeys {
            data: wrapped.dedup.clone(),
            dedup: wrapped.data.clone(),
        };
        assert!(TenantKeys::unwrap(&master, &swapped, b"t1").is_err());
    }

    #[test]
    fn content_ids_dedupe_within_a_tenant_and_never_across() {
        let a = TenantKeys::generate();
        let b = TenantKeys::generate();
        assert_eq!(a.dedup.content_id(b"same"), a.dedup.content_id(b"same"));
        assert_ne!(a.dedup.content_id(b"same"), b.dedup.content_id(b"same"));
        let mut h = a.dedup.hasher();
        h.update(b"sa");
        h.update(b"me");
        assert_eq!(*h.finalize().as_bytes(), a.dedup.content_id(b"same"));
    }

    #[test]
    fn derived_keys_are_stable_and_distinct() {
        let master = MasterKey::from_bytes([3; 32]);
        let again = MasterKey::from_bytes([3; 32]);
        let blind = master.blind_index_key();
        assert_eq!(
            blind.index("email", b"a@b"),
            again.blind_index_key().index("email", b"a@b")
        );
        assert_ne!(blind.index("email", b"a@b"), blind.index("from", b"a@b"));
        let sealed = master.service_key().seal(b"secret", b"conn");
        assert_eq!(
            again.service_key().open(&sealed, b"conn").unwrap(),
            b"secret"
        );
    }

    #[test]
    fn macs_verify_only_for_the_same_data_and_key() {
        let key = MasterKey::from_bytes([5; 32]).signing_key();
        let mac = key.mac(b"state");
        assert!(key.verify(b"state", &mac));
        assert!(!key.verify(b"other", &mac));
        assert!(!key.verify(b"state", &mac[..31]));
        assert!(!MasterKey::from_bytes([6; 32])
            .signing_key()
            .verify(b"state", &mac));
    }

    #[test]
    fn keys_never_print() {
        assert_eq!(format!("{:?}", DataKey::generate()), "DataKey(<redacted>)");
    }
}
