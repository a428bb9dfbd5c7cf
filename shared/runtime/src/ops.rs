//! `/healthz` and `/metrics`.

use std::collections::BTreeMap;
use std::future::Future;

use arkiv_db::sea_orm::ConnectionTrait;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::{Deps, StartError};

/// What `/healthz` checks: the service's dependencies.
#[derive(Clone, Debug)]
pub struct Health {
    service: &'static str,
    deps: Deps,
}

impl Health {
    pub fn new(service: &'static str, deps: Deps) -> Self {
        Self { service, deps }
    }

    /// Check every dependency now; `Ok` only if all are usable.
    pub async fn check(&self) -> HealthReport {
        let mut checks = BTreeMap::new();
        if let Some(db) = &self.deps.db {
            let result = db.execute_unprepared("SELECT 1").await;
            checks.insert("postgres", outcome(result.map(drop)));
        }
        if let Some(broker) = &self.deps.broker {
            let result = if broker.is_connected() {
                Ok(())
            } else {
                Err("connection closed")
            };
            checks.insert("rabbitmq", outcome(result));
        }
        if let Some(store) = &self.deps.store {
            checks.insert("s3", outcome(store.check().await));
        }
        let healthy = checks.values().all(|c| c == "ok");
        HealthReport {
            service: self.service,
            status: if healthy { "ok" } else { "unhealthy" },
            checks,
        }
    }
}

fn outcome<E: std::fmt::Display>(result: Result<(), E>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) => format!("error: {e}"),
    }
}

#[derive(Debug, Serialize)]
pub struct HealthReport {
    pub service: &'static str,
    pub status: &'static str,
    pub checks: BTreeMap<&'static str, String>,
}

/// A router serving `/healthz` and `/metrics`, to serve alone or merge into
/// a service's own router.
pub fn ops_router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn healthz(State(health): State<Health>) -> impl IntoResponse {
    let report = health.check().await;
    let status = if report.status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        arkiv_telemetry::metrics().render(),
    )
}

/// Bind `addr` (port 0 picks a free port).
pub async fn bind(
    addr: std::net::SocketAddr,
    setting: &'static str,
) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr,
            setting,
            source,
        })
}

/// Serve `router` on `listener` until `shutdown` resolves, then finish the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    // Connect info gives handlers the peer address (login events keep it,
    // anonymised).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| StartError::Other(format!("HTTP server: {e}")))
}

/// The `/healthz` + `/metrics` server of a service without an HTTP API of
/// its own (worker, scheduler, connectors).
#[derive(Debug)]
pub struct OpsServer {
    listener: TcpListener,
    router: Router,
}

impl OpsServer {
    pub async fn bind(
        service: &'static str,
        addr: std::net::SocketAddr,
        setting: &'static str,
        deps: &Deps,
    ) -> Result<Self, StartError> {
        Ok(Self {
            listener: bind(addr, setting).await?,
            router: ops_router(Health::new(service, deps.clone())),
        })
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        serve(self.listener, self.router, shutdown).await
    }
}
