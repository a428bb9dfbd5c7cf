//! Erasure requests: `arkiv erase` asks for one account's data to be
//! erased, `arkiv erasure` follows requests and fetches certificates.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::api::Api;
use crate::output::Output;

const COLS: [&str; 6] = [
    "id",
    "state",
    "requested_at",
    "completed_at",
    "deleted_items",
    "deleted_versions",
];

fn cells(v: &Value) -> Vec<String> {
    COLS.iter()
        .map(|c| match &v[*c] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        })
        .collect()
}

#[derive(Debug, Args)]
pub struct Erase {
    #[arg(long)]
    tenant: String,
    /// The protected account's address.
    #[arg(long)]
    account: String,
    /// Wait until the erasure is complete, showing its progress.
    #[arg(long)]
    wait: bool,
}

pub async fn erase(api: &Api, args: Erase, out: &Output) -> anyhow::Result<()> {
    let mut e = api
        .post(
            &format!("/v1/tenants/{}/erasures", args.tenant),
            json!({ "account": args.account }),
        )
        .await?;
    if args.wait {
        e = follow(api, &e, out).await?;
    }
    out.print(&e, &COLS, vec![cells(&e)]);
    if e["state"] == "failed" {
        bail!(
            "the erasure failed; see `arkiv erasure status --id {}`",
            e["id"]
        );
    }
    Ok(())
}

async fn follow(api: &Api, e: &Value, out: &Output) -> anyhow::Result<Value> {
    let id = e["id"].as_str().context("the API returned no erasure id")?;
    let bar = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} erasure {msg}")
                .expect("a valid template"),
        )
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        let e = api.get(&format!("/v1/erasures/{id}")).await?;
        bar.set_message(format!(
            "{} · {} items · {} versions deleted",
            e["state"].as_str().unwrap_or("?"),
            e["deleted_items"],
            e["deleted_versions"]
        ));
        if !matches!(e["state"].as_str(), Some("queued" | "running")) {
            bar.finish();
            return Ok(e);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Debug, Subcommand)]
pub enum Erasure {
    /// One request's state and counts.
    Status {
        #[arg(long)]
        id: String,
    },
    /// A tenant's erasure requests, newest first.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// The certificate of a completed erasure (JSON), to stdout or a file.
    Certificate {
        #[arg(long)]
        id: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub async fn erasure(api: &Api, cmd: Erasure, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Erasure::Status { id } => {
            let e = api.get(&format!("/v1/erasures/{id}")).await?;
            out.print(&e, &COLS, vec![cells(&e)]);
        }
        Erasure::List { tenant } => {
            let list = api.get(&format!("/v1/tenants/{tenant}/erasures")).await?;
            let rows = list
                .as_array()
                .map(|a| a.iter().map(cells).collect())
                .unwrap_or_default();
            out.print(&list, &COLS, rows);
        }
        Erasure::Certificate { id, output } => {
            let c = api.get(&format!("/v1/erasures/{id}/certificate")).await?;
            let text = serde_json::to_string_pretty(&c)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text + "\n")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    let written = json!({ "id": id, "path": path.display().to_string() });
                    out.print(
                        &written,
                        &["id", "path"],
                        vec![vec![id, path.display().to_string()]],
                    );
                }
                None => println!("{text}"),
            }
        }
    }
    Ok(())
}
