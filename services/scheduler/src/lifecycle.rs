//! One lifecycle pass: erasures, purges, inactivity, retention and garbage
//! collection, in that order (what must go soonest first).
//!
//! Only one scheduler instance at a time carries out a pass: it holds the
//! `lifecycle` lease in `scheduler_leases`, renewed at every pass and
//! taken over by another instance once it has expired.

use std::sync::Arc;

use arkiv_config::LifecycleSettings;
use arkiv_crypto::TransportKey;
use arkiv_queue::{Broker, Publisher};
use arkiv_store::ObjectStore;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;

use crate::gc::{self, Collected, Policy};
use crate::retention::{self, Expired};
use crate::tenants::{self, Purger};
use crate::LifecycleError;

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Pass {
    /// False when another instance holds the lease: nothing was done.
    pub led: bool,
    pub erasures: u64,
    pub tenants_purged: Vec<uuid::Uuid>,
    pub account_versions_purged: u64,
    pub tenants_notified: u64,
    pub tenants_ended: u64,
    pub expired: Expired,
    pub collected: Collected,
    pub objects_swept: u64,
}

pub struct Lifecycle {
    pub db: DatabaseConnection,
    pub store: ObjectStore,
    pub broker: Arc<Broker>,
    pub publisher: Publisher,
    pub transport: TransportKey,
    pub settings: LifecycleSettings,
    /// This instance's name in the lease.
    pub holder: String,
    /// When this instance last listed the tenants' prefixes for orphans.
    pub orphans_swept: std::sync::Mutex<Option<std::time::Instant>>,
}

const LEASE: &str = "lifecycle";

impl Lifecycle {
    /// One pass at `now` (the scheduler's clock), while this instance
    /// holds the lease. The lease is renewed while the pass runs; should it
    /// be lost all the same (the database unreachable for longer than the
    /// lease), the pass stops where it is: each step is idempotent, and the
    /// new holder carries on.
    pub async fn pass(&self, now: DateTime<Utc>) -> Result<Pass, LifecycleError> {
        if !self.lead().await? {
            return Ok(Pass::default());
        }
        tokio::select! {
            pass = self.steps(now) => pass,
            lost = self.keep_leading() => Err(lost),
        }
    }

    async fn steps(&self, now: DateTime<Utc>) -> Result<Pass, LifecycleError> {
        let s = &self.settings;
        let mut pass = Pass {
            led: true,
            ..Pass::default()
        };
        pass.erasures = crate::erasure::carry_out(&self.db, &self.store, s, now).await?;
        let purger = Purger {
            db: &self.db,
            store: &self.store,
            broker: &self.broker,
            publisher: &self.publisher,
            transport: &self.transport,
        };
        pass.tenants_purged = tenants::purge_due(&purger, now).await?;
        pass.account_versions_purged = tenants::purge_excluded_accounts(&self.db, now).await?;
        (pass.tenants_notified, pass.tenants_ended) = tenants::inactivity(
            &self.db,
            now,
            Duration::days(s.inactive_after_days as i64),
            Duration::days(s.inactive_notice_days as i64),
            Duration::hours(s.tenant_purge_grace_hours as i64),
        )
        .await?;
        pass.expired = retention::expire(&self.db, now).await?;
        let mut policy = Policy::routine(now, s);
        policy.sweep_orphans = self.orphans_due();
        pass.collected = gc::collect_all(&self.db, &self.store, &policy).await?;
        pass.objects_swept = tenants::final_sweeps(
            &self.db,
            &self.store,
            Duration::seconds(s.final_sweep_after_secs as i64),
        )
        .await?;
        Ok(pass)
    }

    /// Renew the lease a few times per its length; returns once it is lost.
    async fn keep_leading(&self) -> LifecycleError {
        let every = std::time::Duration::from_secs(self.settings.lease_secs.max(3) / 3);
        loop {
            tokio::time::sleep(every).await;
            match self.lead().await {
                Ok(true) => {}
                Ok(false) => return LifecycleError::Refused("the lifecycle lease was lost".into()),
                // Not lost yet: it holds until it runs out.
                Err(e) => tracing::warn!(error = %e, "the lifecycle lease could not be renewed"),
            }
        }
    }

    /// Whether to look for orphan objects in this pass: once per chunk
    /// grace, since what is younger is not collected anyway.
    fn orphans_due(&self) -> bool {
        let mut last = self.orphans_swept.lock().unwrap_or_else(|e| e.into_inner());
        let every = std::time::Duration::from_secs(self.settings.chunk_grace_secs);
        if last.is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        true
    }

    /// Take or renew the lease (real time: it is about processes, not the
    /// policy clock).
    async fn lead(&self) -> Result<bool, LifecycleError> {
        let ttl = self.settings.lease_secs.max(1) as i64;
        let got = self
            .db
            .execute(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO scheduler_leases (name, holder, expires_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3))
                 ON CONFLICT (name) DO UPDATE
                    SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
                  WHERE scheduler_leases.holder = EXCLUDED.holder
                     OR scheduler_leases.expires_at < now()",
                [
                    LEASE.into(),
                    self.holder.clone().into(),
                    (ttl as f64).into(),
                ],
            ))
            .await?
            .rows_affected();
        Ok(got == 1)
    }
}
