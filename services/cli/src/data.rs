//! Finding and getting back backed-up data: `arkiv search`, `arkiv
//! versions`, `arkiv restore` and `arkiv export`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::api::Api;
use crate::output::Output;

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn table(items: &[Value], cols: &[&str]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|i| cols.iter().map(|c| cell(&i[*c])).collect())
        .collect()
}

#[derive(Debug, Args)]
pub struct Search {
    #[arg(long)]
    tenant: String,
    /// Only this protected account (its address).
    #[arg(long)]
    account: Option<String>,
    /// mail, calendar or drive.
    #[arg(long)]
    workload: Option<String>,
    /// Words that must all be in the subject, event title or file name.
    #[arg(long)]
    text: Option<String>,
    /// The sender's or organiser's address.
    #[arg(long)]
    from: Option<String>,
    /// The item's date is on or after this (2026-11-24 or RFC 3339).
    #[arg(long)]
    after: Option<String>,
    /// The item's date is before this.
    #[arg(long)]
    before: Option<String>,
    /// Only items deleted at the source.
    #[arg(long)]
    deleted: bool,
    /// At most this many items, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u64,
}

pub async fn search(api: &Api, args: Search, out: &Output) -> anyhow::Result<()> {
    let mut query = vec![("limit", args.limit.to_string())];
    for (key, value) in [
        ("account", args.account),
        ("workload", args.workload),
        ("text", args.text),
        ("from", args.from),
        ("after", args.after),
        ("before", args.before),
    ] {
        if let Some(v) = value {
            query.push((key, v));
        }
    }
    if args.deleted {
        query.push(("deleted", "true".into()));
    }
    let qs = serde_urlencoded(&query);
    let hits = api
        .get(&format!("/v1/tenants/{}/search?{qs}", args.tenant))
        .await?;
    let cols = [
        "item_id",
        "version",
        "account",
        "workload",
        "date",
        "deleted_at_source",
        "title",
        "from",
        "size",
    ];
    let list = hits.as_array().cloned().unwrap_or_default();
    out.print(&hits, &cols, table(&list, &cols));
    Ok(())
}

