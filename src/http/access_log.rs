//! One middleware for every request: the access-log line and the request metrics.
//!
//! The line carries method, path, status, latency, the authenticated client and the
//! peer address — never headers, bodies or query strings, where RFC 6749 §2.3.1
//! credentials and RFC 6750 §2.3 query tokens would travel.
use super::metrics::UNMATCHED;
use super::{LoggedClient, State};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest};
use std::time::Instant;

/// The log target, so `RUST_LOG=tollgate::access=off` silences only these lines.
pub const TARGET: &str = "tollgate::access";

/// Wrap the app with `middleware::from_fn(observe)`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let result = next.call(req).await;
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(res) => record(res.request(), res.status(), seconds),
        // Handlers' and extractors' errors arrive as responses; this is a middleware failing.
        Err(e) => log::warn!(target: TARGET, "request failed before a response: {e}"),
    }
    result
}

fn record(req: &HttpRequest, status: StatusCode, seconds: f64) {
    let route = req.match_pattern();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    if let Some(state) = req.app_data::<State>() {
        state
            .metrics
            .observe_request(route, status.as_str(), seconds);
    }
    // Set only after the client authenticated: a failed attempt's claimed name is not logged.
    let client = req
        .extensions()
        .get::<LoggedClient>()
        .map_or_else(|| "-".to_owned(), |c| c.0.clone());
    let remote = req
        .peer_addr()
        .map_or_else(|| "-".to_owned(), |a| a.ip().to_string());
    // `path()` is the URI path alone: the query string is never part of it.
    log::info!(
        target: TARGET,
        "{remote} \"{} {}\" {} {:.1}ms client={client}",
        req.method(),
        req.path(),
        status.as_u16(),
        seconds * 1000.0
    );
}
