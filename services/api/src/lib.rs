//! Arkiv's HTTP API (axum) for partners, tenant admins and support:
//! tenancy, principals and tokens, OAuth connections, protected accounts,
//! retention, support grants and the audit log. Every route is described
//! in the OpenAPI document served at `/openapi.json`.
//!
//! Layout: `routes/` has one module per resource; `auth` resolves callers
//! (API tokens, console login); `scope` asks `arkiv_domain::access` whether
//! a caller may act, answering 404 outside their scope; `audit` wraps every
//! state-changing call so its writes and its audit entry commit together;
//! `error` turns every failure into a problem document.

mod audit;
mod auth;
mod error;
pub mod routes;
mod scope;
mod state;
mod tenant_data;
mod validate;

use std::future::Future;
use std::net::SocketAddr;

use arkiv_runtime::{Deps, Health, Needs, Settings, StartError};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use error::Problem;
pub use state::AppState;

pub const SERVICE: &str = "arkiv-api";

/// A built, connected API server, ready to run.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Self, StartError> {
        let deps = Deps::connect(settings, Needs::ALL).await?;
        let runs = crate::state::RunQueue::new(deps.broker().clone()).await?;
        let state = AppState::new(settings, deps.db().clone(), deps.store().clone(), runs)?;
        let listener = arkiv_runtime::bind(settings.api.listen, "api.listen").await?;
        let (api, openapi) = routes::router();
        let openapi = std::sync::Arc::new(openapi);
        let router = api
            .with_state(state)
            .route(
                "/openapi.json",
                get(move || async move { axum::Json((*openapi).clone()) }),
            )
            .merge(arkiv_runtime::ops_router(Health::new(SERVICE, deps)))
            .layer(tower_http::trace::TraceLayer::new_for_http());
        Ok(Self { listener, router })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        arkiv_runtime::serve(self.listener, self.router, shutdown).await
    }
}
