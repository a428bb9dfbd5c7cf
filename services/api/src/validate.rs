//! Input checks: each returns an error naming the field.

use arkiv_domain::Region;

use crate::error::ApiError;

/// A display name: 1 to 200 characters after trimming, no control characters.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > 200 {
        return Err(ApiError::invalid(field, "must be at most 200 characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

/// An e-mail address: one `@`, a non-empty local part, a dotted domain.
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim().to_lowercase();
    let ok = v.len() <= 254
        && !v.contains(char::is_whitespace)
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(v)
    } else {
        Err(ApiError::invalid(field, "is not an e-mail address"))
    }
}

/// A DNS domain name.
pub fn domain(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim().trim_end_matches('.').to_lowercase();
    let ok = v.len() <= 253
        && v.contains('.')
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        });
    if ok {
        Ok(v)
    } else {
        Err(ApiError::invalid(field, "is not a domain name"))
    }
}

pub fn region(field: &str, value: &str, configured: &[Region]) -> Result<Region, ApiError> {
    let region: Region = value
        .parse()
        .map_err(|e: arkiv_domain::RegionError| ApiError::invalid(field, e.to_string()))?;
    if configured.contains(&region) {
        Ok(region)
    } else {
        let list: Vec<&str> = configured.iter().map(Region::as_str).collect();
        Err(ApiError::invalid(
            field,
            format!(
                "is not a region of this deployment; choose one of: {}",
                list.join(", ")
            ),
        ))
    }
}

pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            field,
            format!("must be between {min} and {max}"),
        ))
    }
}

/// A console password: 12 to 256 characters.
pub fn password(field: &str, value: &str) -> Result<(), ApiError> {
    let n = value.chars().count();
    if (12..=256).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "must be 12 to 256 characters"))
    }
}

pub fn uuid(field: &str, value: &str) -> Result<uuid::Uuid, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::invalid(field, "is not an id"))
}

/// A point in time: RFC 3339 (`2026-11-24T09:30:00Z`) or a day
/// (`2026-11-24`, meaning its start, UTC).
pub fn instant(field: &str, value: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let v = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    match chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        Ok(day) => Ok(day.and_time(chrono::NaiveTime::MIN).and_utc()),
        Err(_) => Err(ApiError::invalid(
            field,
            "is not a date (2026-11-24) or an RFC 3339 time (2026-11-24T09:30:00Z)",
        )),
    }
}

/// A workload name.
pub fn workload(field: &str, value: &str) -> Result<arkiv_domain::Workload, ApiError> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::invalid(field, "must be mail, calendar or drive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Contoso ").unwrap(), "Contoso");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(201)).is_err());
        assert!(name("name", "a\u{7}b").is_err());
    }

    #[test]
    fn emails_and_domains() {
        assert_eq!(
            email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@x.com",
            "ada@",
            "ada@x",
            "a b@x.com",
            "a@@x.com",
            "a@.x.com",
        ] {
            assert!(email("email", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            domain("domain", "Contoso.example.").unwrap(),
            "contoso.example"
        );
        for bad in ["", "localhost", "-a.com", "a..com", "a_b.com"] {
            assert!(domain("domain", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn regions_must_be_configured() {
        let configured: Vec<Region> = vec!["eu".parse().unwrap(), "us".parse().unwrap()];
        assert!(region("region", "eu", &configured).is_ok());
        let err = region("region", "uk", &configured).unwrap_err();
        assert!(err.to_string().contains("eu, us"));
        assert!(region("region", "EU", &configured).is_err());
    }
}
