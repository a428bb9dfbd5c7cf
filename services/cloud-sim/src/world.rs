//! The simulated clouds' data: Microsoft 365 tenants and Google Workspace
//! domains, with change logs that delta, history and sync tokens read.
//!
//! One [`World`] sits behind a mutex; handlers lock it briefly and never
//! across an await. Every change takes the next value of the world's global
//! sequence ([`World::next_seq`]), and each collection (a mail folder, a
//! calendar, a drive, a mailbox's history) keeps an append-only
//! [`ChangeLog`] of `(seq, item id, removed)`: a delta round from `since` to
//! `upto` is the last entry per item in that range.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::content::Content;

/// An append-only log of changes to one collection.
#[derive(Clone, Debug, Default)]
pub struct ChangeLog {
    entries: Vec<(u64, String, bool)>,
}

impl ChangeLog {
    pub fn upsert(&mut self, seq: u64, id: &str) {
        self.entries.push((seq, id.to_owned(), false));
    }

    pub fn remove(&mut self, seq: u64, id: &str) {
        self.entries.push((seq, id.to_owned(), true));
    }

    /// The last change of each item in `(since, upto]`, in sequence order:
    /// `(seq, id, removed)`.
    pub fn changes(&self, since: u64, upto: u64) -> Vec<(u64, String, bool)> {
        let mut last: BTreeMap<&str, (u64, bool)> = BTreeMap::new();
        for (seq, id, removed) in &self.entries {
            if *seq > since && *seq <= upto {
                last.insert(id, (*seq, *removed));
            }
        }
        let mut out: Vec<_> = last
            .into_iter()
            .map(|(id, (seq, removed))| (seq, id.to_owned(), removed))
            .collect();
        out.sort();
        out
    }
}

#[derive(Debug)]
pub struct World {
    seq: u64,
    /// Bumped by `/_sim/expire-cursors`: every token minted before is invalid.
    pub epoch: u64,
    pub app: M365App,
    /// Arkiv's Google service account; each domain's admin delegates to it.
    pub service_account: ServiceAccount,
    pub m365: Vec<M365Tenant>,
    pub google: Vec<GoogleDomain>,
}

impl World {
    pub fn new(app: M365App, service_account: ServiceAccount) -> Self {
        Self {
            seq: 1000,
            epoch: 1,
            app,
            service_account,
            m365: Vec::new(),
            google: Vec::new(),
        }
    }

    /// The next value of the global change sequence.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn current_seq(&self) -> u64 {
        self.seq
    }

    pub fn tenant(&self, id_or_domain: &str) -> Option<&M365Tenant> {
        self.m365
            .iter()
            .find(|t| t.id == id_or_domain || t.domain.eq_ignore_ascii_case(id_or_domain))
    }

    pub fn tenant_mut(&mut self, id: &str) -> Option<&mut M365Tenant> {
        self.m365.iter_mut().find(|t| t.id == id)
    }

    pub fn domain(&self, domain: &str) -> Option<&GoogleDomain> {
        self.google
            .iter()
            .find(|d| d.domain.eq_ignore_ascii_case(domain))
    }

    pub fn domain_mut(&mut self, domain: &str) -> Option<&mut GoogleDomain> {
        self.google
            .iter_mut()
            .find(|d| d.domain.eq_ignore_ascii_case(domain))
    }
}

/// Arkiv's multi-tenant app registration, as the simulated Entra ID knows it.
#[derive(Clone, Debug)]
pub struct M365App {
    pub client_id: String,
    pub client_secret: String,
}

// ---------------------------------------------------------------- Microsoft

#[derive(Debug)]
pub struct M365Tenant {
    pub id: String,
    pub domain: String,
    /// Whether an admin consented to Arkiv's app; tokens of a tenant that
    /// never did carry no roles, and Graph answers 403.
    pub consented: bool,
    /// A decision queued by `/_sim/consent` for the next consent prompt.
    pub next_consent: Option<bool>,
    pub users: BTreeMap<String, M365User>,
}

impl M365Tenant {
    /// A user by id or userPrincipalName.
    pub fn user_key(&self, id_or_upn: &str) -> Option<String> {
        if self.users.contains_key(id_or_upn) {
            return Some(id_or_upn.to_owned());
        }
        self.users
            .values()
            .find(|u| u.upn.eq_ignore_ascii_case(id_or_upn))
            .map(|u| u.id.clone())
    }
}

#[derive(Debug)]
pub struct M365User {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    /// Users without an Exchange mailbox fail on mail endpoints.
    pub has_mailbox: bool,
    pub folders: BTreeMap<String, MailFolder>,
    /// Folder creations, renames and deletions (mailFolders/delta).
    pub folder_log: ChangeLog,
    pub messages: BTreeMap<String, Message>,
    pub events: BTreeMap<String, Event>,
    pub calendar_log: ChangeLog,
    pub drive: Drive,
}

