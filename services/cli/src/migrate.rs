use std::path::Path;

use anyhow::Context;
use arkiv_config::Settings;
use clap::Subcommand;
use serde_json::json;

use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum Action {
    /// Apply every pending migration.
    Up,
    /// Roll back the most recent migration (or --steps N, or --all).
    Down {
        #[arg(long, conflicts_with = "all", default_value_t = 1)]
        steps: u32,
        #[arg(long)]
        all: bool,
    },
    /// List migrations and whether each is applied.
    Status,
}

pub async fn run(config: Option<&Path>, action: Action, out: &Output) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    let db = arkiv_db::connect(settings.database()?).await?;
    match action {
        Action::Up => {
            let applied = arkiv_db::migrate::up(&db).await.context("migrate up")?;
            let rows = applied.iter().map(|m| vec![m.clone()]).collect();
            out.print(&json!({ "applied": applied }), &["applied"], rows);
        }
        Action::Down { steps, all } => {
            let steps = (!all).then_some(steps);
            let rolled_back = arkiv_db::migrate::down(&db, steps)
                .await
                .context("migrate down")?;
            let rows = rolled_back.iter().map(|m| vec![m.clone()]).collect();
            out.print(
                &json!({ "rolled_back": rolled_back }),
                &["rolled back"],
                rows,
            );
        }
        Action::Status => {
            let status = arkiv_db::migrate::status(&db).await?;
            let value: Vec<_> = status
                .iter()
                .map(|m| json!({ "name": m.name, "applied": m.applied }))
                .collect();
            let rows = status
                .iter()
                .map(|m| {
                    let state = if m.applied { "applied" } else { "pending" };
                    vec![m.name.clone(), state.to_owned()]
                })
                .collect();
            out.print(&value, &["migration", "state"], rows);
        }
    }
    Ok(())
}
