//! One region's work queue → sealed packs in S3 → the index in PostgreSQL.
//!
//! Deliveries are taken in batches (until the pack target size, the pack's
//! maximum age or the prefetch is reached). A batch is processed as:
//!
//! 1. open each work item (transport key) and find its tenant's keys;
//! 2. cut content into chunks, compute their keyed ids, and look up which
//!    the tenant already has (deduplication);
//! 3. seal the new chunks and append them to one pack per tenant, then PUT
//!    the packs to the tenant's region bucket;
//! 4. in one transaction: the packs, the chunks, the staged chunks of large
//!    uploads, and the items and versions (a new version only when content
//!    or metadata changed);
//! 5. failed deliveries go to the retry queue, or to the parking lot after
//!    the last attempt, each with its reason; then every delivery of the
//!    batch is acked.
//!
//! Steps 1-3 (opening, sealing and uploading: CPU and S3) of one batch
//! overlap with steps 4 and 5 (PostgreSQL and RabbitMQ) of the batch before
//! it: a preparing stage hands sealed batches to a committing stage, which
//! settles them one at a time, in delivery order. Chunks sealed by a batch
//! still being committed count as known to the batch behind it, so the two
//! never store the same chunk twice; should the batch ahead fail, the one
//! that leaned on its chunks is retried too.
//!
//! A crash anywhere before step 5 leaves the batch unacked, so RabbitMQ
//! redelivers it; the redelivery finds its chunks in the index and its
//! versions unchanged, and writes nothing new. A pack PUT whose transaction
//! never committed is an unreferenced object, which garbage collection
//! removes; no index row ever names a pack that is not wholly in S3.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arkiv_crypto::{KeyedHash, TransportKey};
use arkiv_queue::topology::{self, RegionQueues};
use arkiv_queue::{Broker, Consumer, Content, Delivery, Publisher, WorkItem};
use arkiv_store::ObjectStore;
use arkiv_vault::keyring::{KeyRing, TenantContext};
use arkiv_vault::metadata::BlindIndex;
use arkiv_vault::{chunking, pack_key, sealed, VaultError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use lapin::options::BasicAckOptions;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, FromQueryResult,
    Statement, TransactionTrait, Value,
};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// A batch is sealed once no delivery has come for this long. Under load
/// deliveries come far closer together, so batches still fill to the pack
/// target.
const IDLE_FLUSH: Duration = Duration::from_millis(50);

