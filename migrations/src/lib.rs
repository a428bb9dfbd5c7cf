//! Arkiv's PostgreSQL schema as sea-orm migrations.
//!
//! Each migration is plain SQL in `sql/` (reviewed as SQL, with its
//! comments), applied by sea-orm-migration, which records what ran in
//! `seaql_migrations`. Every migration has a working `down`.
//!
//! Apply with `arkiv migrate up`; services refuse to start on a database
//! with pending migrations (see `arkiv_db::ensure_migrated`).

use sea_orm_migration::prelude::*;

mod m20261122_000001_initial;
mod m20261123_000002_upload_chunks;
mod m20261123_000003_backup_runs;
mod m20261123_000004_lean_index;
mod m20261201_000005_search_and_restore;
mod m20261201_000006_lifecycle;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial::Migration),
            Box::new(m20261123_000002_upload_chunks::Migration),
            Box::new(m20261123_000003_backup_runs::Migration),
            Box::new(m20261123_000004_lean_index::Migration),
            Box::new(m20261201_000005_search_and_restore::Migration),
            Box::new(m20261201_000006_lifecycle::Migration),
        ]
    }
}

/// A migration written as an `up` and a `down` SQL script.
async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}
