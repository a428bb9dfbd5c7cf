//! Backup runs, the parts that do not depend on the provider.
//!
//! - [`jobs`]: job messages (run requests, restore jobs) published as JSON
//!   and served one task each, unacknowledged until done.
//! - [`request`]: a run request, published by the API (and the scheduler)
//!   to `{prefix}.runs.{provider}` and consumed by that provider's connector.
//! - [`lease`]: a connection is worked on by one connector instance at a
//!   time; a crashed instance's lease expires and another takes over.
//! - [`cursor`]: delta links, history ids and page tokens per account,
//!   workload and scope, stored only after their page is confirmed.
//! - [`run`]: carrying out a run whatever the provider: lease, walk
//!   (through the provider's [`run::Backup`]), settle, sweep, finish.
//! - [`record`]: a run's state and counters in `runs`, its errors in
//!   `run_errors`, and waiting until the worker has settled its items.
//! - [`sink`]: publishing a page of work items with confirms, counted
//!   against the run.
//! - [`restore`]: restore jobs: their queue, their sealed request, and
//!   carrying one out through a provider's [`restore::RestoreTarget`].

pub mod cursor;
pub mod jobs;
pub mod lease;
pub mod record;
pub mod request;
pub mod restore;
pub mod run;
pub mod sink;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Queue(#[from] arkiv_queue::QueueError),
    #[error(transparent)]
    Vault(#[from] arkiv_vault::VaultError),
    #[error("run {0} does not exist")]
    UnknownRun(uuid::Uuid),
}
