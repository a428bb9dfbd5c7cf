//! `arkiv-bench`: Arkiv's benchmarks on the real servers `make setup` runs.
//!
//! `make bench` builds it and the services in release mode and runs every
//! benchmark. Each prints one line that scripts read:
//! `BENCH <name> key=value key=value ...`; progress goes to stderr.

mod cpu;
mod m365;
mod pipeline;
mod process;

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
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match cli.bench {
        Some(Bench::Pipeline(options)) => pipeline::run(options).await,
        Some(Bench::M365(options)) => m365::run(options).await,
        None => {
            pipeline::run(pipeline::Options::default()).await;
            m365::run(m365::Options::default()).await;
        }
    }
}