fn serde_urlencoded(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

#[derive(Debug, Args)]
pub struct Versions {
    #[arg(long)]
    item: String,
}

pub async fn versions(api: &Api, args: Versions, out: &Output) -> anyhow::Result<()> {
    let item = api
        .get(&format!("/v1/items/{}/versions", args.item))
        .await?;
    let versions = item["versions"].clone();
    let cols = [
        "version",
        "version_id",
        "captured_at",
        "deleted_at_source",
        "size",
        "title",
        "path",
    ];
    let list = versions.as_array().cloned().unwrap_or_default();
    out.print(&versions, &cols, table(&list, &cols));
    Ok(())
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Restore {
    #[command(subcommand)]
    command: Option<RestoreCommand>,
    #[command(flatten)]
    start: StartRestore,
}

#[derive(Debug, Subcommand)]
enum RestoreCommand {
    /// A restore job's progress and its items.
    Status {
        #[arg(long)]
        job: String,
    },
    /// Try a failed or partially failed job again: only what is not done.
    Retry {
        #[arg(long)]
        job: String,
        #[arg(long)]
        wait: bool,
    },
}

/// One item (`--item`), or an account's workload as it was at a point in
/// time (`--account`, `--workload`, `--at`).
#[derive(Debug, Args)]
struct StartRestore {
    /// The item to restore (from `arkiv search`).
    #[arg(long, conflicts_with_all = ["account", "at", "folder"])]
    item: Option<String>,
    /// Its version's number (default: the latest).
    #[arg(long, requires = "item")]
    version: Option<i32>,
    /// Point in time: the tenant (needed if the address is in several).
    #[arg(long)]
    tenant: Option<String>,
    /// Point in time: the protected account's address.
    #[arg(long, requires_all = ["workload", "at"])]
    account: Option<String>,
    /// Point in time: mail, calendar or drive.
    #[arg(long)]
    workload: Option<String>,
    /// Point in time: only this mail folder (Inbox/Projects) or drive folder.
    #[arg(long)]
    folder: Option<String>,
    /// Point in time: 2026-11-24 or RFC 3339.
    #[arg(long)]
    at: Option<String>,
    /// Restore into this account of the same tenant instead.
    #[arg(long)]
    to_account: Option<String>,
    /// When the target already holds the item: skip, rename or overwrite.
    #[arg(long)]
    collision: Option<String>,
    /// Wait for the job to end, with a progress bar on stderr; exits
    /// non-zero unless every item was restored or already there.
    #[arg(long)]
    wait: bool,
}

const RESTORE_COLS: [&str; 7] = [
    "job_id",
    "status",
    "target",
    "items_total",
    "items_done",
    "items_skipped",
    "items_failed",
];

pub async fn restore(api: &Api, args: Restore, out: &Output) -> anyhow::Result<()> {
    let (job, wait) = match args.command {
        Some(RestoreCommand::Status { job }) => {
            let detail = api.get(&format!("/v1/restores/{job}")).await?;
            out.print(
                &detail,
                &RESTORE_COLS,
                table(std::slice::from_ref(&detail), &RESTORE_COLS),
            );
            return Ok(());
        }
        Some(RestoreCommand::Retry { job, wait }) => (
            api.call(Method::POST, &format!("/v1/restores/{job}/retry"), None)
                .await?,
            wait,
        ),
        None => {
            let s = args.start;
            if s.item.is_none() && s.account.is_none() {
                bail!(
                    "say what to restore: --item ITEM, or --account EMAIL --workload W --at TIME"
                );
            }
            let body = json!({
                "item_id": s.item,
                "version": s.version,
                "tenant_id": s.tenant,
                "account": s.account,
                "workload": s.workload,
                "folder": s.folder,
                "at": s.at,
                "to_account": s.to_account,
                "collision": s.collision,
            });
            let body: Value = body
                .as_object()
                .map(|o| {
                    Value::Object(
                        o.iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    )
                })
                .unwrap_or(body);
            (api.post("/v1/restores", body).await?, s.wait)
        }
    };
    let job = if wait { follow(api, &job).await? } else { job };
    let shown = json!({
        "job_id": job["job_id"],
        "status": job["status"],
        "target": job["target"],
        "items_total": job["items_total"],
        "items_done": job["items_done"],
        "items_skipped": job["items_skipped"],
        "items_failed": job["items_failed"],
        "error": job["error"],
    });
    out.print(
        &shown,
        &RESTORE_COLS,
        table(std::slice::from_ref(&shown), &RESTORE_COLS),
    );
    if wait && !matches!(job["status"].as_str(), Some("succeeded")) {
        let failed: Vec<String> = job["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["state"] == "failed")
            .take(3)
            .map(|i| format!("item {}: {}", cell(&i["item_id"]), cell(&i["error"])))
            .collect();
        bail!(
            "restore job {} {}: {}{}",
            cell(&job["job_id"]),
            cell(&job["status"]),
            job["error"]
                .as_str()
                .unwrap_or("see `arkiv restore status --job`"),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({})", failed.join("; "))
            }
        );
    }
    Ok(())
}

/// Poll a restore job until it ends, drawing its progress.
async fn follow(api: &Api, job: &Value) -> anyhow::Result<Value> {
    let id = cell(&job["job_id"]);
    let bar = ProgressBar::new(job["items_total"].as_u64().unwrap_or(0)).with_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} items  {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        let job = api.get(&format!("/v1/restores/{id}")).await?;
        let done = ["items_done", "items_skipped", "items_failed"]
            .iter()
            .map(|k| job[*k].as_u64().unwrap_or(0))
            .sum::<u64>();
        bar.set_position(done);
        bar.set_message(format!(
            "{} · {} restored · {} already there · {} failed",
            cell(&job["status"]),
            job["items_done"].as_u64().unwrap_or(0),
            job["items_skipped"].as_u64().unwrap_or(0),
            job["items_failed"].as_u64().unwrap_or(0),
        ));
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            bar.finish();
            return Ok(job);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[derive(Debug, Args)]
pub struct Export {
    #[arg(long)]
    tenant: String,
    /// The protected account's address.
    #[arg(long)]
    account: String,
    /// mail, calendar or drive.
    #[arg(long)]
    workload: String,
    /// mail: eml (a ZIP of messages), mbox or zip; calendar: ics or zip;
    /// drive: zip.
    #[arg(long)]
    format: String,
    /// As the account was then (default: now).
    #[arg(long)]
    at: Option<String>,
    /// Where to write the export. It appears there only once complete.
    #[arg(long)]
    out: PathBuf,
}

pub async fn export(api: &Api, args: Export, out: &Output) -> anyhow::Result<()> {
    let mut query = vec![
        ("account", args.account.clone()),
        ("workload", args.workload.clone()),
        ("format", args.format.clone()),
    ];
    if let Some(at) = &args.at {
        query.push(("at", at.clone()));
    }
    let response = api
        .send(
            Method::GET,
            &format!(
                "/v1/tenants/{}/export?{}",
                args.tenant,
                serde_urlencoded(&query)
            ),
            None,
        )
        .await?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let job = header("x-arkiv-export-id").unwrap_or_default();
    let items: u64 = header("x-arkiv-export-items")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let expected: u64 = header("x-arkiv-export-bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bar = ProgressBar::new(expected).with_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed:>4} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}  {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("{items} items"));
    // Written beside the target and renamed at the end, so a broken
    // transfer never leaves a file that looks complete.
    let partial = args.out.with_extension(match args.out.extension() {
        Some(ext) => format!("{}.part", ext.to_string_lossy()),
        None => "part".into(),
    });
    let mut file = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut body = response.bytes_stream();
    let mut written = 0u64;
    while let Some(piece) = body.next().await {
        let piece = match piece {
            Ok(p) => p,
            Err(e) => {
                drop(file);
                let _ = tokio::fs::remove_file(&partial).await;
                bar.abandon();
                bail!("the export broke off after {written} bytes: {e}");
            }
        };
        file.write_all(&piece).await?;
        written += piece.len() as u64;
        bar.set_position(written.min(expected.max(written)));
    }
    file.flush().await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, &args.out)
        .await
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    bar.finish();
    let result = json!({
        "job_id": job,
        "path": args.out.display().to_string(),
        "items": items,
        "bytes": written,
    });
    let cols = ["job_id", "path", "items", "bytes"];
    out.print(&result, &cols, table(std::slice::from_ref(&result), &cols));
    Ok(())
}
