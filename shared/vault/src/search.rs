//! Finding versions in the index: search, an item's versions, and what an
//! account held at a point in time. Every query is scoped to one tenant
//! and filters on plaintext columns and blind indexes first; only the rows
//! it returns have their metadata opened (with the tenant's keys).

use arkiv_domain::Workload;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, Value};
use uuid::Uuid;

use crate::keyring::TenantContext;
use crate::metadata::{self, Describe, Metadata, MetadataError};

/// The most rows one search returns.
pub const MAX_LIMIT: u64 = 1000;

/// A search of one tenant's index. Every filter given must hold.
#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub account: Option<Uuid>,
    pub workload: Option<Workload>,
    /// Every word must be a word of the title (subject, event title or
    /// file name).
    pub text: Option<String>,
    /// The sender's (or organiser's) address, exactly.
    pub from: Option<String>,
    /// The item's own date is at or after this.
    pub after: Option<DateTime<Utc>>,
    /// The item's own date is before this.
    pub before: Option<DateTime<Utc>>,
    /// Only items deleted at the source.
    pub deleted: bool,
    pub limit: u64,
}

/// One version found, its metadata opened.
#[derive(Clone, Debug)]
pub struct Found {
    pub version_id: Uuid,
    pub item_id: Uuid,
    pub version: i32,
    pub account_id: Uuid,
    pub workload: String,
    pub captured_at: DateTime<Utc>,
    pub item_date: Option<DateTime<Utc>>,
    pub deleted_at_source: Option<DateTime<Utc>>,
    pub size: i64,
    pub metadata: Metadata,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

#[derive(Debug, FromQueryResult)]
struct Row {
    id: Uuid,
    item_id: Uuid,
    version: i32,
    account_id: Uuid,
    workload: String,
    captured_at: DateTime<Utc>,
    item_date: Option<DateTime<Utc>>,
    deleted_at_source: Option<DateTime<Utc>>,
    size: i64,
    metadata_sealed: Vec<u8>,
}

const COLUMNS: &str = "v.id, v.item_id, v.version, v.account_id, v.workload, v.captured_at, \
                       v.item_date, v.deleted_at_source, v.size, v.metadata_sealed";

impl Row {
    fn open(self, ctx: &TenantContext) -> Result<Found, MetadataError> {
        let metadata = metadata::open(&ctx.keys.data, ctx.tenant, self.id, &self.metadata_sealed)?;
        Ok(Found {
            version_id: self.id,
            item_id: self.item_id,
            version: self.version,
            account_id: self.account_id,
            workload: self.workload,
            captured_at: self.captured_at,
            item_date: self.item_date,
            deleted_at_source: self.deleted_at_source,
            size: self.size,
            metadata,
        })
    }
}

/// A SQL statement's text and parameters, built a condition at a time.
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Append `fragment`, where `$` stands for the next parameter.
    fn push(&mut self, fragment: &str, value: impl Into<Value>) {
        self.values.push(value.into());
        let n = self.values.len();
        self.text.push_str(&fragment.replace('$', &format!("${n}")));
    }

    fn raw(&mut self, fragment: &str) {
        self.text.push_str(fragment);
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, self.text, self.values)
    }
}

/// The latest version of each item of the tenant that matches `query`,
/// newest item date first.
pub async fn search(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    query: &SearchQuery,
) -> Result<Vec<Found>, SearchError> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM item_versions v
           JOIN items i ON i.id = v.item_id AND i.latest_version = v.version
          WHERE "
    ));
    sql.push("v.tenant_id = $", ctx.tenant);
    if let Some(account) = query.account {
        sql.push(" AND v.account_id = $", account);
    }
    if let Some(workload) = query.workload {
        sql.push(" AND v.workload = $", workload.as_str());
    }
    let mut terms: Vec<i64> = Vec::new();
    if let Some(text) = &query.text {
        terms.extend(metadata::words(text).map(|w| metadata::word_term(&ctx.search, &w)));
    }
    if !terms.is_empty() {
        sql.push(" AND v.terms @> $::bigint[]", terms);
    }
    if let Some(from) = &query.from {
        sql.push(
            " AND v.from_hash = $",
            metadata::from_hash(&ctx.search, from),
        );
    }
    if let Some(after) = query.after {
        sql.push(" AND v.item_date >= $", after);
    }
    if let Some(before) = query.before {
        sql.push(" AND v.item_date < $", before);
    }
    if query.deleted {
        sql.raw(" AND v.deleted_at_source IS NOT NULL");
    }
    // DESC with the index's own null ordering, so the date index serves
    // the order and the limit stops the scan early.
    sql.push(
        " ORDER BY v.item_date DESC LIMIT $",
        query.limit.clamp(1, MAX_LIMIT) as i64,
    );
    let rows = Row::find_by_statement(sql.statement()).all(db).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let hit = row.open(ctx)?;
        // A 64-bit term may collide: the opened title has the last word.
        if query
            .text
            .as_deref()
            .is_none_or(|t| hit.metadata.matches_text(t))
        {
            found.push(hit);
        }
    }
    Ok(found)
}

