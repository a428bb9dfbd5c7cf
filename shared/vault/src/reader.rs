//! Streams a version's content back: chunk by chunk, in order, each one's
//! GCM tag and keyed hash verified. Adjacent chunks of one pack are read
//! with one ranged GET. Memory stays bounded by one read run.

use std::sync::Arc;

use arkiv_store::ObjectStore;
use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement};
use uuid::Uuid;

use crate::keyring::{KeyRing, TenantContext};
use crate::sealed::open_chunk;
use crate::VaultError;

/// Largest ranged GET the reader issues.
const MAX_RUN: u64 = 8 * 1024 * 1024;
/// Ranged GETs in flight at once.
const READ_AHEAD: usize = 4;

#[derive(Debug, FromQueryResult)]
struct Located {
    chunk_id: Vec<u8>,
    object_key: String,
    pack_offset: i64,
    stored_size: i32,
    plain_size: i32,
}

/// Consecutive chunks stored back to back in one pack.
#[derive(Debug)]
struct Run {
    object_key: String,
    offset: u64,
    len: u64,
    chunks: Vec<Located>,
}

#[derive(Debug, Clone)]
pub struct Reader {
    db: DatabaseConnection,
    store: ObjectStore,
    keys: Arc<KeyRing>,
}

#[derive(Debug, FromQueryResult)]
struct VersionRow {
    tenant_id: Uuid,
    size: i64,
}

impl Reader {
    pub fn new(db: DatabaseConnection, store: ObjectStore, keys: Arc<KeyRing>) -> Self {
        Self { db, store, keys }
    }

    /// The plaintext size of a version.
    pub async fn size(&self, version: Uuid) -> Result<u64, VaultError> {
        Ok(self.version(version).await?.size as u64)
    }

    async fn version(&self, version: Uuid) -> Result<VersionRow, VaultError> {
        VersionRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT tenant_id, size FROM item_versions WHERE id = $1",
            [version.into()],
        ))
        .one(&self.db)
        .await?
        .ok_or(VaultError::NoSuchVersion(version))
    }

    /// The content of `version`, as a stream of verified plaintext pieces.
    pub async fn stream(
        &self,
        version: Uuid,
    ) -> Result<impl Stream<Item = Result<Bytes, VaultError>> + Send + 'static, VaultError> {
        let row = self.version(version).await?;
        let ctx = self.keys.get(row.tenant_id).await?;
        let located = Located::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT c.id AS chunk_id, p.object_key, c.pack_offset, c.stored_size, c.plain_size
               FROM version_chunks vc
               JOIN chunks c ON c.tenant_id = vc.tenant_id AND c.id = vc.chunk_id
               JOIN packs p ON p.id = c.pack_id
              WHERE vc.version_id = $1
              ORDER BY vc.seq",
            [version.into()],
        ))
        .all(&self.db)
        .await?;
        let runs = runs(located);
        let store = self.store.clone();
        // A few ranged GETs in flight, results still in order.
        Ok(stream::iter(runs)
            .map(move |run| read_run(store.clone(), ctx.clone(), run))
            .buffered(READ_AHEAD)
            .flat_map(|result| match result {
                Ok(pieces) => stream::iter(pieces.into_iter().map(Ok).collect::<Vec<_>>()),
                Err(e) => stream::iter(vec![Err(e)]),
            }))
    }

    /// The whole content in memory (tests and small items).
    pub async fn read_all(&self, version: Uuid) -> Result<Vec<u8>, VaultError> {
        let mut out = Vec::new();
        let mut s = std::pin::pin!(self.stream(version).await?);
        while let Some(piece) = s.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out)
    }
}

fn runs(located: Vec<Located>) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for chunk in located {
        let offset = chunk.pack_offset as u64;
        let len = chunk.stored_size as u64;
        match runs.last_mut() {
            Some(run)
                if run.object_key == chunk.object_key
                    && run.offset + run.len == offset
                    && run.len + len <= MAX_RUN =>
            {
                run.len += len;
                run.chunks.push(chunk);
            }
            _ => runs.push(Run {
                object_key: chunk.object_key.clone(),
                offset,
                len,
                chunks: vec![chunk],
            }),
        }
    }
    runs
}

async fn read_run(
    store: ObjectStore,
    ctx: Arc<TenantContext>,
    run: Run,
) -> Result<Vec<Bytes>, VaultError> {
    let bytes = store
        .get_range(&ctx.region, &run.object_key, run.offset, run.len)
        .await?;
    let mut at = 0usize;
    let mut out = Vec::with_capacity(run.chunks.len());
    for chunk in &run.chunks {
        let end = at + chunk.stored_size as usize;
        let corrupt = |reason: String| VaultError::Corrupt {
            pack: run.object_key.clone(),
            chunk: hex(&chunk.chunk_id),
            reason,
        };
        let id: [u8; 32] = chunk
            .chunk_id
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("the index holds a malformed chunk id".into()))?;
        let stored = bytes
            .get(at..end)
            .ok_or_else(|| corrupt("the pack is shorter than the index says".into()))?;
        let plain = open_chunk(
            &ctx.keys,
            ctx.tenant,
            &id,
            chunk.plain_size as usize,
            stored,
        )
        .map_err(|e| corrupt(e.to_string()))?;
        metrics::counter!("arkiv_vault_bytes_read_total").increment(plain.len() as u64);
        out.push(Bytes::from(plain));
        at = end;
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
