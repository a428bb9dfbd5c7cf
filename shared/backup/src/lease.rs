//! Connection leases in PostgreSQL: `connections.lease_owner` and
//! `lease_expires_at`. Taking a lease is one conditional UPDATE, so two
//! instances can never both hold it; the holder renews it while it works.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use uuid::Uuid;

/// A lease this instance holds on a connection.
#[derive(Clone, Debug)]
pub struct Lease {
    db: DatabaseConnection,
    pub connection_id: Uuid,
    pub owner: String,
    pub ttl: Duration,
}

impl Lease {
    /// Take the lease if it is free, expired or already ours.
    pub async fn try_acquire(
        db: &DatabaseConnection,
        connection_id: Uuid,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, DbErr> {
        let taken = db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE connections
                    SET lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3)
                  WHERE id = $1
                    AND (lease_owner IS NULL OR lease_expires_at < now() OR lease_owner = $2)",
                [connection_id.into(), owner.into(), ttl.as_secs_f64().into()],
            ))
            .await?
            .rows_affected();
        Ok((taken == 1).then(|| Lease {
            db: db.clone(),
            connection_id,
            owner: owner.to_owned(),
            ttl,
        }))
    }

    /// Extend the lease; `false` if another instance has taken it since
    /// (this one stalled past its expiry) and work must stop.
    pub async fn renew(&self) -> Result<bool, DbErr> {
        let renewed = self
            .db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE connections SET lease_expires_at = now() + make_interval(secs => $3)
                  WHERE id = $1 AND lease_owner = $2",
                [
                    self.connection_id.into(),
                    self.owner.clone().into(),
                    self.ttl.as_secs_f64().into(),
                ],
            ))
            .await?
            .rows_affected();
        Ok(renewed == 1)
    }

    pub async fn release(self) -> Result<(), DbErr> {
        self.db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE connections SET lease_owner = NULL, lease_expires_at = NULL
                  WHERE id = $1 AND lease_owner = $2",
                [self.connection_id.into(), self.owner.clone().into()],
            ))
            .await?;
        Ok(())
    }
}