/// How a worker batches and retries.
#[derive(Clone, Debug)]
pub struct Tuning {
    pub prefetch: u16,
    pub pack_target_bytes: usize,
    pub pack_max_age: Duration,
    pub max_attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Queue(#[from] arkiv_queue::QueueError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] arkiv_store::StoreError),
    #[error("database: {0}")]
    Db(#[from] DbErr),
    /// The runtime is shutting down (or sealing panicked): the batch is
    /// not acked and will be redelivered.
    #[error("sealing was interrupted: {0}")]
    Interrupted(String),
}

/// A region's consumer.
#[derive(Debug)]
pub struct Pipeline {
    pub db: DatabaseConnection,
    pub store: ObjectStore,
    pub broker: Arc<Broker>,
    pub keys: Arc<KeyRing>,
    pub transport: TransportKey,
    pub queues: RegionQueues,
    pub tuning: Tuning,
}

/// A delivery that could not be stored, and why.
struct Failure {
    index: usize,
    reason: String,
}

/// A batch through steps 1-3, on its way to the committing stage.
struct Prepared {
    sequence: u64,
    batch: Vec<Delivery>,
    started: Instant,
    /// Batches ahead whose chunks this one takes as stored.
    leans_on: HashSet<u64>,
    sealed: Result<Sealed, PipelineError>,
}

/// What a batch will write: its packs (already in S3), their chunks, and
/// the decoded jobs for the index.
struct Sealed {
    failures: Vec<Failure>,
    jobs: Vec<(usize, Job)>,
    new_chunks: Vec<(Uuid, NewChunk)>,
    packs: Vec<(Arc<TenantContext>, Uuid, Bytes)>,
}

/// Chunks sealed by batches not yet committed, and the batch of each.
#[derive(Default)]
struct InFlight(Mutex<HashMap<(Uuid, KeyedHash), u64>>);

impl InFlight {
    fn find(&self, tenant: Uuid, ids: &[KeyedHash]) -> HashMap<KeyedHash, u64> {
        let map = self.0.lock().expect("in-flight lock");
        ids.iter()
            .filter_map(|id| map.get(&(tenant, *id)).map(|batch| (*id, *batch)))
            .collect()
    }

    fn claim(&self, batch: u64, tenant: Uuid, ids: &[KeyedHash]) {
        let mut map = self.0.lock().expect("in-flight lock");
        map.extend(ids.iter().map(|id| ((tenant, *id), batch)));
    }

    /// The batch is committed, or failed: either way its chunks are no
    /// longer in flight.
    fn release(&self, batch: u64) {
        self.0
            .lock()
            .expect("in-flight lock")
            .retain(|_, b| *b != batch);
    }
}

/// A chunk to be written: its id, plaintext and where it will live.
struct NewChunk {
    id: KeyedHash,
    pack: Uuid,
    offset: usize,
    stored_size: usize,
    plain_size: usize,
}

/// The chunks of one item's content, in order: (id, plaintext size).
type ChunkList = Vec<(KeyedHash, usize)>;

/// Every chunk met in a batch, once, in the order first met, so that an
/// item's chunks lie back to back in its pack and read back in one range.
#[derive(Default)]
struct Seen {
    plain: HashMap<(Uuid, KeyedHash), Bytes>,
    order: Vec<(Uuid, KeyedHash)>,
}

impl Seen {
    fn add(&mut self, tenant: Uuid, id: KeyedHash, piece: Bytes) {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.plain.entry((tenant, id)) {
            slot.insert(piece);
            self.order.push((tenant, id));
        }
    }
}

/// What a decoded delivery asks for.
#[allow(clippy::large_enum_variant)] // a batch holds a few hundred at most
enum Job {
    Upsert {
        ctx: Arc<TenantContext>,
        item: arkiv_queue::ItemKey,
        change_marker: Option<String>,
        metadata: arkiv_queue::Metadata,
        /// Inline content's chunks; `None` for a chunked upload.
        chunks: Option<ChunkList>,
        upload: Option<(Uuid, u32, u64)>,
        origin: arkiv_queue::Origin,
    },
    Stage {
        ctx: Arc<TenantContext>,
        account: Option<Uuid>,
        upload_id: Uuid,
        first: u32,
        chunks: ChunkList,
    },
    Deleted {
        ctx: Arc<TenantContext>,
        item: arkiv_queue::ItemKey,
        change_marker: Option<String>,
        at: DateTime<Utc>,
        origin: arkiv_queue::Origin,
    },
    Sweep {
        ctx: Arc<TenantContext>,
        scope: arkiv_queue::ItemKey,
        keep_seen_by: Option<Uuid>,
        at: DateTime<Utc>,
        origin: arkiv_queue::Origin,
    },
    /// Work of a purged tenant, still in flight when it was purged: acked
    /// and dropped, never stored.
    Discard,
}

impl Pipeline {
    /// Consume until `stop` turns true, then finish the batches in hand.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) -> Result<(), PipelineError> {
        let mut consumer = self
            .broker
            .consume(&self.queues.work, self.tuning.prefetch)
            .await?;
        let publisher = self.broker.publisher().await?;
        tracing::info!(queue = %self.queues.work, "consuming");
        let in_flight = InFlight::default();
        let (sealed_tx, mut sealed_rx) = mpsc::channel::<Prepared>(1);
        let preparing = async {
            let mut sequence = 0;
            loop {
                let first = tokio::select! {
                    d = consumer.next() => d?,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let batch = self.gather(&mut consumer, first).await?;
                sequence += 1;
                let prepared = self.prepare(sequence, batch, &in_flight).await;
                if sealed_tx.send(prepared).await.is_err() {
                    break;
                }
            }
            drop(sealed_tx);
            Ok::<_, PipelineError>(())
        };
        let committing = async {
            let mut failed = HashSet::new();
            while let Some(prepared) = sealed_rx.recv().await {
                self.settle(&publisher, prepared, &in_flight, &mut failed)
                    .await?;
            }
            Ok::<_, PipelineError>(())
        };
        tokio::try_join!(preparing, committing)?;
        Ok(())
    }

    /// Deliveries up to the pack target size, the pack's maximum age, or
    /// half the prefetch, so that the next batch can fill while this one
    /// is committed; or until the stream pauses for [`IDLE_FLUSH`], so that
    /// the end of a run (or a lone change) is not held back for the whole
    /// maximum age.
    async fn gather(
        &self,
        consumer: &mut Consumer,
        first: Delivery,
    ) -> Result<Vec<Delivery>, PipelineError> {
        let deadline = tokio::time::Instant::now() + self.tuning.pack_max_age;
        let most = usize::from(self.tuning.prefetch / 2).max(1);
        let mut bytes = first.data.len();
        let mut batch = vec![first];
        while batch.len() < most && bytes < self.tuning.pack_target_bytes {
            let until = deadline.min(tokio::time::Instant::now() + IDLE_FLUSH);
            match tokio::time::timeout_at(until, consumer.next()).await {
                Ok(d) => {
                    let d = d?;
                    bytes += d.data.len();
                    batch.push(d);
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    /// Commit a prepared batch and settle every delivery in it.
    async fn settle(
        &self,
        publisher: &Publisher,
        prepared: Prepared,
        in_flight: &InFlight,
        failed_batches: &mut HashSet<u64>,
    ) -> Result<(), PipelineError> {
        let started = prepared.started;
        let sequence = prepared.sequence;
        let batch_len = prepared.batch.len();
        let leaned_on_failure = prepared.leans_on.iter().any(|s| failed_batches.contains(s));
        let sealed = match prepared.sealed {
            Ok(sealed) if !leaned_on_failure => Ok(sealed),
            Ok(_) => Err("a batch this one relies on for chunks failed".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        // A batch whose chunks garbage collection deleted between the
        // lookup and the commit (the database refuses its references: a
        // foreign-key violation) did nothing wrong: it is retried without
        // counting an attempt, and then stores those chunks anew.
        let mut collected = false;
        let outcome = match sealed {
            Ok(sealed) => self.commit(sealed).await.map_err(|e| {
                collected = is_concurrent_conflict(&e);
                e.to_string()
            }),
            Err(reason) => Err(reason),
        };
        in_flight.release(sequence);
        let failures = match outcome {
            Ok(failures) => failures,
            Err(reason) => {
                // Nothing of the batch is durable: every delivery retries.
                tracing::warn!(error = %reason, deliveries = batch_len, collected, "batch failed; retrying it");
                failed_batches.insert(sequence);
                (0..batch_len)
                    .map(|index| Failure {
                        index,
                        reason: reason.clone(),
                    })
                    .collect()
            }
        };
        // A batch leans on at most the two ahead of it (one in the hand-over,
        // one committing), so older failures no longer matter.
        failed_batches.retain(|s| sequence.saturating_sub(*s) < 2);
        for failure in &failures {
            self.fail(
                publisher,
                &prepared.batch[failure.index],
                &failure.reason,
                !collected,
            )
            .await?;
        }
        if let Some(last) = prepared.batch.last() {
            last.acker
                .ack(BasicAckOptions { multiple: true })
                .await
                .map_err(arkiv_queue::QueueError::from)?;
        }
        // From the batch in hand to its ack: how long a delivery waits on
        // sealing, the S3 writes and the index transaction.
        metrics::histogram!("arkiv_worker_ack_latency_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("arkiv_worker_deliveries_total").increment(batch_len as u64);
        Ok(())
    }

    /// Send a failed delivery to the retry queue, or park it after its last
    /// attempt. Both publishes are confirmed before the delivery is acked.
    async fn fail(
        &self,
        publisher: &Publisher,
        delivery: &Delivery,
        reason: &str,
        count_attempt: bool,
    ) -> Result<(), PipelineError> {
        let attempts = topology::attempts(&delivery.properties) + u32::from(count_attempt);
        let properties = topology::failed_properties(attempts, reason);
        let parked = attempts >= self.tuning.max_attempts;
        let queue = if parked {
            &self.queues.parking
        } else {
            &self.queues.retry
        };
        publisher
            .publish("", queue, &delivery.data, properties)
            .await?;
        if parked {
            tracing::warn!(attempts, reason, "delivery parked");
            metrics::counter!("arkiv_worker_parked_total").increment(1);
        } else {
            tracing::info!(attempts, reason, "delivery will be retried");
            metrics::counter!("arkiv_worker_retried_total").increment(1);
        }
        Ok(())
    }

    /// Open, deduplicate and seal a batch (steps 1-3).
    async fn prepare(&self, sequence: u64, batch: Vec<Delivery>, in_flight: &InFlight) -> Prepared {
        let started = Instant::now();
        let mut leans_on = HashSet::new();
        let sealed = self.seal(sequence, &batch, in_flight, &mut leans_on).await;
        Prepared {
            sequence,
            batch,
            started,
            leans_on,
            sealed,
        }
    }

    async fn seal(
        &self,
        sequence: u64,
        batch: &[Delivery],
        in_flight: &InFlight,
        leans_on: &mut HashSet<u64>,
    ) -> Result<Sealed, PipelineError> {
        let mut failures = Vec::new();
        let mut jobs: Vec<(usize, Job)> = Vec::new();
        let mut seen = Seen::default();
        for (index, delivery) in batch.iter().enumerate() {
            match self.decode(delivery, &mut seen).await {
                Ok(job) => jobs.push((index, job)),
                Err(reason) => failures.push(Failure { index, reason }),
            }
        }

        // Which chunks each tenant lacks, sealed into one pack per tenant.
        let mut by_tenant: BTreeMap<Uuid, Vec<KeyedHash>> = BTreeMap::new();
        for (tenant, id) in &seen.order {
            by_tenant.entry(*tenant).or_default().push(*id);
        }
        let mut contexts: HashMap<Uuid, Arc<TenantContext>> = HashMap::new();
        for (_, job) in &jobs {
            if let Job::Upsert { ctx, .. } | Job::Stage { ctx, .. } = job {
                contexts.insert(ctx.tenant, ctx.clone());
            }
        }
        let mut new_chunks: Vec<(Uuid, NewChunk)> = Vec::new();
        let mut packs: Vec<(Arc<TenantContext>, Uuid, Bytes)> = Vec::new();
        for (tenant, ids) in by_tenant {
            // Batches ahead first, then the index: a batch that commits in
            // between is then seen in one or the other.
            let ahead = in_flight.find(tenant, &ids);
            let known = existing_chunks(&self.db, tenant, &ids).await?;
            let missing: Vec<KeyedHash> = ids
                .into_iter()
                .filter(|id| match ahead.get(id) {
                    _ if known.contains(id) => false,
                    Some(batch) => {
                        leans_on.insert(*batch);
                        false
                    }
                    None => true,
                })
                .collect();
            metrics::counter!("arkiv_worker_dedup_hits_total").increment(known.len() as u64);
            if missing.is_empty() {
                continue;
            }
            in_flight.claim(sequence, tenant, &missing);
            let ctx = contexts[&tenant].clone();
            let pack_id = Uuid::now_v7();
            let inputs: Vec<(KeyedHash, Bytes)> = missing
                .iter()
                .map(|id| (*id, seen.plain[&(tenant, *id)].clone()))
                .collect();
            let (body, chunks) = seal_pack(&ctx, pack_id, inputs).await?;
            new_chunks.extend(chunks.into_iter().map(|c| (tenant, c)));
            packs.push((ctx, pack_id, Bytes::from(body)));
        }
        // The packs are wholly in S3 before any index row names them. They
        // are put here, not by the committing stage, so that the batch
        // ahead's transaction and this batch's uploads overlap.
        let puts = packs.iter().map(|(ctx, pack_id, body)| {
            let key = pack_key(ctx.tenant, *pack_id);
            let body = body.clone();
            async move { self.store.put(&ctx.region, &key, body).await }
        });
        for result in futures::future::join_all(puts).await {
            result?;
        }
        metrics::counter!("arkiv_worker_packs_written_total").increment(packs.len() as u64);
        metrics::counter!("arkiv_worker_chunks_written_total").increment(new_chunks.len() as u64);
        metrics::counter!("arkiv_worker_bytes_stored_total")
            .increment(packs.iter().map(|(_, _, b)| b.len() as u64).sum());
        Ok(Sealed {
            failures,
            jobs,
            new_chunks,
            packs,
        })
    }

    /// Store a sealed batch (step 4); returns the deliveries that failed on
    /// their own.
    async fn commit(&self, sealed: Sealed) -> Result<Vec<Failure>, PipelineError> {
        let Sealed {
            mut failures,
            jobs,
            new_chunks,
            packs,
        } = sealed;
        let txn = self.db.begin().await?;
        for (ctx, pack_id, body) in &packs {
            let count = new_chunks
                .iter()
                .filter(|(_, c)| c.pack == *pack_id)
                .count();
            exec(
                &txn,
                "INSERT INTO packs (id, tenant_id, region, object_key, size, chunk_count, live_bytes)
                 VALUES ($1, $2, $3, $4, $5, $6, $5)",
                vec![
                    (*pack_id).into(),
                    ctx.tenant.into(),
                    ctx.region.as_str().into(),
                    pack_key(ctx.tenant, *pack_id).into(),
                    (body.len() as i64).into(),
                    (count as i32).into(),
                ],
            )
            .await?;
        }
        // New chunks are written with the versions that reference them, so
        // that each gets its reference count as it is inserted (see
        // `write_chunks`); what no version of this batch references (a large
        // upload's staged chunks, say) is written after the rounds.
        let mut unwritten: HashMap<(Uuid, KeyedHash), NewChunk> = new_chunks
            .into_iter()
            .map(|(tenant, c)| ((tenant, c.id), c))
            .collect();

        // Staged chunks of large uploads first: a commit later in this
        // batch may need them.
        let mut entries = Vec::new();
        let mut staged_rows = Vec::new();
        let mut staged_chunks = Vec::new();
        for (index, job) in jobs {
            match job {
                Job::Stage {
                    ctx,
                    account,
                    upload_id,
                    first,
                    chunks,
                } => staged_rows.extend(chunks.into_iter().enumerate().map(|(i, (id, size))| {
                    if let Some(chunk) = unwritten.remove(&(ctx.tenant, id)) {
                        staged_chunks.push((ctx.tenant, chunk, 0));
                    }
                    vec![
                        ctx.tenant.into(),
                        upload_id.into(),
                        (first as i32 + i as i32).into(),
                        id.to_vec().into(),
                        (size as i32).into(),
                        account.into(),
                    ]
                })),
                other => entries.push((index, other)),
            }
        }
        // upload_chunks names its chunks (a foreign key): they go first,
        // counted when the upload's version is written.
        write_chunks(&txn, staged_chunks).await?;
        insert_rows(
            &txn,
            "INSERT INTO upload_chunks (tenant_id, upload_id, seq, chunk_id, plain_size, account_id) VALUES",
            "ON CONFLICT (tenant_id, upload_id, seq) DO NOTHING",
            staged_rows.into_iter(),
        )
        .await?;

        // Then the items, in rounds in which each item appears once, so that
        // each round is a handful of set-based statements.
        let mut round: Vec<(usize, Change)> = Vec::new();
        let mut runs = RunTally::default();
        let mut keys: HashSet<arkiv_queue::ItemKey> = HashSet::new();
        for (index, job) in entries {
            let change = match job {
                Job::Upsert {
                    ctx,
                    item,
                    change_marker,
                    metadata,
                    chunks,
                    upload,
                    origin,
                } => {
                    let chunks = match (chunks, upload) {
                        (Some(chunks), _) => Ok(chunks),
                        (None, Some((upload_id, count, size))) => {
                            staged(&txn, ctx.tenant, upload_id, count, size).await?
                        }
                        (None, None) => Err("no content".to_owned()),
                    };
                    match chunks {
                        Ok(chunks) => Change::Upsert(Box::new(Upsert::new(
                            ctx,
                            item,
                            change_marker,
                            &metadata,
                            chunks,
                            origin,
                        ))),
                        Err(reason) => {
                            failures.push(Failure { index, reason });
                            continue;
                        }
                    }
                }
                Job::Deleted {
                    ctx,
                    item,
                    change_marker,
                    at,
                    origin,
                } => Change::Deleted(Box::new(Deletion {
                    container_hash: container_hash(&ctx, &origin),
                    item,
                    change_marker,
                    at,
                    run_id: origin.run_id,
                })),
                Job::Sweep {
                    ctx,
                    scope,
                    keep_seen_by,
                    at,
                    origin,
                } => Change::Sweep(Box::new(Sweep {
                    container_hash: container_hash(&ctx, &origin),
                    scope,
                    keep_seen_by,
                    at,
                    run_id: origin.run_id,
                })),
                Job::Discard => continue,
                Job::Stage { .. } => unreachable!("staged above"),
            };
            // A sweep judges what came before it, so it starts a round.
            if matches!(change, Change::Sweep(_)) || !keys.insert(change.key().clone()) {
                apply(&txn, std::mem::take(&mut round), &mut runs, &mut unwritten).await?;
                keys.clear();
                keys.insert(change.key().clone());
            }
            round.push((index, change));
        }
        apply(&txn, round, &mut runs, &mut unwritten).await?;
        write_chunks(
            &txn,
            unwritten
                .into_iter()
                .map(|((tenant, _), c)| (tenant, c, 0))
                .collect(),
        )
        .await?;
        // A chunk another worker stored at the same moment kept its place
        // there (`write_chunks`): its copy here is dead from the start, and
        // the pack's live bytes must say so for garbage collection.
        if !packs.is_empty() {
            let ids: Vec<Uuid> = packs.iter().map(|(_, id, _)| *id).collect();
            exec(
                &txn,
                "UPDATE packs p SET live_bytes = coalesce(
                     (SELECT sum(stored_size) FROM chunks c WHERE c.pack_id = p.id), 0)
                  WHERE p.id = ANY($1)",
                vec![ids.into()],
            )
            .await?;
        }
        runs.record(&txn).await?;
        txn.commit().await?;
        Ok(failures)
    }

    /// Open a delivery and cut its content; chunks' plaintext goes to
    /// `seen`. `Err` is the reason this delivery cannot be stored.
    async fn decode(&self, delivery: &Delivery, seen: &mut Seen) -> Result<Job, String> {
        let work = WorkItem::open(&delivery.data, &self.transport).map_err(|e| e.to_string())?;
        metrics::counter!("arkiv_worker_bytes_in_total").increment(delivery.data.len() as u64);
        let tenant = work.tenant_id();
        let ctx = match self.keys.get(tenant).await {
            Ok(ctx) => ctx,
            Err(VaultError::UnknownTenant(_)) if self.purged(tenant).await => {
                metrics::counter!("arkiv_worker_discarded_total", "reason" => "tenant purged")
                    .increment(1);
                return Ok(Job::Discard);
            }
            Err(e) => return Err(e.to_string()),
        };
        if ctx.region != self.queues.region {
            return Err(format!(
                "tenant {tenant} is in region {}, not {}",
                ctx.region, self.queues.region
            ));
        }
        // Chunks already cut (by the connector, or by `chunking::split`
        // here) get their ids, and their plaintext joins the batch's.
        let mut record = |pieces: &mut dyn Iterator<Item = Bytes>| -> ChunkList {
            pieces
                .map(|piece| {
                    let id = sealed::chunk_id(&ctx.keys, &piece);
                    let len = piece.len();
                    seen.add(tenant, id, piece);
                    (id, len)
                })
                .collect()
        };
        Ok(match work {
            WorkItem::Upsert {
                item,
                change_marker,
                metadata,
                content,
                origin,
            } => {
                let (chunks, upload) = match content {
                    Content::Inline(data) => {
                        let sizes = chunking::Sizes::of(item.workload);
                        let mut pieces = chunking::split(&data, sizes)
                            .into_iter()
                            .map(|piece| data.slice_ref(piece));
                        (Some(record(&mut pieces)), None)
                    }
                    Content::Chunked {
                        upload_id,
                        chunks,
                        size,
                    } => (None, Some((upload_id, chunks, size))),
                };
                metrics::counter!("arkiv_worker_items_total").increment(1);
                Job::Upsert {
                    ctx,
                    item,
                    change_marker,
                    metadata,
                    chunks,
                    upload,
                    origin,
                }
            }
            WorkItem::Chunk {
                upload_id,
                account_id,
                first,
                pieces,
                ..
            } => {
                let chunks = record(&mut pieces.into_iter());
                Job::Stage {
                    ctx,
                    account: account_id,
                    upload_id,
                    first,
                    chunks,
                }
            }
            WorkItem::Deleted {
                item,
                change_marker,
                deleted_at,
                origin,
            } => Job::Deleted {
                ctx,
                item,
                change_marker,
                at: deleted_at,
                origin,
            },
            WorkItem::Sweep {
                scope,
                keep_seen_by,
                swept_at,
                origin,
            } => Job::Sweep {
                ctx,
                scope,
                keep_seen_by,
                at: swept_at,
                origin,
            },
        })
    }
}

/// A failure caused by a concurrent change, not by the batch: a chunk
/// collected meanwhile (foreign-key violation, 23503) or a deadlock with
/// the lifecycle's updates of the same chunks (40P01).
fn is_concurrent_conflict(e: &PipelineError) -> bool {
    let PipelineError::Db(e) = e else {
        return false;
    };
    matches!(arkiv_db::sql_state(e).as_deref(), Some("23503" | "40P01"))
}

impl Pipeline {
    /// Whether the tenant was purged (its tombstone is written with the
    /// destruction of its keys).
    async fn purged(&self, tenant: Uuid) -> bool {
        self.db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM tenant_tombstones WHERE tenant_id = $1",
                [tenant.into()],
            ))
            .await
            .is_ok_and(|row| row.is_some())
    }
}

/// Seal chunks back to back into one pack body. Compressing and sealing
/// is most of a batch's CPU: the chunks are sealed in as many runs, side by
/// side, as there are cores, each on a blocking thread.
async fn seal_pack(
    ctx: &Arc<TenantContext>,
    pack: Uuid,
    inputs: Vec<(KeyedHash, Bytes)>,
) -> Result<(Vec<u8>, Vec<NewChunk>), PipelineError> {
    let lanes = std::thread::available_parallelism().map_or(1, |n| n.get());
    let total: usize = inputs.iter().map(|(_, p)| p.len()).sum();
    // Runs of about equal plaintext, in order.
    let mut runs: Vec<Vec<(KeyedHash, Bytes)>> = vec![Vec::new()];
    let mut in_run = 0;
    for input in inputs {
        if in_run * lanes >= total && runs.len() < lanes {
            runs.push(Vec::new());
            in_run = 0;
        }
        in_run += input.1.len();
        runs.last_mut().expect("a run").push(input);
    }
    let sealing = runs.into_iter().map(|run| {
        let ctx = ctx.clone();
        tokio::task::spawn_blocking(move || {
            run.into_iter()
                .map(|(id, plaintext)| {
                    let stored = sealed::seal_chunk(&ctx.keys, ctx.tenant, &id, &plaintext);
                    (id, plaintext.len(), stored)
                })
                .collect::<Vec<_>>()
        })
    });
    let mut body = Vec::with_capacity(total);
    let mut chunks = Vec::new();
    for run in futures::future::join_all(sealing).await {
        let run = run.map_err(|e| PipelineError::Interrupted(e.to_string()))?;
        for (id, plain_size, stored) in run {
            chunks.push(NewChunk {
                id,
                pack,
                offset: body.len(),
                stored_size: stored.len(),
                plain_size,
            });
            body.extend_from_slice(&stored);
        }
    }
    Ok((body, chunks))
}

#[derive(Debug, FromQueryResult)]
struct ChunkIdRow {
    id: Vec<u8>,
}

async fn existing_chunks(
    db: &DatabaseConnection,
    tenant: Uuid,
    ids: &[KeyedHash],
) -> Result<HashSet<KeyedHash>, DbErr> {
    // One array parameter, cheaper to bind and plan than a long IN list,
    // and one primary-key probe per id whatever the statistics say. Both
    // `id = ANY($2)` and a plain join let the planner scan all the tenant's
    // chunks instead (seen while a tenant's first backup grows the table
    // faster than it is analysed, and in the generic plan a pooled
    // connection keeps); the subquery that cannot be pulled up (OFFSET 0)
    // leaves it only the probe.
    let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let rows = ChunkIdRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT c.id FROM unnest($2::bytea[]) AS wanted (id)
           CROSS JOIN LATERAL (SELECT id FROM chunks
                                WHERE tenant_id = $1 AND id = wanted.id OFFSET 0) c",
        [tenant.into(), ids.into()],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| KeyedHash::try_from(r.id).ok())
        .collect())
}

async fn exec(txn: &DatabaseTransaction, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
    Ok(txn
        .execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .rows_affected())
}

/// A multi-row INSERT, in groups that stay under PostgreSQL's parameter limit.
async fn insert_rows(
    txn: &DatabaseTransaction,
    head: &str,
    tail: &str,
    rows: impl Iterator<Item = Vec<Value>>,
) -> Result<(), DbErr> {
    let rows: Vec<Vec<Value>> = rows.collect();
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    for group in rows.chunks((60_000 / width).max(1)) {
        let (tuples, values) = values_list(group.iter().cloned(), &[]);
        exec(txn, &format!("{head} {tuples} {tail}"), values).await?;
    }
    Ok(())
}

/// `($1, $2), ($3, $4), ...` for rows of values, each placeholder cast to
/// its column's type in `casts` when given (a bare `VALUES` list needs them).
fn values_list(rows: impl Iterator<Item = Vec<Value>>, casts: &[&str]) -> (String, Vec<Value>) {
    let mut tuples = Vec::new();
    let mut values = Vec::new();
    for row in rows {
        let marks: Vec<String> = (0..row.len())
            .map(|i| match casts.get(i) {
                Some(cast) => format!("${}::{cast}", values.len() + i + 1),
                None => format!("${}", values.len() + i + 1),
            })
            .collect();
        tuples.push(format!("({})", marks.join(", ")));
        values.extend(row);
    }
    (tuples.join(", "), values)
}

#[derive(Debug, FromQueryResult)]
struct StagedRow {
    chunk_id: Vec<u8>,
    plain_size: i32,
}

/// The chunks of a committed upload, once every one has arrived.
async fn staged(
    txn: &DatabaseTransaction,
    tenant: Uuid,
    upload_id: Uuid,
    count: u32,
    size: u64,
) -> Result<Result<ChunkList, String>, DbErr> {
    let rows = StagedRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT chunk_id, plain_size FROM upload_chunks
          WHERE tenant_id = $1 AND upload_id = $2 ORDER BY seq",
        [tenant.into(), upload_id.into()],
    ))
    .all(txn)
    .await?;
    let total: u64 = rows.iter().map(|r| r.plain_size as u64).sum();
    if rows.len() != count as usize || total != size {
        // Chunk messages still on their way (or retried behind the commit).
        return Ok(Err(format!(
            "upload {upload_id} incomplete: {} of {count} chunks, {total} of {size} bytes",
            rows.len()
        )));
    }
    Ok(Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.chunk_id.try_into().ok()?, r.plain_size as usize)))
        .collect()))
}

