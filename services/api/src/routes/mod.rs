//! Every route, registered with its OpenAPI description (utoipa), so the
//! document at `/openapi.json` covers exactly what is served.

pub mod accounts;
pub mod audit_log;
pub mod backups;
pub mod connections;
pub mod exports;
pub mod grants;
pub mod lifecycle;
pub mod login;
pub mod partners;
pub mod principals;
pub mod restores;
pub mod retention;
pub mod search;
pub mod tenants;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Arkiv API", description = "Cloud-to-cloud backup for Microsoft 365 and Google Workspace: tenancy, connections, backup runs, access and audit."),
    paths(health_doc, metrics_doc, openapi_doc),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Console login and the caller"),
        (name = "partners"), (name = "tenants"), (name = "principals"),
        (name = "connections", description = "Microsoft 365 admin consent and Google Workspace delegation"),
        (name = "accounts"),
        (name = "backups", description = "Backup runs and their progress"),
        (name = "search", description = "Finding backed-up items and their versions"),
        (name = "restore", description = "Writing backed-up items back to the source"),
        (name = "export", description = "Exports in standard formats (GDPR portability)"),
        (name = "erasures", description = "Erasure of one account's data (GDPR art. 17) and its certificate"),
        (name = "support"), (name = "audit"), (name = "ops"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

#[derive(Debug)]
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An Arkiv API token (ark_...)"))
                    .build(),
            ),
        );
    }
}

/// Liveness and dependency health (served by arkiv-runtime).
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "healthy"), (status = 503, description = "a dependency is down")))]
#[allow(dead_code)]
fn health_doc() {}

/// Prometheus metrics (served by arkiv-runtime).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format")))]
#[allow(dead_code)]
fn metrics_doc() {}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3 document")))]
#[allow(dead_code)]
fn openapi_doc() {}

/// The API's routes and their OpenAPI document.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(login::login))
        .routes(routes!(login::me))
        .routes(routes!(partners::create, partners::list))
        .routes(routes!(partners::get))
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::get, tenants::update))
        .routes(routes!(retention::get, retention::put))
        .routes(routes!(lifecycle::end))
        .routes(routes!(lifecycle::purge))
        .routes(routes!(lifecycle::reactivate))
        .routes(routes!(
            lifecycle::request_erasure,
            lifecycle::list_erasures
        ))
        .routes(routes!(lifecycle::get_erasure))
        .routes(routes!(lifecycle::certificate))
        .routes(routes!(principals::create, principals::list))
        .routes(routes!(principals::get, principals::disable))
        .routes(routes!(principals::set_credentials))
        .routes(routes!(principals::create_token, principals::list_tokens))
        .routes(routes!(principals::revoke_token))
        .routes(routes!(connections::connect_m365))
        .routes(routes!(connections::m365_callback))
        .routes(routes!(connections::connect_google))
        .routes(routes!(connections::verify))
        .routes(routes!(connections::list))
        .routes(routes!(
            connections::get,
            connections::update,
            connections::revoke
        ))
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::update))
        .routes(routes!(backups::start, backups::list))
        .routes(routes!(backups::get))
        .routes(routes!(grants::create, grants::list))
        .routes(routes!(grants::revoke))
        .routes(routes!(audit_log::export))
        .routes(routes!(audit_log::verify))
        .routes(routes!(search::search))
        .routes(routes!(search::versions))
        .routes(routes!(restores::start))
        .routes(routes!(restores::get))
        .routes(routes!(restores::retry))
        .routes(routes!(restores::list))
        .routes(routes!(exports::export))
        .routes(routes!(exports::get))
        .split_for_parts()
}
