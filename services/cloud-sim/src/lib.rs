//! arkiv-sim: a simulator of the Microsoft identity platform, Microsoft
//! Graph and the Google APIs that Arkiv uses, on their real wire protocol,
//! so that the official client libraries work against it with only their
//! base URL changed. See ../shared/API-REFERENCE.md for the behaviour it
//! reproduces and README.md (Simulator) for what it does not.
//!
//! It runs as a binary (`arkiv-sim --listen ... --dataset ...`) or
//! in-process for tests:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use arkiv_cloud_sim::{start, SimConfig};
//! let sim = start("127.0.0.1:0".parse().unwrap(), SimConfig::tiny()).await?;
//! let manifest: serde_json::Value = reqwest_like_get(&format!("{}/_sim/manifest", sim.base_url()));
//! # fn reqwest_like_get(_: &str) -> serde_json::Value { serde_json::Value::Null }
//! sim.stop().await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`world`] is the data, [`dataset`] generates it, [`ms`] and
//! [`google`] serve the providers' APIs over it, [`limits`] decides
//! throttling and injected faults, [`control`] is the `/_sim` test API.
//! It is a test double: no production binary links it.

// Handlers return `Result<Response, Response>`: the error *is* the
// provider's error response, built where the failure is known.
#![allow(clippy::result_large_err)]

pub mod content;
mod control;
pub mod cursor;
pub mod dataset;
pub mod google;
mod limits;
pub mod ms;
pub mod state;
pub mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use dataset::DatasetSpec;
pub use state::Sim;

/// The generated datasets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dataset {
    /// A few users and items of every kind: for unit tests.
    Tiny,
    /// Ten users per provider: for the demo.
    Demo,
    /// Sized by flags: for benchmarks.
    Bench,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub spec: DatasetSpec,
    pub seed: u64,
}

impl SimConfig {
    pub fn tiny() -> Self {
        Self {
            spec: DatasetSpec::tiny(),
            seed: 1,
        }
    }

    pub fn demo() -> Self {
        Self {
            spec: DatasetSpec::demo(),
            seed: 1,
        }
    }
}

/// A running simulator.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    sim: Arc<Sim>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Simulator {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the base of every link the simulator emits.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The simulator's state, for tests that inspect it directly.
    pub fn state(&self) -> &Arc<Sim> {
        &self.sim
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serve the simulator on `listen` (port 0 picks a free port).
pub async fn start(listen: SocketAddr, config: SimConfig) -> std::io::Result<Simulator> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let spec = config.spec.clone();
    let seed = config.seed;
    // Generate once; /_sim/reset regenerates (deterministic, so identical).
    let sim = tokio::task::spawn_blocking(move || {
        Sim::new(
            base_url,
            state::Generator(Box::new(move || dataset::build(&spec, seed))),
        )
    })
    .await
    .map_err(std::io::Error::other)?;
    let router = router(sim.clone(), config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "simulator server failed");
        }
    });
    Ok(Simulator {
        addr,
        sim,
        stop,
        task,
    })
}

fn router(sim: Arc<Sim>, config: SimConfig) -> Router {
    Router::new()
        .merge(control::router(config))
        .merge(ms::router())
        .merge(google::router())
        .with_state(sim)
        // A handler that panics answers 500 instead of dropping the
        // connection: a client under test sees an error, never a hang-up.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
}
