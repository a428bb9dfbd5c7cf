//! Opaque cursors: delta, skip, sync, page and history tokens.
//!
//! A cursor is base64url of a small JSON document. Clients must treat it as
//! opaque; the simulator reads back what it wrote and refuses anything else.
//! Each carries the world's epoch when it was minted, so
//! `/_sim/expire-cursors` invalidates every outstanding one at once.

use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The collection the cursor belongs to (a folder, a drive, ...).
    #[serde(rename = "c")]
    pub collection: String,
    /// Changes after this sequence number...
    #[serde(rename = "s")]
    pub since: u64,
    /// ...up to this one (the round's snapshot).
    #[serde(rename = "u")]
    pub upto: u64,
    /// Position within the round.
    #[serde(rename = "o")]
    pub offset: u64,
    #[serde(rename = "e")]
    pub epoch: u64,
    /// Page size chosen on the first request of the round.
    #[serde(rename = "p")]
    pub page: u32,
    /// `$select` fixed on the first request.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
    /// A time window fixed on the first request (calendarView/delta).
    #[serde(rename = "w", default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Within an initial round: the listing key of the last item served.
    /// Pages continue after it rather than at an offset, so an item added
    /// or removed between pages shifts nothing and none is skipped.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(self).expect("cursor serialises"))
    }

    pub fn decode(token: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_matches('\''))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = Cursor {
            collection: "f1".into(),
            since: 3,
            upto: 9,
            offset: 20,
            epoch: 1,
            page: 10,
            extra: Some("subject".into()),
            window: None,
            after: Some("m7".into()),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not-a-cursor"), None);
        assert_eq!(Cursor::decode(""), None);
    }
}