/// One item's change in a round.
enum Change {
    Upsert(Box<Upsert>),
    Deleted(Box<Deletion>),
    Sweep(Box<Sweep>),
}

impl Change {
    fn key(&self) -> &arkiv_queue::ItemKey {
        match self {
            Change::Upsert(u) => &u.item,
            Change::Deleted(d) => &d.item,
            Change::Sweep(s) => &s.scope,
        }
    }
}

/// Items gone from a container without a deletion of their own (see
/// [`WorkItem::Sweep`]).
struct Sweep {
    scope: arkiv_queue::ItemKey,
    keep_seen_by: Option<Uuid>,
    at: DateTime<Utc>,
    container_hash: Option<Vec<u8>>,
    run_id: Option<Uuid>,
}

/// An item deleted at the source (or removed from the container named).
struct Deletion {
    item: arkiv_queue::ItemKey,
    change_marker: Option<String>,
    at: DateTime<Utc>,
    container_hash: Option<Vec<u8>>,
    run_id: Option<Uuid>,
}

/// A container id as a keyed hash under the tenant's dedup key.
fn container_hash(ctx: &TenantContext, origin: &arkiv_queue::Origin) -> Option<Vec<u8>> {
    origin.container.as_ref().map(|c| {
        let mut hasher = ctx.keys.dedup.hasher();
        hasher.update(b"arkiv container ");
        hasher.update(c.as_bytes());
        hasher.finalize().as_bytes().to_vec()
    })
}

