//! The HTTP surface: shared state, extractors, handlers and the one route table.
pub mod access_log;
pub mod bearer;
pub mod body;
pub mod events;
pub mod getdata;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod product_input;
pub mod products;
pub mod remote;
pub mod revocation;
pub mod token;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::error::Problem;
use crate::oauth::verified::VerifiedCredentials;
use crate::store::Db;
use actix_web::web;

pub struct AppState {
    pub db: Db,
    pub clock: SharedClock,
    pub settings: Settings,
    pub verified: VerifiedCredentials,
    /// Verified when the client is unknown, so that timing does not tell.
    pub dummy_hash: String,
    /// Prometheus counters and gauges for GET /metrics.
    pub metrics: metrics::Metrics,
    pub audit: crate::audit::AuditLog,
    /// Brute-force throttling of client authentication.
    pub throttle: crate::oauth::throttle::Throttle,
    /// Bounded, single-flight PBKDF2.
    pub verifier: crate::hashing::Verifier,
    /// Read-only connections for GetData queries.
    pub sandbox: crate::getdata::Sandbox,
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
    cfg.route(
        &format!("/.well-known/oauth-authorization-server{base_path}"),
        web::get().to(meta::get_metadata),
    );
    cfg.service(
        web::scope(base_path)
            .service(
                web::resource("/token")
                    .route(web::post().to(token::post_token))
                    .default_service(web::to(token::method_not_allowed)),
            )
            .service(
                web::resource("/revoke")
                    .route(web::post().to(revocation::post_revoke))
                    .default_service(web::to(token::method_not_allowed)),
            )
            .service(
                web::resource("/introspect")
                    .route(web::post().to(revocation::post_introspect))
                    .default_service(web::to(token::method_not_allowed)),
            )
            .route("/healthz", web::get().to(meta::get_healthz))
            .route("/readyz", web::get().to(meta::get_readyz))
            .route("/metrics", web::get().to(metrics::get_metrics))
            .route("/openapi.json", web::get().to(openapi::get_openapi))
            .service(
                web::resource("/api/v1/products")
                    .route(web::get().to(products::list_products))
                    .route(web::post().to(products::post_product)),
            )
            .service(
                web::resource("/api/v1/products/{sku}")
                    .route(web::get().to(products::get_product))
                    .route(web::put().to(products::put_product))
                    .route(web::delete().to(products::delete_product)),
            )
            .route(
                "/api/v1/custom/getdata",
                web::get().to(getdata::get_getdata),
            )
            .route("/api/v1/custom/{name}", web::get().to(getdata::get_custom))
            .service(web::resource("/api/v1/me").route(web::get().to(products::get_me))),
    );
}

pub async fn not_found() -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::not_found("no such route"))
}
