//! What every Arkiv service does the same way.
//!
//! - [`main`]: parse `--config`, load [`Settings`], install telemetry, run
//!   the service until SIGTERM/SIGINT, and exit 0 on a clean stop or 1 with
//!   the whole error chain on failure.
//! - [`Deps::connect`]: connect to exactly the dependencies a service needs
//!   (PostgreSQL, checking the schema is migrated; RabbitMQ; S3, checking
//!   every region bucket), failing with an error that names the setting.
//! - [`ops_router`]: `GET /healthz` (each dependency checked live; 503 if any
//!   is down) and `GET /metrics` (Prometheus text).
//!
//! Services build on these and add their own work; they never depend on
//! each other.

mod deps;
mod ops;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

pub use arkiv_config::Settings;
pub use deps::{Deps, Needs};
pub use ops::{bind, ops_router, serve, Health, HealthReport, OpsServer};

use clap::Parser;

/// Why a service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] arkiv_config::ConfigError),
    #[error(transparent)]
    Database(#[from] arkiv_db::DbError),
    #[error("cannot connect to RabbitMQ (setting rabbitmq.url): {0}")]
    Queue(#[from] arkiv_queue::QueueError),
    #[error("S3 is not usable (settings s3.*): {0}")]
    Store(#[from] arkiv_store::StoreError),
    #[error("cannot listen on {addr} (setting {setting}): {source}")]
    Bind {
        addr: std::net::SocketAddr,
        setting: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// The command line every service binary accepts.
#[derive(Debug, Parser)]
struct Args {
    /// TOML configuration file (also ARKIV_CONFIG); ARKIV_* variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// Run a service binary: `run` gets the settings and a future that resolves
/// on SIGTERM or SIGINT, and returns when the service has stopped.
pub fn main<F, Fut>(service: &'static str, run: F) -> ExitCode
where
    F: FnOnce(Settings, ShutdownSignal) -> Fut,
    Fut: Future<Output = Result<(), StartError>>,
{
    let args = Args::parse();
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{service}: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    arkiv_telemetry::init(service, &settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{service}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The handlers are installed before the service starts serving, so a
    // SIGTERM sent as soon as it answers still stops it cleanly.
    let shutdown = {
        let _entered = runtime.enter();
        shutdown_signal()
    };
    match runtime.block_on(run(settings, shutdown)) {
        Ok(()) => {
            tracing::info!(service, "stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service, error = %error_chain(&error), "failed");
            eprintln!("{service}: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

/// Resolves when the process receives SIGTERM or SIGINT.
pub type ShutdownSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn shutdown_signal() -> ShutdownSignal {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    Box::pin(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, stopping"),
            _ = int.recv() => tracing::info!("SIGINT received, stopping"),
        }
    })
}

/// `error: cause: cause`, the whole chain on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // thiserror's `#[error("...: {0}")]` already includes its source.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
