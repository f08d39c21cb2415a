//! The edges: the exact second a token or seat expires, a seat that slides with its
//! session, and documented branches that no ordinary client sends.
use crate::helpers::*;
use serde_json::Value;

const DEMO: (&str, &str) = ("demo", "demo-secret");
const VIEWER: (&str, &str) = ("viewer", "viewer-secret");

async fn post_form(
    app: &TestApp,
    path: &str,
    body: &str,
    basic: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut rb = app
        .client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some((u, p)) = basic {
        rb = rb.basic_auth(u, Some(p));
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r
}

/// RFC 7662: whether the server still calls the token active.
async fn active(app: &TestApp, token: &str, who: (&str, &str)) -> bool {
    let r = post_form(app, "/introspect", &format!("token={token}"), Some(who)).await;
    let v: Value = r.json().await.unwrap();
    v["active"].as_bool().expect("active is a boolean")
}

/// The Unix second at which a token of the grant answer `t` dies.
fn expiry(t: &Value, field: &str) -> i64 {
    START + t[field].as_i64().expect("lifetime in seconds")
}

async fn refresh_ok(app: &TestApp, who: (&str, &str), refresh_token: &str) -> Value {
    let r = app.refresh(who.0, who.1, refresh_token, None).await;
    assert_eq!(r.status(), 200, "refresh must succeed");
    r.json().await.unwrap()
}

async fn licensed_grant_refused(app: &TestApp) -> Option<String> {
    let r = app.grant(DEMO.0, DEMO.1, Some("all")).await;
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_oauth_error(r, 403, "licence_unavailable").await;
    retry_after
}

// ---- a seat moves with its session ----

crate::on_both_engines! {
    async fn a_refreshed_session_keeps_its_seat_past_its_first_expiry(app) {
        app.set_seats(1);
        let t = app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        app.clock.advance(600);
        let n = refresh_ok(&app, DEMO, &s(&t["refresh_token"])).await;
        let slid_to = START + 600 + n["refresh_token_expires_in"].as_i64().unwrap();

        // Past the first grant's expiry, before the refreshed one's.
        app.clock.set(expiry(&t, "refresh_token_expires_in") + 100);
        let wait = slid_to - app.clock_now();
        assert_eq!(
            licensed_grant_refused(&app).await,
            Some(wait.to_string()),
            "the refreshed session still holds the only seat"
        );
        assert_eq!(app.seats_held(), 1);
        let n = refresh_ok(&app, DEMO, &s(&n["refresh_token"])).await;
        let me: Value = app.me(&s(&n["access_token"])).await.json().await.unwrap();
        assert_eq!(me["seat"], true);
        assert_eq!(
            me["session_expires_at"],
            app.clock_now() + n["refresh_token_expires_in"].as_i64().unwrap()
        );

        // When the session finally expires, its seat frees once: one grant, not two.
        app.clock.set(me["session_expires_at"].as_i64().unwrap());
        app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        licensed_grant_refused(&app).await;
        assert_eq!(app.seats_held(), 1);
    }
}

crate::on_both_engines! {
    async fn a_revoked_seat_frees_once_and_the_pool_stays_exact(app) {
        app.set_seats(1);
        let a = app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        post_form(
            &app,
            "/revoke",
            &format!("token={}", s(&a["refresh_token"])),
            Some(DEMO),
        )
        .await;
        assert_eq!(app.seats_held(), 0);
        // In the same second: the new session's seat frees at the same second as the old.
        let b = app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        assert_eq!(
            licensed_grant_refused(&app).await,
            Some(b["refresh_token_expires_in"].to_string())
        );

        app.clock.set(expiry(&b, "refresh_token_expires_in"));
        assert_eq!(app.seats_held(), 0);
        app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        licensed_grant_refused(&app).await;
        assert_eq!(app.seats_held(), 1);
    }
}

// ---- the exact second of expiry ----

crate::on_both_engines! {
    async fn an_access_token_is_valid_until_the_second_before_its_expiry(app) {
        let t = app.grant_ok(VIEWER.0, VIEWER.1, None).await;
        let at = s(&t["access_token"]);
        let expires_at = expiry(&t, "expires_in");

        app.clock.set(expires_at - 1);
        let r = app.me(&at).await;
        assert_eq!(r.status(), 200, "one second before expiry");
        let me: Value = r.json().await.unwrap();
        assert_eq!(me["expires_at"], expires_at);
        assert!(active(&app, &at, VIEWER).await);

        for now in [expires_at, expires_at + 1] {
            app.clock.set(now);
            let r = app.me(&at).await;
            assert_eq!(r.status(), 401, "at expires_at {:+}", now - expires_at);
            let challenge = r.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
            assert!(!active(&app, &at, VIEWER).await, "introspection at {now}");
        }
    }
}

crate::on_both_engines! {
    async fn a_refresh_token_is_valid_until_the_second_before_its_expiry(app) {
        // Three sessions of the same second: each refresh token is tried once.
        let before = app.grant_ok(VIEWER.0, VIEWER.1, None).await;
        let at = app.grant_ok(VIEWER.0, VIEWER.1, None).await;
        let after = app.grant_ok(VIEWER.0, VIEWER.1, None).await;
        let expires_at = expiry(&at, "refresh_token_expires_in");

        app.clock.set(expires_at - 1);
        assert!(active(&app, &s(&at["refresh_token"]), VIEWER).await);
        refresh_ok(&app, VIEWER, &s(&before["refresh_token"])).await;

        app.clock.set(expires_at);
        assert!(!active(&app, &s(&at["refresh_token"]), VIEWER).await);
        let r = app
            .refresh(VIEWER.0, VIEWER.1, &s(&at["refresh_token"]), None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;

        app.clock.set(expires_at + 1);
        let r = app
            .refresh(VIEWER.0, VIEWER.1, &s(&after["refresh_token"]), None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
}

crate::on_both_engines! {
    async fn a_seat_frees_at_its_expiry_second_and_its_refresh_token_dies_with_it(app) {
        app.set_seats(1);
        let a = app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        let expires_at = expiry(&a, "refresh_token_expires_in");

        app.clock.set(expires_at - 1);
        assert_eq!(licensed_grant_refused(&app).await, Some("1".into()));
        assert_eq!(app.seats_held(), 1);

        app.clock.set(expires_at);
        let b = app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        let r = app
            .refresh(DEMO.0, DEMO.1, &s(&a["refresh_token"]), None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        assert_eq!(app.seats_held(), 1, "one seat, held by the new session");
        licensed_grant_refused(&app).await;

        app.clock.set(expires_at + 1);
        let r = app
            .refresh(DEMO.0, DEMO.1, &s(&a["refresh_token"]), None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        assert_eq!(
            licensed_grant_refused(&app).await,
            Some((b["refresh_token_expires_in"].as_i64().unwrap() - 1).to_string())
        );
        assert_eq!(app.seats_held(), 1);
    }
}

// ---- documented branches ----

crate::on_both_engines! {
    async fn a_body_client_secret_without_client_id_is_invalid_request(app) {
        let r = app
            .post_token(
                "grant_type=client_credentials&client_secret=demo-secret",
                None,
            )
            .await;
        let body = assert_oauth_error(r, 400, "invalid_request").await;
        assert!(
            s(&body["error_description"]).contains("client_id"),
            "{body}"
        );
    }
}

crate::on_both_engines! {
    async fn an_api_user_with_no_scopes_is_refused_with_invalid_scope(app) {
        let v = cli_json(&app, &["user", "add", "bare", "--scopes", "", "--json"]);
        let secret = s(&v["client_secret"]);
        for scope in [None, Some("bare")] {
            let r = app.grant("bare", &secret, scope).await;
            assert_oauth_error(r, 400, "invalid_scope").await;
        }
        let r = app.grant("bare", &secret, Some("view")).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
}

crate::on_both_engines! {
    async fn a_scope_of_1024_bytes_is_read_and_1025_refused(app) {
        let longest = format!("view{}", " view".repeat(204));
        assert_eq!(longest.len(), 1024);
        let t = app.grant_ok(DEMO.0, DEMO.1, Some(&longest)).await;
        assert_eq!(t["scope"], "view");

        let too_long = format!("view {}", " view".repeat(204));
        assert_eq!(too_long.len(), 1025);
        let r = app.grant(DEMO.0, DEMO.1, Some(&too_long)).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
}

crate::on_both_engines! {
    async fn licences_set_to_zero_while_a_seat_is_held_refuses_without_retry_after(app) {
        let t = app.grant_ok(DEMO.0, DEMO.1, Some("all")).await;
        ok(&app, &["licences", "set", "0"]);
        assert_eq!(
            app.seats_held(),
            1,
            "a held seat is kept when the pool shrinks"
        );
        assert_eq!(licensed_grant_refused(&app).await, None);
        assert_eq!(
            app.grant_ok(DEMO.0, DEMO.1, Some("view")).await["scope"],
            "view"
        );
        refresh_ok(&app, DEMO, &s(&t["refresh_token"])).await;
    }
}

/// A licensed grant whose group is rolled back (another job in it failed) runs
/// again; the seat ledger must forget what the undone run counted, or the grant
/// finds its own phantom seat taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_run_again_after_a_rollback_beside_it_takes_its_seat() {
    let app = spawn_app().await;
    app.set_seats(1);
    // Hold the writer, so that the grant and a failing job share the next group.
    let held = app.sqlite();
    let holder = tokio::spawn(async move {
        held.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(600));
            Ok(())
        })
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let grant = {
        let (client, url) = (app.client.clone(), app.url("/token"));
        tokio::spawn(async move {
            client
                .post(url)
                .basic_auth("demo", Some("demo-secret"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=all")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let failing = app
        .sqlite()
        .write(|_| -> Result<(), tollgate::store::StoreError> {
            Err(tollgate::store::StoreError::Invalid(
                "a job that fails".into(),
            ))
        })
        .await;
    assert!(failing.is_err());
    holder.await.unwrap().unwrap();
    assert_eq!(grant.await.unwrap(), 200, "the grant was refused its seat");
    assert_eq!(app.seats_held(), 1);
    let r = app.grant(DEMO.0, DEMO.1, Some("all")).await;
    assert_eq!(r.status(), 403, "the one seat is held, once");
}
