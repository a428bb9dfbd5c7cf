//! `arkiv-bench`: Arkiv's benchmarks on the real servers `make setup` runs.
//!
//! `make bench` builds it and the services in release mode and runs every
//! benchmark. Each prints one line that scripts read:
//! `BENCH <name> key=value key=value ...`; progress goes to stderr.

mod cpu;
mod google;
mod m365;
mod pipeline;
mod process;
mod restore;
mod search;
mod servers;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "arkiv-bench", about = "Arkiv's benchmarks")]
struct Cli {
    #[command(subcommand)]
    bench: Option<Bench>,
}

#[derive(Subcommand, Debug)]
enum Bench {
    /// Work items through RabbitMQ, the worker, Garage and PostgreSQL.
    Pipeline(pipeline::Options),
    /// A Microsoft 365 backup of the simulator's bench dataset.
    M365(m365::Options),
    /// A Google Workspace backup of the simulator's bench dataset.
    Google(google::Options),
    /// Search latency on a tenant with a million versions.
    Search(search::Options),
    /// Single-message restore latency, request to visible in Graph.
    Restore(restore::Options),
    /// Garage and RabbitMQ alone: CPU per GiB, and the stream rate they allow.
    Servers(servers::Options),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match cli.bench {
        Some(Bench::Pipeline(options)) => pipeline::run(options).await,
        Some(Bench::M365(options)) => m365::run(options).await,
        Some(Bench::Google(options)) => google::run(options).await,
        Some(Bench::Search(options)) => search::run(options).await,
        Some(Bench::Restore(options)) => restore::run(options).await,
        Some(Bench::Servers(options)) => servers::run(options).await,
        None => {
            servers::run(servers::Options::default()).await;
            pipeline::run(pipeline::Options::default()).await;
            m365::run(m365::Options::default()).await;
            google::run(google::Options::default()).await;
            search::run(search::Options::default()).await;
            restore::run(restore::Options::default()).await;
        }
    }
}

/// An API token of a new operator, written straight to the database.
pub async fn operator_token(db: &arkiv_tests::TestDb, master: &arkiv_crypto::MasterKey) -> String {
    let (blind, seal) = (master.blind_index_key(), master.service_key());
    let keys = arkiv_db::principals::PrincipalKeys {
        blind: &blind,
        seal: &seal,
    };
    let p = arkiv_db::principals::create(
        &db.conn,
        &keys,
        arkiv_db::principals::NewPrincipal {
            role: arkiv_domain::Role::Operator,
            partner_id: None,
            tenant_id: None,
            email: format!("bench-{}@arkiv.test", uuid::Uuid::new_v4().simple()),
        },
    )
    .await
    .expect("an operator");
    let (_, token) = arkiv_db::principals::issue_token(
        &db.conn,
        arkiv_domain::PrincipalId::from_uuid(p.id),
        "bench",
        chrono::Duration::days(1),
    )
    .await
    .expect("a token");
    token.expose().to_owned()
}
