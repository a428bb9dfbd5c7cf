//! `arkiv backup run` and `arkiv backup status`.

use std::time::Duration;

use anyhow::bail;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::api::Api;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum Backup {
    /// Start a backup run of each of the tenant's active connections (or
    /// of one). Prints the run; with several connections, a list of runs.
    Run {
        #[arg(long)]
        tenant: String,
        /// Only this connection.
        #[arg(long)]
        connection: Option<String>,
        /// Wait for the run to end, with a progress bar on stderr; exits
        /// non-zero if it failed.
        #[arg(long)]
        wait: bool,
    },
    /// The latest run of each of the tenant's connections.
    Status {
        #[arg(long)]
        tenant: String,
    },
}

const COLS: [&str; 8] = [
    "run_id",
    "status",
    "items",
    "new_versions",
    "bytes",
    "errors",
    "requested_at",
    "finished_at",
];

pub async fn run(api: &Api, cmd: Backup, out: &Output) -> anyhow::Result<()> {
    match cmd {
        Backup::Run {
            tenant,
            connection,
            wait,
        } => {
            let started = api
                .post(
                    &format!("/v1/tenants/{tenant}/backups"),
                    json!({ "connection_id": connection }),
                )
                .await?;
            let mut runs: Vec<Value> = started["runs"].as_array().cloned().unwrap_or_default();
            if wait {
                for run in &mut runs {
                    *run = follow(api, run).await?;
                }
            }
            print_runs(out, &runs);
            let failed: Vec<String> = runs
                .iter()
                .filter(|r| r["status"] == "failed")
                .map(|r| {
                    format!(
                        "run {} failed: {}",
                        r["run_id"].as_str().unwrap_or(""),
                        r["detail"].as_str().unwrap_or("see `arkiv backup status`")
                    )
                })
                .collect();
            if !failed.is_empty() {
                bail!(failed.join("; "));
            }
        }
        Backup::Status { tenant } => {
            let list = api
                .get(&format!("/v1/tenants/{tenant}/backups?limit=200"))
                .await?;
            // Newest first: the first run met of each connection.
            let mut latest: Vec<Value> = Vec::new();
            for run in list.as_array().into_iter().flatten() {
                if !latest
                    .iter()
                    .any(|r| r["connection_id"] == run["connection_id"])
                {
                    latest.push(run.clone());
                }
            }
            print_runs(out, &latest);
        }
    }
    Ok(())
}

fn print_runs(out: &Output, runs: &[Value]) {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| COLS.iter().map(|c| cell(&r[*c])).collect())
        .collect();
    match runs {
        [one] => out.print(one, &COLS, rows),
        many => out.print(&many, &COLS, rows),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Poll a run until it ends, drawing its progress: items stored of items
/// published, per-workload counts and throttling in the message.
async fn follow(api: &Api, run: &Value) -> anyhow::Result<Value> {
    let id = run["run_id"].as_str().unwrap_or_default().to_owned();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} [{bar:30}] {pos}/{len} stored  {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    loop {
        let run = api.get(&format!("/v1/runs/{id}")).await?;
        bar.set_length(run["published"].as_u64().unwrap_or(0));
        bar.set_position(run["settled"].as_u64().unwrap_or(0));
        let workloads: Vec<String> = run["workloads"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(w, c)| format!("{w} {}", c["items"].as_u64().unwrap_or(0)))
            .collect();
        bar.set_message(format!(
            "{} · {} · {} new · {} errors{}",
            run["status"].as_str().unwrap_or(""),
            if workloads.is_empty() {
                "starting".to_owned()
            } else {
                workloads.join(", ")
            },
            run["new_versions"].as_u64().unwrap_or(0),
            run["errors"].as_u64().unwrap_or(0),
            match run["throttled_ms"].as_u64().unwrap_or(0) {
                0 => String::new(),
                ms => format!(" · throttled {:.1}s", ms as f64 / 1000.0),
            }
        ));
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            bar.finish();
            let mut run = run;
            if let Some(obj) = run.as_object_mut() {
                obj.remove("error_list");
            }
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
