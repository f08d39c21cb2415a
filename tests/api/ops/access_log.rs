//! The access log: one line per request with the client id, and never a
//! secret, a token or an Authorization header value, wherever the client put them.
use super::{serve_demo, LIMIT};
use base64::Engine;
use reqwest::Client;
use serde_json::Value;

async fn token_request(c: &Client, base: &str, form: &[(&str, &str)], basic: bool) -> Value {
    let mut rb = c.post(format!("{base}/token")).form(form);
    if basic {
        rb = rb.basic_auth("demo", Some("demo-secret"));
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn field(v: &Value, name: &str) -> String {
    v[name].as_str().expect(name).to_owned()
}

#[tokio::test]
async fn access_log_names_the_client_but_never_a_secret_or_token() {
    let (_dir, _db, port, mut server) = serve_demo(&[]);
    let base = format!("http://127.0.0.1:{port}");
    let c = Client::new();

    // RFC 6749 §2.3.1: Basic credentials, then credentials in the body.
    let basic = token_request(&c, &base, &[("grant_type", "client_credentials")], true).await;
    let post = [
        ("grant_type", "client_credentials"),
        ("scope", "view"),
        ("client_id", "viewer"),
        ("client_secret", "viewer-secret"),
    ];
    let posted = token_request(&c, &base, &post, false).await;
    let refresh = field(&basic, "refresh_token");
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", &refresh)];
    let rotated = token_request(&c, &base, &refresh_form, true).await;
    let access = field(&rotated, "access_token");

    let me = c
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // RFC 6750 §2.3 query tokens are not accepted, and must not be logged either.
    let query = format!("{base}/api/v1/products?access_token={access}");
    assert_eq!(c.get(query).send().await.unwrap().status(), 401);
    let wrong = c
        .post(format!("{base}/token"))
        .basic_auth("demo", Some("a-wrong-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let status = server.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", server.stderr());
    let log = server.stderr();
    let basic_header = base64::engine::general_purpose::STANDARD.encode("demo:demo-secret");
    let secrets = [
        "demo-secret".to_owned(),
        "viewer-secret".to_owned(),
        "a-wrong-secret".to_owned(),
        basic_header,
        field(&basic, "access_token"),
        refresh,
        field(&posted, "access_token"),
        field(&posted, "refresh_token"),
        access,
        field(&rotated, "refresh_token"),
        "access_token=".to_owned(),
    ];
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} is in the log:\n{log}"
        );
    }

    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tollgate::access") && !l.contains("/healthz"))
        .collect();
    let has = |what: &str, client: &str| {
        lines
            .iter()
            .any(|l| l.contains(what) && l.ends_with(&format!("client={client}")))
    };
    assert!(has("\"POST /token\" 200", "demo"), "{log}");
    assert!(has("\"POST /token\" 200", "viewer"), "{log}");
    assert!(has("\"GET /api/v1/me\" 200", "demo"), "{log}");
    assert!(has("\"GET /api/v1/products\" 401", "-"), "{log}");
    assert!(has("\"POST /token\" 401", "-"), "{log}");
    assert_eq!(lines.len(), 6, "one line per request:\n{log}");
}

#[tokio::test]
async fn access_log_shows_the_forwarded_address_and_never_a_token_put_in_the_path() {
    let (_dir, _db, port, mut server) = serve_demo(&["--trusted-proxy", "127.0.0.1"]);
    let base = format!("http://127.0.0.1:{port}");
    let c = Client::new();
    let form = [("grant_type", "client_credentials"), ("scope", "view")];
    let t = token_request(&c, &base, &form, true).await;
    let access = field(&t, "access_token");
    let r = c
        .get(format!("{base}/api/v1/products/{access}"))
        .bearer_auth(&access)
        .header("X-Forwarded-For", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let status = server.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", server.stderr());
    let log = server.stderr();
    assert!(!log.contains(&access), "the token is in the log:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("tollgate::access") && l.contains("/api/v1/products/"))
        .expect("the product request's line");
    assert!(
        line.contains("203.0.113.77 \"GET /api/v1/products/"),
        "{line}"
    );
    assert!(line.contains(&format!("{}…", &access[..8])), "{line}");
}
