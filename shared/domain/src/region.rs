use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A data-residency region (`eu`, `uk`, `us`, ...). A tenant's data is
/// written only to its region's bucket and processed only by that region's
/// workers.
///
/// Which regions exist is configuration (`s3.buckets`); this type only
/// guarantees the name is well-formed: 2 to 16 lowercase ASCII letters or
/// digits, usable in bucket names, queue names and object keys alike.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid region {0:?}: a region is 2 to 16 lowercase letters or digits, such as \"eu\"")]
pub struct RegionError(pub String);

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (2..=16).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(RegionError(s.to_owned()))
        }
    }
}

impl TryFrom<String> for Region {
    type Error = RegionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_short_lowercase_names() {
        for ok in ["eu", "uk", "us", "ca", "au", "eu2"] {
            assert_eq!(ok.parse::<Region>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_names_that_would_break_buckets_or_keys() {
        for bad in ["", "e", "EU", "eu-west", "eu/1", "a-very-long-region-name"] {
            assert!(bad.parse::<Region>().is_err(), "{bad:?} must be rejected");
        }
    }
}