/// Every version of an item, oldest first; `None` if the tenant has no
/// such item.
pub async fn versions(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    item: Uuid,
) -> Result<Vec<Found>, SearchError> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM item_versions v WHERE "));
    sql.push("v.tenant_id = $", ctx.tenant);
    sql.push(" AND v.item_id = $ ORDER BY v.version", item);
    let rows = Row::find_by_statement(sql.statement()).all(db).await?;
    rows.into_iter()
        .map(|r| r.open(ctx).map_err(SearchError::from))
        .collect()
}

/// One version by id, within the tenant.
pub async fn version(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    version: Uuid,
) -> Result<Option<Found>, SearchError> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM item_versions v WHERE "));
    sql.push("v.tenant_id = $", ctx.tenant);
    sql.push(" AND v.id = $", version);
    match Row::find_by_statement(sql.statement()).one(db).await? {
        Some(r) => Ok(Some(r.open(ctx)?)),
        None => Ok(None),
    }
}

/// What an account's workload held at `at`: for each item, the last
/// version captured by then, unless the item had been deleted at the
/// source by then. `folder` keeps only mail in that folder (by path) or
/// below it, and drive items at or below that path. Ordered by item date.
pub async fn as_of(
    db: &impl ConnectionTrait,
    ctx: &TenantContext,
    account: Uuid,
    workload: Workload,
    folder: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Vec<Found>, SearchError> {
    let mut sql = Sql::new(&format!(
        "SELECT latest.* FROM (SELECT DISTINCT ON (v.item_id) {COLUMNS} FROM item_versions v WHERE "
    ));
    sql.push("v.tenant_id = $", ctx.tenant);
    sql.push(" AND v.account_id = $", account);
    sql.push(" AND v.workload = $", workload.as_str());
    sql.push(" AND v.captured_at <= $", at);
    sql.raw(" ORDER BY v.item_id, v.version DESC) latest");
    sql.push(
        " WHERE latest.deleted_at_source IS NULL OR latest.deleted_at_source > $",
        at,
    );
    sql.raw(" ORDER BY latest.item_date NULLS FIRST, latest.id");
    let rows = Row::find_by_statement(sql.statement()).all(db).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let hit = row.open(ctx)?;
        if folder.is_none_or(|f| in_folder(&hit.metadata, f)) {
            found.push(hit);
        }
    }
    Ok(found)
}

/// Whether an item sits in `folder` or below it: a mail folder path
/// (`Inbox/Projects`) or a drive path (`/Documents`), compared without
/// regard to case or surrounding slashes.
pub fn in_folder(metadata: &Metadata, folder: &str) -> bool {
    let want = folder.trim_matches('/').to_lowercase();
    if want.is_empty() {
        return true;
    }
    let have = match (&metadata.folder_path, &metadata.file_path) {
        (Some(mail), _) => mail.trim_matches('/').to_lowercase(),
        (None, Some(file)) => file.trim_matches('/').to_lowercase(),
        (None, None) => return false,
    };
    have == want || have.starts_with(&format!("{want}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_match_themselves_and_what_is_below_them() {
        let mail = |p: &str| Metadata {
            folder_path: Some(p.into()),
            ..Metadata::default()
        };
        assert!(in_folder(&mail("Inbox"), "inbox"));
        assert!(in_folder(&mail("Inbox/Projects"), "Inbox"));
        assert!(!in_folder(&mail("Inbox2"), "Inbox"));
        assert!(!in_folder(&mail("Archive/Inbox"), "Inbox"));
        let file = Metadata {
            file_path: Some("/Documents/Q3/report.xlsx".into()),
            ..Metadata::default()
        };
        assert!(in_folder(&file, "/Documents"));
        assert!(in_folder(&file, "Documents/Q3/"));
        assert!(!in_folder(&file, "/Doc"));
    }
}
