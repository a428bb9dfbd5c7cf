//! Protected accounts: the mailboxes, drives and calendars of a connected
//! source, kept in step with its directory.
//!
//! Addresses are sealed under the service key (bound to the account id)
//! with a blind index for lookups, like principals' addresses.

use arkiv_crypto::{BlindIndexKey, ServiceKey};
use arkiv_domain::AccountId;
use chrono::Utc;
use sea_orm::entity::prelude::*;
use sea_orm::Set;

use crate::entity::protected_accounts;

const EMAIL_FIELD: &str = "account.email";

/// The keys accounts' addresses are protected with.
#[derive(Debug)]
pub struct AccountKeys<'a> {
    pub blind: &'a BlindIndexKey,
    pub seal: &'a ServiceKey,
}

pub fn email_hash(keys: &AccountKeys<'_>, email: &str) -> Vec<u8> {
    keys.blind
        .index(EMAIL_FIELD, email.trim().to_lowercase().as_bytes())
        .to_vec()
}

pub fn email(keys: &AccountKeys<'_>, account: &protected_accounts::Model) -> Option<String> {
    keys.seal
        .open(&account.email_sealed, account.id.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// A user as the source's directory lists it.
#[derive(Clone, Debug)]
pub struct SourceUser {
    pub external_id: String,
    pub email: String,
}

/// What a directory sync changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub added: u64,
    pub seen: u64,
    /// Known accounts the directory no longer lists.
    pub removed: u64,
}

/// Bring a connection's accounts in step with its directory: new users are
/// added (included if `include_new`), known ones are marked seen (and their
/// address updated if it changed), and those it no longer lists are marked
/// removed at the source (their backups stay; restoring to them is refused).
pub async fn sync<C: ConnectionTrait>(
    db: &C,
    keys: &AccountKeys<'_>,
    tenant_id: Uuid,
    connection_id: Uuid,
    users: &[SourceUser],
    include_new: bool,
) -> Result<SyncCounts, DbErr> {
    let now = Utc::now();
    let existing = protected_accounts::Entity::find()
        .filter(protected_accounts::Column::ConnectionId.eq(connection_id))
        .all(db)
        .await?;
    let mut counts = SyncCounts::default();
    for user in users {
        let email = user.email.trim().to_lowercase();
        let hash = email_hash(keys, &email);
        match existing.iter().find(|a| a.external_id == user.external_id) {
            Some(account) => {
                let mut row: protected_accounts::ActiveModel = account.clone().into();
                if account.email_hash != hash {
                    row.email_hash = Set(hash);
                    row.email_sealed = Set(keys.seal.seal(email.as_bytes(), account.id.as_bytes()));
                }
                row.last_seen_at = Set(now);
                row.removed_at_source = Set(None);
                row.update(db).await?;
                counts.seen += 1;
            }
            None => {
                let id = AccountId::new().as_uuid();
                protected_accounts::ActiveModel {
                    id: Set(id),
                    tenant_id: Set(tenant_id),
                    connection_id: Set(connection_id),
                    external_id: Set(user.external_id.clone()),
                    email_hash: Set(hash),
                    email_sealed: Set(keys.seal.seal(email.as_bytes(), id.as_bytes())),
                    included: Set(include_new),
                    excluded_at: Set((!include_new).then_some(now)),
                    purge_after: Set(None),
                    removed_at_source: Set(None),
                    discovered_at: Set(now),
                    last_seen_at: Set(now),
                }
                .insert(db)
                .await?;
                counts.added += 1;
            }
        }
    }
    for gone in existing.iter().filter(|a| {
        a.removed_at_source.is_none() && !users.iter().any(|u| u.external_id == a.external_id)
    }) {
        let mut row: protected_accounts::ActiveModel = gone.clone().into();
        row.removed_at_source = Set(Some(now));
        row.update(db).await?;
        counts.removed += 1;
    }
    Ok(counts)
}
