//! GET /metrics: Prometheus text exposition format 0.0.4 (API.md §5).
//!
//! tollgate keeps a [`Registry`] per mount in its [`AppState`](super::AppState) rather
//! than the process-global one, so two servers in one process (the tests) never share
//! counts; every series of a mount carries its `mount` label (API.md §12).
use super::errors::Problem;
use super::{AppState, State};
use actix_web::HttpResponse;
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder, TEXT_FORMAT,
};
use std::collections::BTreeMap;

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
}

impl Metrics {
    /// Registers every family, each series labelled `mount` (`/` for the root).
    /// Fails only on a malformed name or a duplicate, a bug.
    pub fn new(mount: &str) -> Result<Self, prometheus::Error> {
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
        let labels = [("mount".to_owned(), mount.to_owned())].into();
        let registry = Registry::new_custom(None, Some(labels))?;
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

    /// This mount's families, with the seat gauges set to the values just read.
    fn gather(&self, seats_total: i64, seats_held: i64) -> Vec<MetricFamily> {
        self.seats_total.set(seats_total);
        self.seats_held.set(seats_held);
        self.registry.gather()
    }
}

/// The text exposition of `mounts` (one, or all of the process's), families of the
/// same name merged, and the process-wide PBKDF2 count once. Seats are read from each
/// database at scrape time, so an admin's change shows at once.
pub async fn exposition(mounts: &[&AppState]) -> Result<String, Problem> {
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    let mut add = |family: MetricFamily| match families.get_mut(family.name()) {
        Some(same) => same
            .mut_metric()
            .extend(family.get_metric().iter().cloned()),
        None => {
            families.insert(family.name().to_owned(), family);
        }
    };
    for state in mounts {
        let seats = state.store.seats().await?;
        state
            .metrics
            .gather(seats.total, seats.held)
            .into_iter()
            .for_each(&mut add);
    }
    if let Some(first) = mounts.first() {
        pbkdf2_family(first.oauth.verifier.computed())
            .map_err(internal)?
            .into_iter()
            .for_each(&mut add);
    }
    let families: Vec<MetricFamily> = families.into_values().collect();
    TextEncoder::new()
        .encode_to_string(&families)
        .map_err(internal)
}

/// The PBKDF2 gate is shared by every mount: its count is the process's.
fn pbkdf2_family(computed: usize) -> Result<Vec<MetricFamily>, prometheus::Error> {
    let gauge = IntGauge::new(
        "tollgate_pbkdf2_computations",
        "PBKDF2 computations run (shared and cached verifications are not counted again).",
    )?;
    gauge.set(i64::try_from(computed).unwrap_or(i64::MAX));
    let registry = Registry::new();
    registry.register(Box::new(gauge))?;
    Ok(registry.gather())
}

fn internal(e: prometheus::Error) -> Problem {
    log::error!("metrics exposition: {e}");
    Problem::internal()
}

/// `{base}/metrics`: this mount's series.
pub async fn get_metrics(state: State) -> Result<HttpResponse, Problem> {
    text(exposition(&[&state]).await?)
}

/// Prometheus text format 0.0.4.
pub fn text(body: String) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok()
        .content_type(format!("{TEXT_FORMAT}; charset=utf-8"))
        .body(body))
}
