//! Exports of one account's workload (GDPR portability), streamed with
//! bounded memory whatever their size:
//!
//! - mail: `mbox` (one mboxrd file) or `eml` / `zip` (a ZIP of one `.eml`
//!   per message);
//! - calendar: `ics` (one iCalendar file, RFC 5545) or `zip` (one `.ics`
//!   per event);
//! - drive: `zip` (the original files at their paths).
//!
//! Every ZIP ends with `manifest.json` and `manifest.csv` listing each
//! item: its id and version, its path in the archive, size, SHA-256 and
//! what it is. Content comes from [`arkiv_vault::reader::Reader`], chunk by
//! chunk, verified.

mod ics;
mod mbox;
mod write;

pub use ics::{google_event_to_vevent, graph_event_to_vevent, Calendar};
pub use mbox::MboxrdQuoter;
pub use write::{export, Progress, Summary, What};

use arkiv_domain::Workload;

/// What an export is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Eml,
    Mbox,
    Ics,
    Zip,
}

impl Format {
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Eml => "eml",
            Format::Mbox => "mbox",
            Format::Ics => "ics",
            Format::Zip => "zip",
        }
    }

    /// The format, if it suits the workload; otherwise what does.
    pub fn parse(s: &str, workload: Workload) -> Result<Self, String> {
        let format = match s.trim() {
            "eml" => Format::Eml,
            "mbox" => Format::Mbox,
            "ics" => Format::Ics,
            "zip" => Format::Zip,
            other => return Err(format!("unknown format {other:?}")),
        };
        let fits = matches!(
            (workload, format),
            (Workload::Mail, Format::Eml | Format::Mbox | Format::Zip)
                | (Workload::Calendar, Format::Ics | Format::Zip)
                | (Workload::Drive, Format::Zip)
        );
        if fits {
            Ok(format)
        } else {
            Err(format!(
                "{} cannot be exported as {}: use {}",
                workload.as_str(),
                format.as_str(),
                match workload {
                    Workload::Mail => "eml (a ZIP of messages), mbox or zip",
                    Workload::Calendar => "ics or zip",
                    Workload::Drive => "zip",
                }
            ))
        }
    }

    /// Whether the export is a ZIP archive.
    pub fn is_zip(&self) -> bool {
        matches!(self, Format::Eml | Format::Zip)
    }

    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Mbox => "application/mbox",
            Format::Ics => "text/calendar; charset=utf-8",
            Format::Eml | Format::Zip => "application/zip",
        }
    }

    /// The file name's extension.
    pub fn extension(&self) -> &'static str {
        match self {
            Format::Mbox => "mbox",
            Format::Ics => "ics",
            Format::Eml | Format::Zip => "zip",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading item {item} from the backup: {reason}")]
    Content { item: uuid::Uuid, reason: String },
    #[error("writing the export: {0}")]
    Write(String),
}

/// A name safe in any file system: no separators, reserved or control
/// characters, at most 100 characters, never empty.
pub fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').to_owned();
    if cleaned.is_empty() {
        "untitled".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fit_their_workloads() {
        assert_eq!(Format::parse("mbox", Workload::Mail), Ok(Format::Mbox));
        assert_eq!(Format::parse("ics", Workload::Calendar), Ok(Format::Ics));
        assert_eq!(Format::parse("zip", Workload::Drive), Ok(Format::Zip));
        let err = Format::parse("mbox", Workload::Drive).unwrap_err();
        assert!(err.contains("use zip"), "{err}");
        assert!(Format::parse("pst", Workload::Mail).is_err());
    }

    #[test]
    fn names_are_safe() {
        assert_eq!(safe_name("Re: Q3/Q4 <draft>?"), "Re_ Q3_Q4 _draft__");
        assert_eq!(safe_name("  ..  "), "untitled");
        assert_eq!(safe_name(&"x".repeat(300)).len(), 100);
    }
}
