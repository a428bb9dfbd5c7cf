//! A version's metadata as the index keeps it: sealed under the tenant's
//! data key, plus the blind indexes search filters on.
//!
//! The sealed form is the MessagePack encoding of [`Metadata`] (named
//! fields, so new optional fields read as absent in old versions), sealed
//! with associated data naming the tenant and the version. The blind
//! indexes are keyed with the tenant's [`SearchKey`]:
//!
//! - `terms`: one 64-bit term per distinct word of the title (subject,
//!   event title or file name) and per address (sender and recipients);
//! - `from_hash`: the sender's address, whole.
//!
//! A term match is a candidate only (64 bits may collide, and the words of
//! a query may sit in different fields): search opens each candidate's
//! metadata and checks it with [`Metadata::matches_text`].

use arkiv_crypto::{CryptoError, DataKey, SearchKey};
pub use arkiv_queue::Metadata;
use uuid::Uuid;

/// Field names inside the search key's domain.
const WORD: &str = "word";
const ADDRESS: &str = "address";
const FROM: &str = "from";

/// Words longer than this are cut: nobody searches for them whole.
const MAX_WORD: usize = 64;

/// The associated data of a version's sealed metadata.
pub fn aad(tenant: Uuid, version: Uuid) -> Vec<u8> {
    [
        b"arkiv metadata ".as_slice(),
        tenant.as_bytes(),
        version.as_bytes(),
    ]
    .concat()
}

/// The plaintext form that is sealed (and hashed to tell versions apart).
pub fn encode(metadata: &Metadata) -> Vec<u8> {
    rmp_serde::to_vec_named(metadata).expect("metadata always encodes")
}

pub fn seal(key: &DataKey, tenant: Uuid, version: Uuid, plain: &[u8]) -> Vec<u8> {
    key.seal(plain, &aad(tenant, version))
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("the metadata of version {0} does not open: {1}")]
    Sealed(Uuid, CryptoError),
    #[error("the metadata of version {0} is not readable: {1}")]
    Malformed(Uuid, String),
}

pub fn open(
    key: &DataKey,
    tenant: Uuid,
    version: Uuid,
    sealed: &[u8],
) -> Result<Metadata, MetadataError> {
    let plain = key
        .open(sealed, &aad(tenant, version))
        .map_err(|e| MetadataError::Sealed(version, e))?;
    rmp_serde::from_slice(&plain).map_err(|e| MetadataError::Malformed(version, e.to_string()))
}

/// The words of a text as search sees them: lower case, split at anything
/// that is not a letter or a digit.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(MAX_WORD).collect::<String>().to_lowercase())
}

/// An address as search compares it.
pub fn normalise_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The term of one word of a query.
pub fn word_term(key: &SearchKey, word: &str) -> i64 {
    key.term(WORD, word.as_bytes())
}

/// The term of an address (sender or recipient) of a query.
pub fn address_term(key: &SearchKey, address: &str) -> i64 {
    key.term(ADDRESS, normalise_address(address).as_bytes())
}

/// The blind index of a sender's address.
pub fn from_hash(key: &SearchKey, address: &str) -> Vec<u8> {
    key.index(FROM, normalise_address(address).as_bytes())
        .to_vec()
}

/// What the index stores beside the sealed metadata of a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlindIndex {
    /// Sorted and distinct.
    pub terms: Vec<i64>,
    pub from_hash: Option<Vec<u8>>,
}

impl BlindIndex {
    pub fn of(key: &SearchKey, metadata: &Metadata) -> Self {
        let mut terms: Vec<i64> = metadata
            .title()
            .into_iter()
            .flat_map(words)
            .map(|w| word_term(key, &w))
            .chain(
                metadata
                    .from
                    .iter()
                    .chain(metadata.to.iter())
                    .map(|a| address_term(key, a)),
            )
            .collect();
        terms.sort_unstable();
        terms.dedup();
        Self {
            terms,
            from_hash: metadata.from.as_deref().map(|a| from_hash(key, a)),
        }
    }
}

/// What search and listings show of metadata.
pub trait Describe {
    /// The subject, event title or file name.
    fn title(&self) -> Option<&str>;
    /// Whether every word of `text` is a word of the title.
    fn matches_text(&self, text: &str) -> bool;
}

impl Describe for Metadata {
    fn title(&self) -> Option<&str> {
        self.subject
            .as_deref()
            .or(self.event_title.as_deref())
            .or(self.file_name.as_deref())
    }

    fn matches_text(&self, text: &str) -> bool {
        let have: std::collections::HashSet<String> =
            self.title().into_iter().flat_map(words).collect();
        words(text).all(|w| have.contains(&w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(subject: &str, from: &str) -> Metadata {
        Metadata {
            subject: Some(subject.into()),
            from: Some(from.into()),
            to: vec!["Bob@Example.com".into()],
            ..Metadata::default()
        }
    }

    #[test]
    fn words_are_lower_case_and_split_at_punctuation() {
        let w: Vec<String> = words("Re: Q3-numbers, FINAL (v2) Ünïcode").collect();
        assert_eq!(w, ["re", "q3", "numbers", "final", "v2", "ünïcode"]);
    }

    #[test]
    fn the_index_holds_title_words_and_addresses_under_the_tenants_key() {
        let key = arkiv_crypto::DedupKey::generate().search_key();
        let m = mail("Quarterly numbers", "Alice@Example.com");
        let index = BlindIndex::of(&key, &m);
        assert!(index.terms.contains(&word_term(&key, "quarterly")));
        assert!(index.terms.contains(&word_term(&key, "numbers")));
        assert!(index
            .terms
            .contains(&address_term(&key, "alice@example.com")));
        assert!(index.terms.contains(&address_term(&key, "bob@example.com")));
        assert!(!index.terms.contains(&word_term(&key, "alice")));
        assert_eq!(index.terms.len(), 4);
        assert_eq!(
            index.from_hash,
            Some(from_hash(&key, " ALICE@example.com "))
        );

        // Another tenant's key gives other terms for the same words.
        let other = arkiv_crypto::DedupKey::generate().search_key();
        assert!(!index.terms.contains(&word_term(&other, "quarterly")));
    }

    #[test]
    fn a_text_matches_only_when_every_word_is_in_the_title() {
        let m = mail("Quarterly numbers for Q3", "a@example.com");
        assert!(m.matches_text("numbers quarterly"));
        assert!(m.matches_text("Q3"));
        assert!(!m.matches_text("numbers annual"));
        assert!(!m.matches_text("example"));
    }

    #[test]
    fn sealed_metadata_opens_only_for_its_tenant_and_version() {
        let key = DataKey::generate();
        let (t, v) = (Uuid::new_v4(), Uuid::new_v4());
        let m = mail("Hello", "a@example.com");
        let sealed = seal(&key, t, v, &encode(&m));
        assert_eq!(open(&key, t, v, &sealed).unwrap(), m);
        assert!(open(&key, t, Uuid::new_v4(), &sealed).is_err());
        assert!(open(&key, Uuid::new_v4(), v, &sealed).is_err());
    }
}
