//! GET /metrics (API.md §5): Prometheus text format 0.0.4, checked line by line by
//! the strict reader below rather than trusted to the crate that wrote it.
use crate::helpers::{s, spawn_app, spawn_app_with, TestApp};
use std::collections::{BTreeMap, HashMap};

type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

fn valid_name(n: &str) -> bool {
    let mut b = n.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `k="v",k2="v2"` with the format's escapes (`\\`, `\"`, `\n`).
fn parse_labels(mut rest: &str, line: &str) -> Labels {
    let mut labels = Labels::new();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label: {line}"));
        assert!(valid_name(key), "label name {key:?}: {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?}: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        };
        assert!(labels.insert(key.to_owned(), value).is_none(), "{line}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// Every line is `# HELP`, `# TYPE` or a sample of a family whose TYPE came first.
pub fn parse_exposition(text: &str) -> Vec<Sample> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name) = (parts.next(), parts.next().unwrap_or_default());
            if kind == Some("TYPE") {
                let t = parts.next().unwrap_or_default();
                let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                assert!(known.contains(&t), "type {t:?}: {line}");
                assert!(types.insert(name.to_owned(), t.to_owned()).is_none());
            }
            if matches!(kind, Some("TYPE" | "HELP")) {
                assert!(valid_name(name), "name {name:?}: {line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value {v:?}: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, parse_labels(l.strip_suffix('}').expect("}"), line)),
            None => (series, Labels::new()),
        };
        assert!(valid_name(name), "metric name {name:?}: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

/// The sample of `name` with exactly `labels`, the `mount` label aside (API.md §12:
/// every per-mount series carries it).
pub fn find(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.keys().filter(|k| *k != "mount").count() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

async fn scrape(app: &TestApp) -> Vec<Sample> {
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let samples = parse_exposition(&r.text().await.unwrap());
    check_histograms(&samples);
    samples
}

/// Buckets never decrease and the `+Inf` bucket equals `_count`, per route.
fn check_histograms(samples: &[Sample]) {
    let name = "tollgate_http_request_duration_seconds";
    let mut by_route: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
    {
        let le = match s.labels["le"].as_str() {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        by_route
            .entry(&s.labels["route"])
            .or_default()
            .push((le, s.value));
    }
    for (route, mut buckets) in by_route {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{route}");
        let count = find(samples, &format!("{name}_count"), &[("route", route)]);
        assert_eq!(
            buckets.last().map(|b| b.1),
            count,
            "{route}: +Inf vs _count"
        );
    }
}

#[tokio::test]
async fn seats_gauge_matches_the_seats_held_after_two_licensed_grants() {
    let app = spawn_app().await;
    app.grant_ok("demo", "demo-secret", None).await;
    app.grant_ok("demo", "demo-secret", None).await;
    assert_eq!(app.seats_held(), 2);

    let m = scrape(&app).await;
    assert_eq!(find(&m, "tollgate_seats_held", &[]), Some(2.0));
    assert_eq!(find(&m, "tollgate_seats_total", &[]), Some(2.0));

    // Read at scrape time: an admin's change and the clock both show at once.
    app.set_seats(5);
    app.clock.advance(1201);
    assert_eq!(app.seats_held(), 0);
    let m = scrape(&app).await;
    assert_eq!(find(&m, "tollgate_seats_held", &[]), Some(0.0));
    assert_eq!(find(&m, "tollgate_seats_total", &[]), Some(5.0));
}

#[tokio::test]
async fn grants_total_counts_ok_and_invalid_client_outcomes() {
    let app = spawn_app().await;
    let body = app.grant_ok("viewer", "viewer-secret", None).await;
    app.refresh("viewer", "viewer-secret", &s(&body["refresh_token"]), None)
        .await;
    assert_eq!(app.grant("viewer", "wrong", None).await.status(), 401);
    assert_eq!(app.grant("nobody", "x", None).await.status(), 401);
    app.post_token("grant_type=password", Some(("viewer", "viewer-secret")))
        .await;

    let m = scrape(&app).await;
    let grants = |grant_type, outcome| {
        find(
            &m,
            "tollgate_grants_total",
            &[("grant_type", grant_type), ("outcome", outcome)],
        )
    };
    assert_eq!(grants("client_credentials", "ok"), Some(1.0));
    assert_eq!(grants("refresh_token", "ok"), Some(1.0));
    assert_eq!(grants("client_credentials", "invalid_client"), Some(2.0));
    assert_eq!(grants("other", "unsupported_grant_type"), Some(1.0));
}

#[tokio::test]
async fn request_counter_uses_the_route_pattern_not_the_raw_path() {
    let app = spawn_app().await;
    let token = s(&app.grant_ok("viewer", "viewer-secret", None).await["access_token"]);
    let product = "/api/v1/products/BOLT-M6-20";
    assert_eq!(app.get_with(product, &token).await.status(), 200);
    assert_eq!(
        app.get_with("/api/v1/products/NO-SUCH", &token)
            .await
            .status(),
        404
    );
    let r = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let m = scrape(&app).await;
    let requests = |route, status| {
        find(
            &m,
            "tollgate_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("/api/v1/products/{sku}", "200"), Some(1.0));
    assert_eq!(requests("/api/v1/products/{sku}", "404"), Some(1.0));
    assert_eq!(requests("/token", "200"), Some(1.0));
    assert_eq!(requests("unmatched", "404"), Some(1.0));
    for sample in &m {
        for v in sample.labels.values() {
            assert!(!v.contains("BOLT") && !v.contains("/no/such"), "{sample:?}");
        }
    }
}

#[tokio::test]
async fn metrics_live_under_the_base_path() {
    let app = spawn_app_with(|s| s.base_path = "/Jim_Test".into()).await;
    app.grant_ok("viewer", "viewer-secret", None).await;
    let m = scrape(&app).await; // app.url() carries the base path
    let token = [("route", "/Jim_Test/token"), ("status", "200")];
    assert_eq!(find(&m, "tollgate_http_requests_total", &token), Some(1.0));
}