/// What a batch did for each backup run: items settled, versions created
/// and their bytes; added to the runs' counters in the batch's transaction.
#[derive(Default)]
struct RunTally {
    runs: BTreeMap<Uuid, (i64, i64, i64)>,
    items: Vec<(Uuid, arkiv_queue::ItemKey)>,
}

impl RunTally {
    fn settled(
        &mut self,
        run: Option<Uuid>,
        item: &arkiv_queue::ItemKey,
        new_version_bytes: Option<i64>,
    ) {
        if let Some(run) = run {
            self.items.push((run, item.clone()));
            let entry = self.runs.entry(run).or_default();
            entry.0 += 1;
            if let Some(bytes) = new_version_bytes {
                entry.1 += 1;
                entry.2 += bytes;
            }
        }
    }

    async fn record(self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        if self.runs.is_empty() {
            return Ok(());
        }
        // Each item of a run once, however often it is delivered.
        let mut items = self.items;
        items.sort_by(|a, b| {
            (a.0, a.1.account_id, a.1.workload.as_str(), &a.1.source_id).cmp(&(
                b.0,
                b.1.account_id,
                b.1.workload.as_str(),
                &b.1.source_id,
            ))
        });
        items.dedup();
        insert_rows(
            txn,
            "INSERT INTO run_items (run_id, account_id, workload, source_id, settled) VALUES",
            "ON CONFLICT (run_id, account_id, workload, source_id) DO UPDATE SET settled = true",
            items.into_iter().map(|(run, item)| {
                vec![
                    run.into(),
                    item.account_id.into(),
                    item.workload.as_str().into(),
                    item.source_id.into(),
                    true.into(),
                ]
            }),
        )
        .await?;
        let (rows, values) = values_list(
            self.runs
                .into_iter()
                .map(|(run, (settled, versions, bytes))| {
                    vec![run.into(), settled.into(), versions.into(), bytes.into()]
                }),
            &["uuid", "bigint", "bigint", "bigint"],
        );
        exec(
            txn,
            &format!(
                "UPDATE runs r SET settled = r.settled + t.settled,
                        new_versions = r.new_versions + t.versions, bytes = r.bytes + t.bytes
                   FROM (VALUES {rows}) AS t (id, settled, versions, bytes) WHERE r.id = t.id"
            ),
            values,
        )
        .await?;
        Ok(())
    }
}