#[derive(Debug)]
pub struct MailFolder {
    pub id: String,
    pub display_name: String,
    pub parent_id: String,
    /// `inbox`, `sentitems`, ... for the folders Exchange names.
    pub well_known: Option<&'static str>,
    pub log: ChangeLog,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub folder_id: String,
    pub internet_message_id: String,
    pub subject: String,
    pub from: (String, String),
    pub to: Vec<(String, String)>,
    pub received: DateTime<Utc>,
    pub sent: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub is_read: bool,
    pub is_draft: bool,
    pub categories: Vec<String>,
    pub has_attachments: bool,
    pub change_key: String,
    pub body_preview: String,
    pub mime: Content,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub id: String,
    pub ical_uid: String,
    pub subject: String,
    pub body_html: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub location: String,
    pub organizer: (String, String),
    pub attendees: Vec<(String, String)>,
    /// Weekly recurrence: `Some(occurrences)` makes this a series master.
    pub weekly_occurrences: Option<u32>,
    /// Occurrence start → its exception (changed subject / cancelled).
    pub exceptions: BTreeMap<DateTime<Utc>, EventException>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub change_key: String,
    /// The client's `transactionId` at creation: a second create with the
    /// same one returns this event instead of making another.
    pub transaction_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct EventException {
    pub subject: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Default)]
pub struct Drive {
    pub id: String,
    pub root_id: String,
    pub items: BTreeMap<String, DriveItem>,
    pub log: ChangeLog,
}

#[derive(Clone, Debug)]
pub struct DriveItem {
    pub id: String,
    pub name: String,
    /// Empty for the root.
    pub parent_id: String,
    pub folder: bool,
    pub content: Content,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// Changes on any change.
    pub etag_version: u64,
    /// Changes on content changes.
    pub ctag_version: u64,
    pub deleted: bool,
}

// ------------------------------------------------------------------- Google

#[derive(Debug)]
pub struct GoogleDomain {
    pub domain: String,
    pub customer_id: String,
    pub admin: String,
    /// Domain-wide delegation the admin granted: client id → scopes.
    pub delegations: BTreeMap<String, BTreeSet<String>>,
    pub users: BTreeMap<String, GoogleUser>,
    /// Every Drive file of the domain: My Drives and shared drives.
    pub files: BTreeMap<String, DriveFile>,
    pub shared_drives: BTreeMap<String, SharedDrive>,
    /// Drive changes of the whole domain; who sees an entry is decided when
    /// reading, from the file's drive and owner.
    pub drive_log: Vec<(u64, String, DriveScope)>,
    /// Per-domain generation of page tokens; tokens of older ones are invalid.
    pub drive_token_floor: u64,
}

/// Where a Drive change happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriveScope {
    MyDrive { owner: String },
    Shared { drive_id: String },
}

#[derive(Clone, Debug)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub client_id: String,
    pub private_key_id: String,
    pub private_key_pem: String,
    pub public_key_pem: String,
}

#[derive(Debug)]
pub struct GoogleUser {
    pub id: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub is_admin: bool,
    pub messages: BTreeMap<String, GmailMessage>,
    pub labels: BTreeMap<String, GmailLabel>,
    pub history: Vec<HistoryRecord>,
    /// History ids at or below this are too old (404).
    pub history_floor: u64,
    pub calendars: BTreeMap<String, Calendar>,
}

#[derive(Clone, Debug)]
pub struct GmailMessage {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    pub internal_date_ms: i64,
    pub history_id: u64,
    pub snippet: String,
    pub raw: Content,
}

#[derive(Clone, Debug)]
pub struct GmailLabel {
    pub id: String,
    pub name: String,
    pub system: bool,
}

#[derive(Clone, Debug)]
pub struct HistoryRecord {
    pub id: u64,
    pub message_id: String,
    pub thread_id: String,
    pub kind: HistoryKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryKind {
    MessageAdded {
        label_ids: Vec<String>,
    },
    MessageDeleted,
    LabelAdded {
        label_ids: Vec<String>,
        now: Vec<String>,
    },
    LabelRemoved {
        label_ids: Vec<String>,
        now: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub struct DriveFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    /// `None` for a file in its owner's My Drive.
    pub drive_id: Option<String>,
    pub owner: String,
    pub content: Content,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub version: u64,
    pub trashed: bool,
    /// Deleted for good: changes report it removed.
    pub deleted: bool,
    pub app_properties: BTreeMap<String, String>,
}

impl DriveFile {
    pub fn is_folder(&self) -> bool {
        self.mime_type == "application/vnd.google-apps.folder"
    }

    /// Google Docs editor files: exported, never downloaded.
    pub fn is_google_doc(&self) -> bool {
        self.mime_type.starts_with("application/vnd.google-apps.") && !self.is_folder()
    }
}

#[derive(Clone, Debug)]
pub struct SharedDrive {
    pub id: String,
    pub name: String,
    pub root_id: String,
    pub members: BTreeSet<String>,
}

#[derive(Debug)]
pub struct Calendar {
    pub id: String,
    pub summary: String,
    pub primary: bool,
    pub time_zone: String,
    pub events: BTreeMap<String, GEvent>,
    pub log: ChangeLog,
}

#[derive(Clone, Debug)]
pub struct GEvent {
    pub id: String,
    pub ical_uid: String,
    pub status: String,
    pub summary: String,
    pub description: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub all_day: bool,
    pub recurrence: Vec<String>,
    /// For an exception of a recurring event.
    pub recurring_event_id: Option<String>,
    pub original_start: Option<DateTime<Utc>>,
    pub organizer: String,
    pub attendees: Vec<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub sequence: u32,
    pub event_type: String,
}
