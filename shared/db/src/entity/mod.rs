//! sea-orm entities, one module per table of `migrations/sql`.
//!
//! Enumerations are `String` columns here; parse them into `arkiv_domain`
//! types at the repository layer.

pub mod api_tokens;
pub mod audit_log;
pub mod chunks;
pub mod connections;
pub mod consent_states;
pub mod cursors;
pub mod erasure_requests;
pub mod export_jobs;
pub mod item_versions;
pub mod items;
pub mod login_events;
pub mod packs;
pub mod partners;
pub mod principals;
pub mod protected_accounts;
pub mod restore_items;
pub mod restore_jobs;
pub mod retention_policies;
pub mod run_errors;
pub mod runs;
pub mod support_grants;
pub mod tenant_keys;
pub mod tenant_tombstones;
pub mod tenants;
pub mod upload_chunks;
pub mod version_chunks;