/// An item's current state, ready to compare with its latest version.
struct Upsert {
    ctx: Arc<TenantContext>,
    item: arkiv_queue::ItemKey,
    change_marker: Option<String>,
    date: Option<DateTime<Utc>>,
    chunks: ChunkList,
    size: i64,
    content_id: Vec<u8>,
    metadata_plain: Vec<u8>,
    metadata_hash: Vec<u8>,
    index: BlindIndex,
    container_hash: Option<Vec<u8>>,
    run_id: Option<Uuid>,
}

impl Upsert {
    fn new(
        ctx: Arc<TenantContext>,
        item: arkiv_queue::ItemKey,
        change_marker: Option<String>,
        metadata: &arkiv_queue::Metadata,
        chunks: ChunkList,
        origin: arkiv_queue::Origin,
    ) -> Self {
        let mut hasher = ctx.keys.dedup.hasher();
        hasher.update(b"arkiv content ");
        for (id, _) in &chunks {
            hasher.update(id);
        }
        let content_id = hasher.finalize().as_bytes().to_vec();
        let metadata_plain = arkiv_vault::metadata::encode(metadata);
        let index = BlindIndex::of(&ctx.search, metadata);
        let mut hasher = ctx.keys.dedup.hasher();
        hasher.update(b"arkiv metadata ");
        hasher.update(&metadata_plain);
        let metadata_hash = hasher.finalize().as_bytes().to_vec();
        let size = chunks.iter().map(|(_, s)| *s as i64).sum();
        let container_hash = container_hash(&ctx, &origin);
        Self {
            container_hash,
            run_id: origin.run_id,
            ctx,
            item,
            change_marker,
            date: metadata.date,
            chunks,
            size,
            content_id,
            metadata_plain,
            metadata_hash,
            index,
        }
    }
}

