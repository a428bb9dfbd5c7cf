//! The append-only, hash-chained audit log.
//!
//! Entries form chains: one per tenant (named by the tenant id) and one
//! `global` chain for actions outside any tenant. Each entry's hash is
//! `SHA-256(prev_hash || canonical entry)`, so editing, inserting or deleting
//! an entry breaks every hash after it, and [`verify`] finds the first break.
//! A trigger refuses UPDATE and DELETE on the table as well.
//!
//! Entries carry ids, action names and outcomes, never personal data.

use chrono::{SubsecRound, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryOrder, Set, Statement};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::entity::audit_log;

/// The chain of entries that belong to no tenant.
pub const GLOBAL_CHAIN: &str = "global";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// Who did it.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub id: Option<Uuid>,
    /// A role name, or `system` / `cli` for actions without a principal.
    pub role: Option<String>,
}

/// An entry to append.
#[derive(Clone, Debug)]
pub struct Entry {
    pub tenant_id: Option<Uuid>,
    pub actor: Actor,
    /// A dotted action name such as `tenant.create`.
    pub action: String,
    /// The id of what was acted on.
    pub target: Option<String>,
    pub outcome: Outcome,
    /// Ids and counts only.
    pub details: serde_json::Value,
}

impl Entry {
    pub fn new(action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            tenant_id: None,
            actor: Actor::default(),
            action: action.into(),
            target: None,
            outcome,
            details: json!({}),
        }
    }
}

fn chain_of(tenant_id: Option<Uuid>) -> String {
    tenant_id.map_or_else(|| GLOBAL_CHAIN.to_owned(), |t| t.to_string())
}

/// Append `entry` to its chain. Runs inside the caller's transaction, so the
/// entry commits (or not) with the change it records.
pub async fn append(txn: &DatabaseTransaction, entry: Entry) -> Result<audit_log::Model, DbErr> {
    let chain = chain_of(entry.tenant_id);
    // Serialise appends per chain until this transaction ends.
    txn.execute(Statement::from_sql_and_values(
        txn.get_database_backend(),
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7301))",
        [chain.clone().into()],
    ))
    .await?;
    let last = audit_log::Entity::find()
        .filter(audit_log::Column::Chain.eq(chain.as_str()))
        .order_by_desc(audit_log::Column::Seq)
        .one(txn)
        .await?;
    let (seq, prev_hash) = match last {
        Some(last) => (last.seq + 1, last.hash),
        None => (1, vec![0u8; 32]),
    };
    // PostgreSQL keeps microseconds; hash exactly what is stored.
    let at = Utc::now().trunc_subsecs(6);
    let mut model = audit_log::Model {
        id: 0,
        chain,
        seq,
        tenant_id: entry.tenant_id,
        at,
        actor_id: entry.actor.id,
        actor_role: entry.actor.role,
        action: entry.action,
        target: entry.target,
        outcome: entry.outcome.as_str().to_owned(),
        details: entry.details,
        prev_hash,
        hash: Vec::new(),
    };
    model.hash = entry_hash(&model).to_vec();
    let active = audit_log::ActiveModel {
        chain: Set(model.chain.clone()),
        seq: Set(model.seq),
        tenant_id: Set(model.tenant_id),
        at: Set(model.at),
        actor_id: Set(model.actor_id),
        actor_role: Set(model.actor_role.clone()),
        action: Set(model.action.clone()),
        target: Set(model.target.clone()),
        outcome: Set(model.outcome.clone()),
        details: Set(model.details.clone()),
        prev_hash: Set(model.prev_hash.clone()),
        hash: Set(model.hash.clone()),
        ..Default::default()
    };
    active.insert(txn).await
}

/// The hash of an entry: SHA-256 over its previous hash and a canonical
/// JSON rendering of every other field (objects with sorted keys).
pub fn entry_hash(entry: &audit_log::Model) -> [u8; 32] {
    let canonical = json!([
        entry.chain,
        entry.seq,
        entry.tenant_id,
        entry
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        entry.actor_id,
        entry.actor_role,
        entry.action,
        entry.target,
        entry.outcome,
        entry.details,
    ]);
    let mut hasher = Sha256::new();
    hasher.update(&entry.prev_hash);
    hasher.update(canonical.to_string().as_bytes());
    hasher.finalize().into()
}

/// The result of checking a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    /// The first entry (by sequence number) whose hash or link is wrong.
    pub first_broken: Option<i64>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Re-hash a tenant's chain (or the global one) from the start.
pub async fn verify<C: ConnectionTrait>(
    db: &C,
    tenant_id: Option<Uuid>,
) -> Result<Verification, DbErr> {
    let entries = audit_log::Entity::find()
        .filter(audit_log::Column::Chain.eq(chain_of(tenant_id)))
        .order_by_asc(audit_log::Column::Seq)
        .all(db)
        .await?;
    let mut expected_prev = vec![0u8; 32];
    for (expected_seq, entry) in (1..).zip(&entries) {
        let intact = entry.seq == expected_seq
            && entry.prev_hash == expected_prev
            && entry.hash == entry_hash(entry);
        if !intact {
            return Ok(Verification {
                entries: entries.len() as u64,
                first_broken: Some(entry.seq),
            });
        }
        expected_prev = entry.hash.clone();
    }
    Ok(Verification {
        entries: entries.len() as u64,
        first_broken: None,
    })
}
