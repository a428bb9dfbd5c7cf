//! Writing an export to any `AsyncWrite` (an HTTP body, a file), item by
//! item, content streamed from the backup.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use arkiv_domain::{Provider, Workload};
use arkiv_vault::metadata::Describe;
use arkiv_vault::reader::Reader;
use arkiv_vault::search::Found;
use async_zip::tokio::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use bytes::Bytes;
use chrono::Utc;
use futures::{AsyncWriteExt as _, Stream, StreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use uuid::Uuid;

use crate::ics::{graph_event_to_vevent, Calendar};
use crate::mbox::{separator, MboxrdQuoter};
use crate::{safe_name, ExportError, Format};

/// Counts an export's progress as it goes, for whoever watches.
#[derive(Debug, Default)]
pub struct Progress {
    pub items: AtomicU64,
    pub bytes: AtomicU64,
}

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub items: u64,
    /// Bytes of content read from the backup.
    pub bytes: u64,
    /// The items written, in order.
    pub item_ids: Vec<Uuid>,
}

/// One line of the manifest.
#[derive(Debug, Serialize)]
struct ManifestRow {
    item_id: Uuid,
    version: i32,
    /// Where the item is in the archive.
    path: String,
    size: u64,
    sha256: String,
    title: Option<String>,
    date: Option<String>,
    captured_at: String,
    /// The mail folder or the file's path at the source.
    source_path: Option<String>,
}

#[derive(Debug, Serialize)]
struct Manifest<'a> {
    exported_at: String,
    workload: &'static str,
    items: &'a [ManifestRow],
}

fn write_error(e: impl std::fmt::Display) -> ExportError {
    ExportError::Write(e.to_string())
}

/// What an export is of.
#[derive(Clone, Copy, Debug)]
pub struct What<'a> {
    pub provider: Provider,
    pub workload: Workload,
    pub format: Format,
    /// The calendar's name in iCalendar exports (the account's address).
    pub name: &'a str,
}

/// Write `items` (versions of one account's workload) as `what.format`
/// to `out`, counting into `progress`. `out` is flushed and shut down at
/// the end.
pub async fn export<W>(
    reader: &Reader,
    what: What<'_>,
    items: &[Found],
    out: W,
    progress: &Progress,
) -> Result<Summary, ExportError>
where
    W: AsyncWrite + Unpin + Send,
{
    match what.format {
        Format::Mbox => mbox(reader, items, out, progress).await,
        Format::Ics => ics(reader, what, items, out, progress).await,
        Format::Eml | Format::Zip => zip(reader, what, items, out, progress).await,
    }
}

async fn content(
    reader: &Reader,
    found: &Found,
) -> Result<impl Stream<Item = Result<Bytes, ExportError>> + Send + 'static, ExportError> {
    let item = found.item_id;
    let stream = reader
        .stream(found.version_id)
        .await
        .map_err(|e| ExportError::Content {
            item,
            reason: e.to_string(),
        })?;
    Ok(stream.map(move |piece| {
        piece.map_err(|e| ExportError::Content {
            item,
            reason: e.to_string(),
        })
    }))
}

async fn read_all(reader: &Reader, found: &Found) -> Result<Vec<u8>, ExportError> {
    let mut all = Vec::with_capacity(found.size.max(0) as usize);
    let mut stream = Box::pin(content(reader, found).await?);
    while let Some(piece) = stream.next().await {
        all.extend_from_slice(&piece?);
    }
    Ok(all)
}

fn is_folder(found: &Found) -> bool {
    found.metadata.content_type.as_deref() == Some("application/vnd.arkiv.folder")
}

async fn mbox<W: AsyncWrite + Unpin + Send>(
    reader: &Reader,
    items: &[Found],
    mut out: W,
    progress: &Progress,
) -> Result<Summary, ExportError> {
    let mut summary = Summary::default();
    for found in items {
        let date = found.metadata.date.unwrap_or(found.captured_at);
        out.write_all(&separator(found.metadata.from.as_deref(), date))
            .await
            .map_err(write_error)?;
        let mut quoter = MboxrdQuoter::new();
        let mut stream = Box::pin(content(reader, found).await?);
        let mut buf = Vec::new();
        while let Some(piece) = stream.next().await {
            let piece = piece?;
            progress
                .bytes
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
            summary.bytes += piece.len() as u64;
            buf.clear();
            quoter.push(&piece, &mut buf);
            out.write_all(&buf).await.map_err(write_error)?;
        }
        buf.clear();
        quoter.finish(&mut buf);
        out.write_all(&buf).await.map_err(write_error)?;
        summary.items += 1;
        summary.item_ids.push(found.item_id);
        progress.items.fetch_add(1, Ordering::Relaxed);
    }
    out.shutdown().await.map_err(write_error)?;
    Ok(summary)
}

