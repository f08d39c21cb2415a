//! The HTTP surface: shared state, extractors, handlers and the one route table.
pub mod access_log;
pub mod admin;
pub mod authentication;
pub mod bearer;
pub mod body;
pub mod connections;
mod console;
pub mod errors;
pub mod events;
pub mod getdata;
pub mod home;
pub mod me;
pub mod meta;
pub mod metrics;
pub mod mounts;
pub mod openapi;
pub mod product_input;
pub mod products;
pub mod remote;
pub mod revocation;
pub mod scripts;
pub mod token;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::oauth::Authority;
use crate::store::SharedStore;
use actix_web::web;
use errors::Problem;

/// What every handler of one database shares.
pub struct AppState {
    /// The grants and client authentication over this database's store.
    pub oauth: Authority,
    /// The same store as `oauth.store`, for the resource routes.
    pub store: SharedStore,
    pub clock: SharedClock,
    pub settings: Settings,
    /// Prometheus counters and gauges for GET /metrics.
    pub metrics: metrics::Metrics,
}

pub type State = web::Data<AppState>;

impl AppState {
    /// The client's address as throttling and the audit trail see it.
    pub fn remote_ip(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        remote::remote_ip(req, &self.settings.trusted_proxies)
    }
}

/// The client a request authenticated as, left in the request's extensions for the access log.
#[derive(Debug, Clone)]
pub struct LoggedClient(pub String);

/// The route table. Everything sits under the configured base path.
pub fn routes(cfg: &mut web::ServiceConfig, base_path: &str) {
    // RFC 8414 §3: the well-known segment goes between the host and the base path.
    cfg.service(readable(
        &format!("/.well-known/oauth-authorization-server{base_path}"),
        meta::get_metadata,
    ));
    home::routes(cfg, base_path);
    console::routes(cfg, base_path);
    cfg.service(
        web::scope(base_path)
            .service(post_only("/token", token::post_token))
            .service(post_only("/revoke", revocation::post_revoke))
            .service(post_only("/introspect", revocation::post_introspect))
            .service(readable("/healthz", meta::get_healthz))
            .service(readable("/readyz", meta::get_readyz))
            .service(readable("/metrics", metrics::get_metrics))
            .service(readable("/openapi.json", openapi::get_openapi))
            .service(readable("/.well-known/jwks.json", meta::get_jwks))
            .service(
                readable("/api/v1/products", products::list_products)
                    .route(web::post().to(products::post_product)),
            )
            .service(
                readable("/api/v1/products/{sku}", products::get_product)
                    .route(web::put().to(products::put_product))
                    .route(web::delete().to(products::delete_product)),
            )
            .service(readable("/api/v1/custom/getdata", getdata::get_getdata))
            .service(
                web::resource("/api/v1/custom/{name}").default_service(web::to(scripts::custom)),
            )
            .service(readable("/api/v1/me", me::get_me))
            .configure(admin::routes),
    );
}

/// GET, and HEAD by the same handler (RFC 9110 §9.3.2: actix drops the body);
/// any other method not routed is 405 with `Allow`.
fn readable<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
}

/// The OAuth endpoints: POST only, and an OAuth-shaped 405 for anything else.
fn post_only<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(token::method_not_allowed))
}

pub async fn not_found() -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::not_found("no such route"))
}
