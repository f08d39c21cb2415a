//! GET /metrics: Prometheus text exposition format 0.0.4 (API.md §5).
//!
//! tollgate keeps its own [`Registry`] in [`AppState`](super::AppState) rather than
//! the process-global one, so two servers in one process (the tests) never share counts.
use super::errors::Problem;
use super::State;
use actix_web::HttpResponse;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder, TEXT_FORMAT,
};

/// The label for requests that matched no route: raw paths would let any client
/// mint new time series.
pub const UNMATCHED: &str = "unmatched";

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    grants: IntCounterVec,
    seats_total: IntGauge,
    seats_held: IntGauge,
    pbkdf2: IntGauge,
}

impl Metrics {
    /// Registers every family. Fails only on a malformed name or a duplicate, a bug.
    pub fn new() -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "tollgate_http_requests_total",
                "HTTP requests by matched route pattern and response status.",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "tollgate_http_request_duration_seconds",
                "Time from request head to response head, by matched route pattern.",
            ),
            &["route"],
        )?;
        let grants = IntCounterVec::new(
            Opts::new(
                "tollgate_grants_total",
                "Token requests by grant type and outcome (ok or the RFC 6749 §5.2 error code).",
            ),
            &["grant_type", "outcome"],
        )?;
        let seats_total = IntGauge::new("tollgate_seats_total", "Licence seats in the pool.")?;
        let seats_held = IntGauge::new(
            "tollgate_seats_held",
            "Licence seats held by live licensed sessions.",
        )?;
        let pbkdf2 = IntGauge::new(
            "tollgate_pbkdf2_computations",
            "PBKDF2 computations run (shared and cached verifications are not counted again).",
        )?;
        let registry = Registry::new();
        registry.register(Box::new(pbkdf2.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(grants.clone()))?;
        registry.register(Box::new(seats_total.clone()))?;
        registry.register(Box::new(seats_held.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            grants,
            seats_total,
            seats_held,
            pbkdf2,
        })
    }

    /// One finished request. `route` is a route pattern or [`UNMATCHED`], never a raw path.
    pub fn observe_request(&self, route: &str, status: &str, seconds: f64) {
        self.requests.with_label_values(&[route, status]).inc();
        self.duration.with_label_values(&[route]).observe(seconds);
    }

    /// One token request; `outcome` is `ok` or the RFC 6749 §5.2 error code.
    pub fn count_grant(&self, grant_type: &str, outcome: &str) {
        self.grants.with_label_values(&[grant_type, outcome]).inc();
    }

    /// The text exposition, with the seat gauges set to the values just read.
    pub fn render(
        &self,
        seats_total: i64,
        seats_held: i64,
        pbkdf2: usize,
    ) -> Result<String, prometheus::Error> {
        self.pbkdf2.set(i64::try_from(pbkdf2).unwrap_or(i64::MAX));
        self.seats_total.set(seats_total);
        self.seats_held.set(seats_held);
        TextEncoder::new().encode_to_string(&self.registry.gather())
    }
}

/// Seats are read from the database at scrape time, so an admin's change shows at once.
pub async fn get_metrics(state: State) -> Result<HttpResponse, Problem> {
    let seats = state.store.seats().await?;
    let body = state
        .metrics
        .render(seats.total, seats.held, state.oauth.verifier.computed())
        .map_err(|e| {
            log::error!("metrics exposition: {e}");
            Problem::internal()
        })?;
    Ok(HttpResponse::Ok()
        .content_type(format!("{TEXT_FORMAT}; charset=utf-8"))
        .body(body))
}
