//! Logging and metrics set-up shared by every Arkiv process.
//!
//! [`init`] installs one `tracing` subscriber (human-readable or JSON, per
//! `log.format`) and one Prometheus recorder for the `metrics` facade; both
//! are process-global, so calling [`init`] again (as tests that start several
//! services in one process do) keeps the first and returns the same handle.
//!
//! Rule for every caller: log and label with ids, sizes, counts and keyed
//! hashes only. No e-mail address, subject, file name or other personal data
//! goes into a log field, span or metric label.

use std::sync::OnceLock;

use arkiv_config::{LogFormat, LogSettings};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Renders the process's metrics in the Prometheus text format.
#[derive(Clone, Debug)]
pub struct Metrics(PrometheusHandle);

impl Metrics {
    pub fn render(&self) -> String {
        // Without the exporter's own HTTP listener nothing else drains the
        // histogram buffers, so do it on each scrape.
        self.0.run_upkeep();
        self.0.render()
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Install logging for `service` and the metrics recorder; idempotent.
pub fn init(service: &'static str, log: &LogSettings) -> Metrics {
    init_logging(log);
    let metrics = metrics();
    tracing::debug!(service, "telemetry initialised");
    metrics
}

/// The process's metrics recorder, installed on first use.
pub fn metrics() -> Metrics {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness, say);
            // then this handle renders an empty registry, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            Metrics(handle)
        })
        .clone()
}

fn init_logging(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init fails only if a subscriber is already set: keep that one.
    let _ = match log.format {
        LogFormat::Human => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
