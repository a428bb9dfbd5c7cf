//! Publishing one page of changes: every work item goes out with the run's
//! origin and without waiting on its confirm; [`PageSink::commit`] waits for
//! all of them, so the caller may then store the page's cursor.

use std::sync::Arc;

use arkiv_domain::Region;
use arkiv_queue::{ConfirmWindow, ItemKey, Origin, WorkItem, WorkPublisher};
use arkiv_vault::upload::{publish_item, ItemState};
use arkiv_vault::VaultError;
use chrono::{DateTime, Utc};
use tokio::io::AsyncRead;

use crate::record::{RunErrorEntry, RunRecord};
use crate::BackupError;

/// Messages in flight before a publish waits on the oldest confirm.
const WINDOW: usize = 256;

#[derive(Debug)]
pub struct PageSink {
    publisher: Arc<WorkPublisher>,
    region: Region,
    record: Arc<RunRecord>,
    window: ConfirmWindow,
    /// The page's items, for `run_items` once they are confirmed.
    pending: Vec<ItemKey>,
}

impl PageSink {
    pub fn new(publisher: Arc<WorkPublisher>, region: Region, record: Arc<RunRecord>) -> Self {
        Self {
            publisher,
            region,
            record,
            window: ConfirmWindow::new(WINDOW),
            pending: Vec::new(),
        }
    }

    pub fn record(&self) -> &Arc<RunRecord> {
        &self.record
    }

    /// The origin of this run's items found in `container`.
    pub fn origin(&self, container: Option<String>) -> Origin {
        Origin {
            run_id: Some(self.record.run_id),
            container,
        }
    }

    /// An item as it is now; its content is streamed (chunked when large).
    pub async fn upsert(
        &mut self,
        state: ItemState,
        content: impl AsyncRead + Unpin,
    ) -> Result<u64, BackupError> {
        let workload = state.item.workload;
        let key = state.item.clone();
        let size = publish_item(
            &self.publisher,
            &mut self.window,
            &self.region,
            state,
            content,
        )
        .await?;
        self.pending.push(key);
        self.record.seen(workload, size);
        Ok(size)
    }

    /// An item whose content is downloaded as it is published. A download
    /// that breaks off (or fails its check) is recorded against the item
    /// and the page goes on; `Err` only when our side fails.
    pub async fn upsert_download(
        &mut self,
        state: ItemState,
        content: impl AsyncRead + Unpin,
    ) -> Result<(), BackupError> {
        let item = state.item.clone();
        match self.upsert(state, content).await {
            Ok(_) => Ok(()),
            Err(BackupError::Vault(VaultError::Content(message))) => {
                self.record
                    .error(RunErrorEntry {
                        account_id: Some(item.account_id),
                        workload: Some(item.workload),
                        item_ref: Some(item.source_id),
                        code: "downloadFailed".into(),
                        request_id: None,
                        message,
                    })
                    .await?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// An item deleted at the source (or removed from `origin.container`).
    pub async fn deleted(
        &mut self,
        item: ItemKey,
        change_marker: Option<String>,
        deleted_at: DateTime<Utc>,
        origin: Origin,
    ) -> Result<(), BackupError> {
        let workload = item.workload;
        self.pending.push(item.clone());
        let work = WorkItem::Deleted {
            item,
            change_marker,
            deleted_at,
            origin,
        };
        let pending = self.publisher.send(&self.region, &work).await?;
        self.window.push(pending).await?;
        self.record.seen(workload, 0);
        Ok(())
    }

    /// Items last seen in `container` are gone, but for those this run saw
    /// when `keep_seen` (see [`WorkItem::Sweep`]).
    pub async fn sweep(
        &mut self,
        account: &ItemKey,
        container: Option<String>,
        keep_seen: bool,
    ) -> Result<(), BackupError> {
        let scope = ItemKey {
            source_id: format!("sweep:{}", container.as_deref().unwrap_or("*")),
            ..account.clone()
        };
        self.pending.push(scope.clone());
        let work = WorkItem::Sweep {
            scope,
            keep_seen_by: keep_seen.then_some(self.record.run_id),
            swept_at: Utc::now(),
            origin: self.origin(container),
        };
        let pending = self.publisher.send(&self.region, &work).await?;
        self.window.push(pending).await?;
        Ok(())
    }

    /// Wait for every confirm of the page; then its cursor may be stored.
    pub async fn commit(&mut self) -> Result<(), BackupError> {
        self.window.drain().await?;
        let items = std::mem::take(&mut self.pending);
        self.record.published(items.len() as u64);
        self.record.expect_items(&items).await?;
        self.record.flush().await?;
        Ok(())
    }
}