/// One event's VEVENT, from the event as its provider sent it.
fn vevent(provider: Provider, found: &Found, raw: &[u8]) -> Result<icalendar::Event, ExportError> {
    let bad = |reason: String| ExportError::Content {
        item: found.item_id,
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_slice(raw).map_err(|e| bad(format!("the event is not JSON: {e}")))?;
    match provider {
        Provider::M365 => graph_event_to_vevent(&v).map_err(bad),
        Provider::Google => crate::ics::google_event_to_vevent(&v).map_err(bad),
    }
}

async fn ics<W: AsyncWrite + Unpin + Send>(
    reader: &Reader,
    what: What<'_>,
    items: &[Found],
    mut out: W,
    progress: &Progress,
) -> Result<Summary, ExportError> {
    use icalendar::Component as _;
    let mut summary = Summary::default();
    out.write_all(Calendar::header(what.name).as_bytes())
        .await
        .map_err(write_error)?;
    for found in items {
        let raw = read_all(reader, found).await?;
        progress
            .bytes
            .fetch_add(raw.len() as u64, Ordering::Relaxed);
        summary.bytes += raw.len() as u64;
        let event = vevent(what.provider, found, &raw)?;
        out.write_all(event.to_string().as_bytes())
            .await
            .map_err(write_error)?;
        summary.items += 1;
        summary.item_ids.push(found.item_id);
        progress.items.fetch_add(1, Ordering::Relaxed);
    }
    out.write_all(Calendar::FOOTER.as_bytes())
        .await
        .map_err(write_error)?;
    out.shutdown().await.map_err(write_error)?;
    Ok(summary)
}

/// A unique path in the archive for an item.
fn entry_path(what: &What<'_>, found: &Found, n: usize, used: &mut HashSet<String>) -> String {
    let m = &found.metadata;
    let title = safe_name(m.title().unwrap_or("untitled"));
    let base = match what.workload {
        Workload::Mail => {
            let folder: Vec<String> = m
                .folder_path
                .as_deref()
                .unwrap_or("")
                .split('/')
                .filter(|s| !s.is_empty())
                .map(safe_name)
                .collect();
            let mut path = vec!["mail".to_owned()];
            path.extend(folder);
            path.push(format!("{n:06} {title}.eml"));
            path.join("/")
        }
        Workload::Calendar => format!("calendar/{n:06} {title}.ics"),
        Workload::Drive => {
            let path = m.file_path.clone().unwrap_or_else(|| format!("/{title}"));
            let segments: Vec<String> = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(safe_name)
                .collect();
            format!("drive/{}", segments.join("/"))
        }
    };
    let mut path = base.clone();
    let mut k = 2;
    while !used.insert(path.to_lowercase()) {
        path = match base.rsplit_once('.') {
            Some((stem, ext)) if !stem.ends_with('/') => format!("{stem} ({k}).{ext}"),
            _ => format!("{base} ({k})"),
        };
        k += 1;
    }
    path
}

async fn zip<W: AsyncWrite + Unpin + Send>(
    reader: &Reader,
    what: What<'_>,
    items: &[Found],
    out: W,
    progress: &Progress,
) -> Result<Summary, ExportError> {
    let mut zip = ZipFileWriter::with_tokio(out);
    let mut summary = Summary::default();
    let mut rows = Vec::with_capacity(items.len());
    let mut used = HashSet::new();
    for (n, found) in items.iter().filter(|f| !is_folder(f)).enumerate() {
        let path = entry_path(&what, found, n + 1, &mut used);
        let modified = found.metadata.date.unwrap_or(found.captured_at);
        // Drives hold many compressed formats already; mail and
        // calendars are text.
        let method = match what.workload {
            Workload::Drive => Compression::Stored,
            _ => Compression::Deflate,
        };
        let entry = ZipEntryBuilder::new(path.clone().into(), method)
            .last_modification_date(modified.into())
            .unix_permissions(0o644);
        let mut writer = zip.write_entry_stream(entry).await.map_err(write_error)?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        if what.workload == Workload::Calendar {
            let raw = read_all(reader, found).await?;
            size = raw.len() as u64;
            hash.update(&raw);
            let event = vevent(what.provider, found, &raw)?;
            writer
                .write_all(Calendar::single(what.name, &event).as_bytes())
                .await
                .map_err(write_error)?;
        } else {
            let mut stream = Box::pin(content(reader, found).await?);
            while let Some(piece) = stream.next().await {
                let piece = piece?;
                size += piece.len() as u64;
                hash.update(&piece);
                progress
                    .bytes
                    .fetch_add(piece.len() as u64, Ordering::Relaxed);
                writer.write_all(&piece).await.map_err(write_error)?;
            }
        }
        writer.close().await.map_err(write_error)?;
        summary.items += 1;
        summary.bytes += size;
        summary.item_ids.push(found.item_id);
        progress.items.fetch_add(1, Ordering::Relaxed);
        let m = &found.metadata;
        rows.push(ManifestRow {
            item_id: found.item_id,
            version: found.version,
            path,
            size,
            sha256: hex::encode(hash.finalize()),
            title: m.title().map(str::to_owned),
            date: m.date.map(|d| d.to_rfc3339()),
            captured_at: found.captured_at.to_rfc3339(),
            source_path: m.folder_path.clone().or_else(|| m.file_path.clone()),
        });
    }
    let manifest = serde_json::to_vec_pretty(&Manifest {
        exported_at: Utc::now().to_rfc3339(),
        workload: what.workload.as_str(),
        items: &rows,
    })
    .map_err(write_error)?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for row in &rows {
        csv.serialize(row).map_err(write_error)?;
    }
    let csv = csv.into_inner().map_err(write_error)?;
    for (name, body) in [("manifest.json", manifest), ("manifest.csv", csv)] {
        let entry = ZipEntryBuilder::new(name.into(), Compression::Deflate)
            .last_modification_date(Utc::now().into())
            .unix_permissions(0o644);
        zip.write_entry_whole(entry, &body)
            .await
            .map_err(write_error)?;
    }
    let mut out = zip.close().await.map_err(write_error)?.into_inner();
    out.shutdown().await.map_err(write_error)?;
    Ok(summary)
}
