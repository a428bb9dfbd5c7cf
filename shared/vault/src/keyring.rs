//! Tenant keys, unwrapped from `tenant_keys` with the master key and kept
//! in memory for a short while, so a busy worker does not unwrap per chunk
//! and a purged tenant's keys do not outlive the purge by long.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arkiv_crypto::{MasterKey, SearchKey, TenantKeys, WrappedTenantKeys};
use arkiv_db::entity::{tenant_keys, tenants};
use arkiv_db::sea_orm::{DatabaseConnection, EntityTrait};
use arkiv_domain::Region;
use uuid::Uuid;

use crate::VaultError;

/// A tenant's keys and region.
#[derive(Debug)]
pub struct TenantContext {
    pub tenant: Uuid,
    pub region: Region,
    pub keys: TenantKeys,
    /// Derived from `keys.dedup` once, for the search index.
    pub search: SearchKey,
}

#[derive(Debug)]
pub struct KeyRing {
    db: DatabaseConnection,
    master: MasterKey,
    ttl: Duration,
    cache: Mutex<HashMap<Uuid, (Instant, Arc<TenantContext>)>>,
}

impl KeyRing {
    pub fn new(db: DatabaseConnection, master: MasterKey, ttl: Duration) -> Self {
        Self {
            db,
            master,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The tenant's keys and region; [`VaultError::UnknownTenant`] when the
    /// tenant or its keys are gone (never created, or purged).
    pub async fn get(&self, tenant: Uuid) -> Result<Arc<TenantContext>, VaultError> {
        if let Some((at, ctx)) = self.lock().get(&tenant) {
            if at.elapsed() < self.ttl {
                return Ok(ctx.clone());
            }
        }
        let row = tenant_keys::Entity::find_by_id(tenant)
            .find_also_related(tenants::Entity)
            .one(&self.db)
            .await?;
        let Some((keys, Some(t))) = row else {
            self.lock().remove(&tenant);
            return Err(VaultError::UnknownTenant(tenant));
        };
        let wrapped = WrappedTenantKeys {
            data: keys.wrapped_data_key,
            dedup: keys.wrapped_dedup_key,
        };
        let keys = TenantKeys::unwrap(&self.master, &wrapped, tenant.as_bytes()).map_err(|e| {
            VaultError::Keys {
                tenant,
                reason: e.to_string(),
            }
        })?;
        let region = t
            .region
            .parse()
            .map_err(|e: arkiv_domain::RegionError| VaultError::Keys {
                tenant,
                reason: e.to_string(),
            })?;
        let ctx = Arc::new(TenantContext {
            tenant,
            region,
            search: keys.dedup.search_key(),
            keys,
        });
        self.lock().insert(tenant, (Instant::now(), ctx.clone()));
        Ok(ctx)
    }

    /// Forget a tenant's keys now (after a purge).
    pub fn forget(&self, tenant: Uuid) {
        self.lock().remove(&tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Instant, Arc<TenantContext>)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
