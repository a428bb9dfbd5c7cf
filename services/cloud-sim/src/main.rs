use std::net::SocketAddr;
use std::process::ExitCode;

use arkiv_cloud_sim::{Dataset, DatasetSpec, SimConfig};
use clap::Parser;

/// A simulator of Microsoft identity, Microsoft Graph and the Google APIs.
#[derive(Debug, Parser)]
#[command(name = "arkiv-sim", version)]
struct Args {
    /// Address to serve on; loopback only.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Which generated dataset to serve.
    #[arg(long, value_enum, default_value_t = Dataset::Tiny)]
    dataset: Dataset,
    /// Seed of the dataset generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// bench: users per tenant and per domain.
    #[arg(long, default_value_t = 20)]
    users: u32,
    /// bench: messages per mailbox.
    #[arg(long, default_value_t = 2000)]
    messages_per_user: u32,
    /// bench: smallest and largest message, in bytes.
    #[arg(long, value_parser = parse_range, default_value = "2000-200000")]
    message_bytes: (u64, u64),
    /// bench: files per drive.
    #[arg(long, default_value_t = 10)]
    files_per_user: u32,
    /// bench: smallest and largest file, in bytes.
    #[arg(long, value_parser = parse_range, default_value = "0-2000000")]
    file_bytes: (u64, u64),
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').ok_or("expected MIN-MAX")?;
    let (a, b) = (
        a.parse::<u64>().map_err(|e| e.to_string())?,
        b.parse::<u64>().map_err(|e| e.to_string())?,
    );
    if a > b {
        return Err("MIN is larger than MAX".into());
    }
    Ok((a, b))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "arkiv-sim: --listen must be a loopback address, not {}",
            args.listen
        );
        return ExitCode::from(2);
    }
    let spec = match args.dataset {
        Dataset::Tiny => DatasetSpec::tiny(),
        Dataset::Demo => DatasetSpec::demo(),
        Dataset::Bench => DatasetSpec::bench(
            args.users,
            args.messages_per_user,
            args.message_bytes,
            args.files_per_user,
            args.file_bytes,
        ),
    };
    // Handlers first: once the server answers, a SIGTERM must find them.
    let stop = stop_signal();
    let sim = match arkiv_cloud_sim::start(
        args.listen,
        SimConfig {
            spec,
            seed: args.seed,
        },
    )
    .await
    {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("arkiv-sim: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(base_url = %sim.base_url(), "arkiv-sim serving");
    stop.await;
    sim.stop().await;
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT, with the handlers installed now (not at first poll).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
}
