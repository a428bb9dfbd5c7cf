//! Arkiv's PostgreSQL access.
//!
//! - [`connect`] opens a pool from `[database]` settings.
//! - [`ensure_migrated`] refuses a database whose schema is behind, with a
//!   message that says what to run; every service calls it at start.
//! - [`migrate`] applies, rolls back and reports migrations (the CLI's
//!   `arkiv migrate`).
//! - [`entity`] holds a sea-orm entity for every table.
//!
//! Queries that touch a tenant's data always filter by tenant id; there is
//! no "all tenants" query outside operator paths.

pub mod accounts;
pub mod audit;
pub mod entity;
pub mod principals;

use std::time::Duration;

use arkiv_config::DatabaseSettings;
use arkiv_migration::Migrator;
pub use sea_orm;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Transient or configuration: PostgreSQL could not be reached.
    #[error("cannot connect to PostgreSQL (setting database.url): {0}")]
    Connect(#[source] DbErr),
    /// Permanent until an operator acts.
    #[error(
        "the database schema is not up to date: {} migration(s) pending ({}); run `arkiv migrate up`",
        pending.len(),
        pending.join(", ")
    )]
    NotMigrated { pending: Vec<String> },
    #[error("database error: {0}")]
    Query(#[from] DbErr),
}

/// Open a connection pool. Statement logging is off: statements carry
/// sealed blobs and ids only, but their volume would drown the logs.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbError> {
    let mut options = ConnectOptions::new(settings.url.expose_secret().to_owned());
    options
        .max_connections(settings.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options).await.map_err(DbError::Connect)?;
    db.execute_unprepared("SELECT 1")
        .await
        .map_err(DbError::Connect)?;
    Ok(db)
}

/// Fail unless every known migration has been applied.
pub async fn ensure_migrated(db: &DatabaseConnection) -> Result<(), DbError> {
    let pending = Migrator::get_pending_migrations(db).await?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(DbError::NotMigrated {
            pending: pending.iter().map(|m| m.name().to_owned()).collect(),
        })
    }
}

/// Migration commands, as `arkiv migrate` runs them.
pub mod migrate {
    use super::*;

    /// One migration and whether it has been applied.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct MigrationState {
        pub name: String,
        pub applied: bool,
    }

    /// Apply every pending migration; returns the names applied.
    pub async fn up(db: &DatabaseConnection) -> Result<Vec<String>, DbError> {
        let pending: Vec<String> = Migrator::get_pending_migrations(db)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        Migrator::up(db, None).await?;
        Ok(pending)
    }

    /// Roll back the last `steps` migrations (all of them with `None`);
    /// returns the names rolled back, most recent first.
    pub async fn down(db: &DatabaseConnection, steps: Option<u32>) -> Result<Vec<String>, DbError> {
        let mut applied: Vec<String> = Migrator::get_applied_migrations(db)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        applied.reverse();
        if let Some(steps) = steps {
            applied.truncate(steps as usize);
        }
        Migrator::down(db, steps).await?;
        Ok(applied)
    }

    pub async fn status(db: &DatabaseConnection) -> Result<Vec<MigrationState>, DbError> {
        let applied: Vec<String> = Migrator::get_applied_migrations(db)
            .await?
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        Ok(Migrator::migrations()
            .iter()
            .map(|m| MigrationState {
                name: m.name().to_owned(),
                applied: applied.iter().any(|a| a == m.name()),
            })
            .collect())
    }
}

/// PostgreSQL's SQLSTATE of a failed statement (`23503` a foreign-key
/// violation, `40P01` a deadlock, ...), if the database gave one.
pub fn sql_state(e: &DbErr) -> Option<String> {
    match e {
        DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.into_owned()),
        _ => None,
    }
}