#[derive(Debug, FromQueryResult)]
struct ItemRow {
    id: Uuid,
    account_id: Uuid,
    workload: String,
    source_id: String,
    latest_version: i32,
    deleted_at_source: Option<DateTime<Utc>>,
    inserted: bool,
}

#[derive(Debug, FromQueryResult)]
struct LatestRow {
    item_id: Uuid,
    content_id: Vec<u8>,
    metadata_hash: Vec<u8>,
}

/// Index a round of changes, each to a different item: a new version for
/// each upsert unless its latest version has the same content and metadata
/// (a redelivery, or an unchanged item); deletions mark the latest version.
async fn apply(
    txn: &DatabaseTransaction,
    round: Vec<(usize, Change)>,
    runs: &mut RunTally,
    unwritten: &mut HashMap<(Uuid, KeyedHash), NewChunk>,
) -> Result<(), DbErr> {
    let mut upserts = Vec::new();
    for (_, change) in round {
        match change {
            Change::Upsert(u) => upserts.push(*u),
            Change::Deleted(d) => {
                mark_deleted(txn, &d).await?;
                runs.settled(d.run_id, &d.item, None);
            }
            Change::Sweep(s) => {
                let swept = sweep(txn, &s).await?;
                tracing::info!(
                    swept,
                    "items gone from a container marked deleted at source"
                );
                runs.settled(s.run_id, &s.scope, None);
            }
        }
    }
    if upserts.is_empty() {
        return Ok(());
    }

    let (rows, values) = values_list(
        upserts.iter().map(|u| {
            vec![
                Uuid::now_v7().into(),
                u.ctx.tenant.into(),
                u.item.account_id.into(),
                u.item.workload.as_str().into(),
                u.item.source_id.clone().into(),
                u.container_hash.clone().into(),
                u.run_id.into(),
            ]
        }),
        &["uuid", "uuid", "uuid", "text", "text", "bytea", "uuid"],
    );
    // A new item is inserted with its first version's number; an existing
    // one gets its next below, once it is known to change. (xmax = 0 only on
    // a row this statement inserted.)
    let items = ItemRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO items (id, tenant_id, account_id, workload, source_id, container_hash,
                 last_seen_run, latest_version)
             SELECT *, 1 FROM (VALUES {rows}) AS v
             ON CONFLICT (account_id, workload, source_id) DO UPDATE SET updated_at = now(),
                 container_hash = COALESCE(EXCLUDED.container_hash, items.container_hash),
                 last_seen_run = COALESCE(EXCLUDED.last_seen_run, items.last_seen_run)
             RETURNING id, account_id, workload, source_id, latest_version, deleted_at_source,
                 xmax = 0 AS inserted"
        ),
        values,
    ))
    .all(txn)
    .await?;
    let items: HashMap<(Uuid, String, String), ItemRow> = items
        .into_iter()
        .map(|r| ((r.account_id, r.workload.clone(), r.source_id.clone()), r))
        .collect();

    let live: Vec<Uuid> = items
        .values()
        .filter(|r| !r.inserted && r.latest_version > 0 && r.deleted_at_source.is_none())
        .map(|r| r.id)
        .collect();
    let latest: HashMap<Uuid, LatestRow> = if live.is_empty() {
        HashMap::new()
    } else {
        LatestRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT v.item_id, v.content_id, v.metadata_hash
               FROM items i JOIN item_versions v ON v.item_id = i.id AND v.version = i.latest_version
              WHERE i.id = ANY($1)",
            [live.into()],
        ))
        .all(txn)
        .await?
        .into_iter()
        .map(|r| (r.item_id, r))
        .collect()
    };

    let mut versions = Vec::new();
    let mut version_chunks = Vec::new();
    let mut references: BTreeMap<(Uuid, KeyedHash), i32> = BTreeMap::new();
    let mut bumps = Vec::new();
    let captured_at = Utc::now();
    for u in &upserts {
        let key = (
            u.item.account_id,
            u.item.workload.as_str().to_owned(),
            u.item.source_id.clone(),
        );
        let Some(row) = items.get(&key) else {
            return Err(DbErr::RecordNotFound(format!(
                "items upsert returned no row for {}",
                u.item.source_id
            )));
        };
        if latest
            .get(&row.id)
            .is_some_and(|l| l.content_id == u.content_id && l.metadata_hash == u.metadata_hash)
        {
            runs.settled(u.run_id, &u.item, None);
            continue;
        }
        runs.settled(u.run_id, &u.item, Some(u.size));
        let version = if row.inserted {
            row.latest_version
        } else {
            bumps.push(vec![row.id.into(), (row.latest_version + 1).into()]);
            row.latest_version + 1
        };
        let version_id = Uuid::now_v7();
        let tenant = u.ctx.tenant;
        let sealed_metadata =
            arkiv_vault::metadata::seal(&u.ctx.keys.data, tenant, version_id, &u.metadata_plain);
        versions.push(vec![
            version_id.into(),
            row.id.into(),
            tenant.into(),
            u.item.account_id.into(),
            u.item.workload.as_str().into(),
            version.into(),
            captured_at.into(),
            u.date.into(),
            u.change_marker.clone().into(),
            u.size.into(),
            u.content_id.clone().into(),
            u.metadata_hash.clone().into(),
            sealed_metadata.into(),
            u.index.terms.clone().into(),
            u.index.from_hash.clone().into(),
        ]);
        for (seq, (id, _)) in u.chunks.iter().enumerate() {
            version_chunks.push(vec![
                version_id.into(),
                (seq as i32).into(),
                tenant.into(),
                id.to_vec().into(),
            ]);
            *references.entry((tenant, *id)).or_default() += 1;
        }
    }
    if versions.is_empty() {
        return Ok(());
    }
    // The batch's own new chunks are inserted with their count; chunks
    // stored before get theirs raised.
    let mut fresh = Vec::new();
    references.retain(|key, n| match unwritten.remove(key) {
        Some(chunk) => {
            fresh.push((key.0, chunk, *n));
            false
        }
        None => true,
    });
    write_chunks(txn, fresh).await?;
    insert_rows(
        txn,
        "INSERT INTO item_versions (id, item_id, tenant_id, account_id, workload, version,
             captured_at, item_date, change_marker, size, content_id, metadata_hash, metadata_sealed,
             terms, from_hash) VALUES",
        "",
        versions.into_iter(),
    )
    .await?;
    insert_rows(
        txn,
        "INSERT INTO version_chunks (version_id, seq, tenant_id, chunk_id) VALUES",
        "",
        version_chunks.into_iter(),
    )
    .await?;
    for group in references
        .into_iter()
        .map(|((tenant, id), n)| vec![tenant.into(), id.to_vec().into(), n.into()])
        .collect::<Vec<Vec<Value>>>()
        .chunks(20_000)
    {
        let (rows, values) = values_list(group.iter().cloned(), &["uuid", "bytea", "int"]);
        exec(
            txn,
            &format!(
                "UPDATE chunks c SET refcount = c.refcount + r.n, deletable_at = NULL
                   FROM (VALUES {rows}) AS r (tenant_id, id, n)
                  WHERE c.tenant_id = r.tenant_id AND c.id = r.id"
            ),
            values,
        )
        .await?;
    }
    if !bumps.is_empty() {
        let (rows, values) = values_list(bumps.into_iter(), &["uuid", "int"]);
        exec(
            txn,
            &format!(
                "UPDATE items i SET latest_version = b.version, deleted_at_source = NULL, updated_at = now()
                   FROM (VALUES {rows}) AS b (id, version) WHERE i.id = b.id"
            ),
            values,
        )
        .await?;
    }
    Ok(())
}

