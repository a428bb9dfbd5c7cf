//! `arkiv`: the command line for operators, partners and support.
//!
//! Most commands talk to the API (`ARKIV_API`, `ARKIV_TOKEN`). A few work
//! straight on the database and need the service configuration
//! (`--config` / `ARKIV_CONFIG` and `ARKIV_*`): `migrate`, and `bootstrap`,
//! which creates the first operator.
//!
//! Human output goes to stdout as tables; `--json` prints the documented
//! JSON instead. Errors go to stderr with a non-zero exit status.

mod api;
mod backup;
mod bootstrap;
mod commands;
mod data;
mod lifecycle;
mod migrate;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "arkiv",
    version,
    about = "Arkiv: cloud-to-cloud backup for Microsoft 365 and Google Workspace"
)]
struct Cli {
    /// Service configuration file for commands that use the database directly.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// The API's address (default: ARKIV_API).
    #[arg(long, global = true, value_name = "URL")]
    api: Option<String>,
    /// An API token (default: ARKIV_TOKEN).
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply, roll back or list database migrations (direct database access).
    Migrate {
        #[command(subcommand)]
        action: migrate::Action,
    },
    /// Create the first operator and print its API token (direct database
    /// access; refused once an operator exists, unless --reissue).
    Bootstrap(bootstrap::Args),
    /// Console login: password from stdin plus a TOTP code; prints a session token.
    Login(commands::Login),
    /// Partners (MSPs and resellers).
    #[command(subcommand)]
    Partner(commands::Partner),
    /// Customer tenants.
    #[command(subcommand)]
    Tenant(commands::Tenant),
    /// Connect Microsoft 365 or Google Workspace.
    #[command(subcommand)]
    Connect(commands::Connect),
    /// A tenant's connections.
    #[command(subcommand)]
    Connection(commands::Connection),
    /// Protected accounts.
    #[command(subcommand)]
    Account(commands::Account),
    /// Backup runs: start one, follow it, see the latest.
    #[command(subcommand)]
    Backup(backup::Backup),
    /// Search the backup index of a tenant.
    Search(data::Search),
    /// An item's versions.
    Versions(data::Versions),
    /// Restore an item, or an account or folder as it was at a point in
    /// time; `restore status` and `restore retry` follow a job.
    Restore(data::Restore),
    /// Export an account's mail, calendar or drive (MBOX, EML, ICS, ZIP).
    Export(data::Export),
    /// Erase every version of one account (GDPR art. 17); the account is
    /// excluded from backups from then on.
    Erase(lifecycle::Erase),
    /// Erasure requests: their state, and the certificate of each.
    #[command(subcommand)]
    Erasure(lifecycle::Erasure),
    /// Console and API users.
    #[command(subcommand)]
    Principal(commands::Principal),
    /// API tokens.
    #[command(subcommand)]
    Token(commands::Token),
    /// Support grants.
    #[command(subcommand)]
    Grant(commands::Grant),
    /// Retention policy.
    #[command(subcommand)]
    Retention(commands::Retention),
    /// The audit log.
    #[command(subcommand)]
    Audit(commands::Audit),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("arkiv: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let out = output::Output { json: cli.json };
    let result = runtime.block_on(async {
        let api = || api::Api::new(cli.api.clone(), cli.token.clone());
        match cli.command {
            Command::Migrate { action } => migrate::run(cli.config.as_deref(), action, &out).await,
            Command::Bootstrap(args) => bootstrap::run(cli.config.as_deref(), args, &out).await,
            Command::Login(args) => commands::login(cli.api.clone(), args, &out).await,
            Command::Partner(c) => commands::partner(&api()?, c, &out).await,
            Command::Tenant(c) => commands::tenant(&api()?, c, &out).await,
            Command::Connect(c) => commands::connect(&api()?, c, &out).await,
            Command::Connection(c) => commands::connection(&api()?, c, &out).await,
            Command::Account(c) => commands::account(&api()?, c, &out).await,
            Command::Backup(c) => backup::run(&api()?, c, &out).await,
            Command::Search(c) => data::search(&api()?, c, &out).await,
            Command::Versions(c) => data::versions(&api()?, c, &out).await,
            Command::Restore(c) => data::restore(&api()?, c, &out).await,
            Command::Export(c) => data::export(&api()?, c, &out).await,
            Command::Erase(c) => lifecycle::erase(&api()?, c, &out).await,
            Command::Erasure(c) => lifecycle::erasure(&api()?, c, &out).await,
            Command::Principal(c) => commands::principal(&api()?, c, &out).await,
            Command::Token(c) => commands::token(&api()?, c, &out).await,
            Command::Grant(c) => commands::grant(&api()?, c, &out).await,
            Command::Retention(c) => commands::retention(&api()?, c, &out).await,
            Command::Audit(c) => commands::audit(&api()?, c, &out).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("arkiv: {error:#}");
            ExitCode::FAILURE
        }
    }
}
