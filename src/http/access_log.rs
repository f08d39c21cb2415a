//! One middleware for every request: the access-log line and the request metrics.
//!
//! The line carries method, path (long segments cut), status, latency, the
//! authenticated client and the client's address (as a trusted proxy gives it) —
//! never headers, bodies or query strings, where RFC 6749 §2.3.1 credentials and
//! RFC 6750 §2.3 query tokens would travel.
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
    // The address throttling and the audit trail see: a trusted proxy's client.
    let remote = match req.app_data::<State>() {
        Some(state) => state.remote_ip(req),
        None => req.peer_addr().map(|a| a.ip()),
    }
    .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    // `path()` is the URI path alone: the query string is never part of it.
    log::info!(
        target: TARGET,
        "{remote} \"{} {}\" {} {:.1}ms client={client}",
        req.method(),
        shown_path(req.path()),
        status.as_u16(),
        seconds * 1000.0
    );
}

/// Path segments longer than this are cut in the log: a token a client put in the
/// path (54 characters) never reaches it whole, while skus and query names mostly do.
const LONGEST_SEGMENT: usize = 32;

fn shown_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.split('/').all(|seg| seg.len() <= LONGEST_SEGMENT) {
        return path.into();
    }
    path.split('/')
        .map(|seg| match seg.char_indices().nth(8) {
            Some((cut, _)) if seg.len() > LONGEST_SEGMENT => format!("{}…", &seg[..cut]),
            _ => seg.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
        .into()
}

#[cfg(test)]
mod tests {
    use super::shown_path;

    #[test]
    fn long_path_segments_are_cut() {
        assert_eq!(
            shown_path("/api/v1/products/NUT-M6"),
            "/api/v1/products/NUT-M6"
        );
        let token = "AAAAAAAAAAEgk4mZl1XcEYjzoCeVtb9-Ta0rBQyTYh4xdzpWn5P-fw";
        assert_eq!(
            shown_path(&format!("/api/v1/products/{token}")),
            "/api/v1/products/AAAAAAAA…"
        );
        assert_eq!(
            shown_path(&format!("/{}", "é".repeat(40))),
            format!("/{}…", "é".repeat(8))
        );
    }
}