/// Insert chunks sealed by this batch with their reference counts. One
/// already there (another worker sealed the same content at the same time)
/// keeps its place and has its count raised instead.
async fn write_chunks(
    txn: &DatabaseTransaction,
    chunks: Vec<(Uuid, NewChunk, i32)>,
) -> Result<(), DbErr> {
    insert_rows(
        txn,
        "INSERT INTO chunks (tenant_id, id, pack_id, pack_offset, stored_size, plain_size, refcount) VALUES",
        "ON CONFLICT (tenant_id, id) DO UPDATE SET refcount = chunks.refcount + EXCLUDED.refcount,
             deletable_at = CASE WHEN chunks.refcount + EXCLUDED.refcount > 0 THEN NULL
                                 ELSE chunks.deletable_at END",
        chunks.into_iter().map(|(tenant, c, n)| {
            vec![
                tenant.into(),
                c.id.to_vec().into(),
                c.pack.into(),
                (c.offset as i64).into(),
                (c.stored_size as i32).into(),
                (c.plain_size as i32).into(),
                n.into(),
            ]
        }),
    )
    .await
}

/// Mark an item deleted at the source (idempotent; unknown items are
/// nothing to do). A deletion scoped to a container leaves an item that
/// has moved to another container alone.
async fn mark_deleted(txn: &DatabaseTransaction, d: &Deletion) -> Result<(), DbErr> {
    let scope = "AND (i.container_hash IS NULL OR $5::bytea IS NULL OR i.container_hash = $5)";
    let key = |extra: Vec<Value>| {
        let mut values: Vec<Value> = vec![
            d.item.account_id.into(),
            d.item.workload.as_str().into(),
            d.item.source_id.clone().into(),
            d.at.into(),
            d.container_hash.clone().into(),
        ];
        values.extend(extra);
        values
    };
    exec(
        txn,
        &format!(
            "UPDATE item_versions v SET deleted_at_source = COALESCE(v.deleted_at_source, $4),
                    change_marker = COALESCE($6, v.change_marker)
               FROM items i
              WHERE i.account_id = $1 AND i.workload = $2 AND i.source_id = $3
                AND v.item_id = i.id AND v.version = i.latest_version {scope}"
        ),
        key(vec![d.change_marker.clone().into()]),
    )
    .await?;
    exec(
        txn,
        &format!(
            "UPDATE items i SET deleted_at_source = COALESCE(i.deleted_at_source, $4), updated_at = now()
              WHERE i.account_id = $1 AND i.workload = $2 AND i.source_id = $3 {scope}"
        ),
        key(vec![]),
    )
    .await?;
    Ok(())
}

/// Mark deleted at source the live items of a sweep's account and workload
/// last seen in its container (any container when none is named) that the
/// sweep's run did not see, and the latest version of each. Returns how
/// many items.
async fn sweep(txn: &DatabaseTransaction, s: &Sweep) -> Result<u64, DbErr> {
    exec(
        txn,
        "WITH gone AS (
             UPDATE items i SET deleted_at_source = $4, updated_at = now()
              WHERE i.account_id = $1 AND i.workload = $2 AND i.deleted_at_source IS NULL
                AND ($3::bytea IS NULL OR i.container_hash = $3)
                AND ($5::uuid IS NULL OR i.last_seen_run IS DISTINCT FROM $5)
          RETURNING i.id, i.latest_version)
         UPDATE item_versions v SET deleted_at_source = COALESCE(v.deleted_at_source, $4)
           FROM gone WHERE v.item_id = gone.id AND v.version = gone.latest_version",
        vec![
            s.scope.account_id.into(),
            s.scope.workload.as_str().into(),
            s.container_hash.clone().into(),
            s.at.into(),
            s.keep_seen_by.into(),
        ],
    )
    .await
}
