//! Publishing an item of any size, for connectors.
//!
//! Content up to [`INLINE_MAX`] goes inline in one work item. Larger content
//! is read as a stream, cut by [`StreamChunker`] and published as chunk
//! messages of whole chunks (about [`MESSAGE_TARGET`] each), then the
//! `Upsert` that names the upload. Memory stays bounded by the messages in
//! flight: every message goes through the caller's [`ConfirmWindow`], so a
//! connector publishes a whole page without waiting on each confirm, then
//! drains the window before it stores its cursor.

use arkiv_domain::Region;
use arkiv_queue::work::INLINE_MAX;
use arkiv_queue::{ConfirmWindow, Content, ItemKey, Metadata, Origin, WorkItem, WorkPublisher};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

use crate::chunking::{Sizes, StreamChunker};
use crate::VaultError;

/// Bytes of chunks per chunk message: about one inline item's worth, so a
/// worker's prefetch bounds its memory whatever the mix of messages.
pub const MESSAGE_TARGET: usize = 256 * 1024;

/// Content is read this much at a time, straight into the chunker's buffer.
const READ_SIZE: usize = 1024 * 1024;

/// An item's state at the source, apart from its content.
#[derive(Clone, Debug)]
pub struct ItemState {
    pub item: ItemKey,
    pub change_marker: Option<String>,
    pub metadata: Metadata,
    pub origin: Origin,
}

/// Publish the current state of an item; returns its size in bytes. The
/// item is safe once `window` has been drained.
pub async fn publish_item(
    publisher: &WorkPublisher,
    window: &mut ConfirmWindow,
    region: &Region,
    state: ItemState,
    mut content: impl AsyncRead + Unpin,
) -> Result<u64, VaultError> {
    let ItemState {
        item,
        change_marker,
        metadata,
        origin,
    } = state;
    let mut chunker = StreamChunker::new(Sizes::of(item.workload));
    // The first INLINE_MAX + 1 bytes decide: inline, or chunked.
    while chunker.len() <= INLINE_MAX {
        let room = INLINE_MAX + 1 - chunker.len();
        let read = (&mut content)
            .take(room as u64)
            .read_buf(chunker.buffer(room))
            .await
            .map_err(io)?;
        if read == 0 {
            break;
        }
    }
    if chunker.len() <= INLINE_MAX {
        let head = chunker.into_bytes();
        let size = head.len() as u64;
        let work = WorkItem::Upsert {
            item,
            change_marker,
            metadata,
            content: Content::Inline(head),
            origin,
        };
        window.push(publisher.send(region, &work).await?).await?;
        return Ok(size);
    }

    let mut upload = ChunkMessages {
        publisher,
        window,
        region,
        tenant_id: item.tenant_id,
        account_id: item.account_id,
        upload_id: Uuid::now_v7(),
        sent: 0,
        pending: Vec::new(),
        pending_bytes: 0,
    };
    let mut size = chunker.len() as u64;
    loop {
        for chunk in chunker.cut() {
            upload.add(chunk).await?;
        }
        let read = content
            .read_buf(chunker.buffer(READ_SIZE))
            .await
            .map_err(io)?;
        if read == 0 {
            break;
        }
        size += read as u64;
    }
    for chunk in chunker.finish() {
        upload.add(chunk).await?;
    }
    upload.flush().await?;
    let work = WorkItem::Upsert {
        item,
        change_marker,
        metadata,
        content: Content::Chunked {
            upload_id: upload.upload_id,
            chunks: upload.sent,
            size,
        },
        origin,
    };
    window.push(publisher.send(region, &work).await?).await?;
    Ok(size)
}

/// An upload's chunks, gathered into `Chunk` messages of about
/// [`MESSAGE_TARGET`] bytes and numbered in order.
struct ChunkMessages<'a> {
    publisher: &'a WorkPublisher,
    window: &'a mut ConfirmWindow,
    region: &'a Region,
    tenant_id: Uuid,
    account_id: Uuid,
    upload_id: Uuid,
    /// Chunks published so far.
    sent: u32,
    pending: Vec<Bytes>,
    pending_bytes: usize,
}

impl ChunkMessages<'_> {
    /// Add a chunk, sending what is gathered first if the chunk would take
    /// the message past [`MESSAGE_TARGET`]: a message holds at most that, or
    /// one chunk.
    async fn add(&mut self, chunk: Bytes) -> Result<(), VaultError> {
        if self.pending_bytes + chunk.len() > MESSAGE_TARGET {
            self.flush().await?;
        }
        self.pending_bytes += chunk.len();
        self.pending.push(chunk);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), VaultError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pieces = std::mem::take(&mut self.pending);
        let count = pieces.len() as u32;
        let work = WorkItem::Chunk {
            tenant_id: self.tenant_id,
            account_id: Some(self.account_id),
            upload_id: self.upload_id,
            first: self.sent,
            pieces,
        };
        self.window
            .push(self.publisher.send(self.region, &work).await?)
            .await?;
        self.sent += count;
        self.pending_bytes = 0;
        Ok(())
    }
}

fn io(e: std::io::Error) -> VaultError {
    VaultError::Content(e.to_string())
}
