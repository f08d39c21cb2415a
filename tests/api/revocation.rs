//! Revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414), health.
use crate::helpers::*;
use serde_json::Value;

impl TestApp {
    async fn post_form(
        &self,
        path: &str,
        body: &str,
        basic: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let mut rb = self
            .client
            .post(self.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some((u, p)) = basic {
            rb = rb.basic_auth(u, Some(p));
        }
        rb.send().await.unwrap()
    }

    async fn revoke(
        &self,
        token: &str,
        hint: Option<&str>,
        who: (&str, &str),
    ) -> reqwest::Response {
        let mut body = format!("token={token}");
        if let Some(h) = hint {
            body.push_str(&format!("&token_type_hint={h}"));
        }
        self.post_form("/revoke", &body, Some(who)).await
    }

    async fn introspect(&self, token: &str, who: (&str, &str)) -> Value {
        let r = self
            .post_form("/introspect", &format!("token={token}"), Some(who))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        r.json().await.unwrap()
    }
}

const DEMO: (&str, &str) = ("demo", "demo-secret");
const VIEWER: (&str, &str) = ("viewer", "viewer-secret");

crate::on_both_engines! {
    async fn revoking_a_refresh_token_ends_the_session_and_frees_the_seat(app) {
        app.set_seats(1);
        let t = app.grant_ok("demo", "demo-secret", None).await;
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 403);
        let r = app
            .revoke(&s(&t["refresh_token"]), Some("refresh_token"), DEMO)
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
        assert_eq!(app.seats_held(), 0);
        app.grant_ok("demo", "demo-secret", None).await;
    }
}

crate::on_both_engines! {
    async fn a_wrong_hint_does_not_stop_revocation(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let r = app
            .revoke(&s(&t["refresh_token"]), Some("access_token"), DEMO)
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.seats_held(), 0);
    }
}

crate::on_both_engines! {
    async fn revoking_an_access_token_kills_only_that_token(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let r = app.revoke(&s(&t["access_token"]), None, DEMO).await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
        assert_eq!(app.seats_held(), 1);
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        assert_eq!(r.status(), 200);
    }
}

crate::on_both_engines! {
    async fn revoking_an_unknown_token_is_200(app) {
        assert_eq!(app.revoke("no-such-token", None, DEMO).await.status(), 200);
    }
}

crate::on_both_engines! {
    async fn another_clients_token_is_left_alone_by_revocation(app) {
        let t = app.grant_ok("viewer", "viewer-secret", None).await;
        let r = app.revoke(&s(&t["refresh_token"]), None, DEMO).await;
        assert_eq!(r.status(), 200);
        let r = app.revoke(&s(&t["access_token"]), None, DEMO).await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 200);
    }
}

crate::on_both_engines! {
    async fn revocation_requires_client_authentication(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let r = app
            .post_form(
                "/revoke",
                &format!("token={}", s(&t["refresh_token"])),
                None,
            )
            .await;
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"tollgate\"");
        assert_oauth_error(r, 401, "invalid_client").await;
        let r = app
            .revoke(&s(&t["refresh_token"]), None, ("demo", "wrong"))
            .await;
        assert_oauth_error(r, 401, "invalid_client").await;
        assert_eq!(app.seats_held(), 1);
    }
}

crate::on_both_engines! {
    async fn revocation_without_token_is_invalid_request(app) {
        let r = app
            .post_form("/revoke", "token_type_hint=refresh_token", Some(DEMO))
            .await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn revocation_takes_body_credentials_too(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let body = format!(
            "token={}&client_id=demo&client_secret=demo-secret",
            s(&t["refresh_token"])
        );
        assert_eq!(app.post_form("/revoke", &body, None).await.status(), 200);
        assert_eq!(app.seats_held(), 0);
    }
}

crate::on_both_engines! {
    async fn revoke_and_introspect_share_the_token_endpoint_request_rules(app) {
        for path in ["/revoke", "/introspect"] {
            let r = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(r.headers()["allow"], "POST");
            assert_oauth_error(r, 405, "invalid_request").await;
            let big = format!("token={}", "x".repeat(9000));
            assert_oauth_error(
                app.post_form(path, &big, Some(DEMO)).await,
                413,
                "invalid_request",
            )
            .await;
            let dup = app.post_form(path, "token=a&token=b", Some(DEMO)).await;
            assert_oauth_error(dup, 400, "invalid_request").await;
            let both = app
                .post_form(path, "token=a&client_secret=demo-secret", Some(DEMO))
                .await;
            assert_oauth_error(both, 400, "invalid_request").await;
        }
    }
}

crate::on_both_engines! {
    async fn introspecting_an_access_token_describes_it(app) {
        app.clock.advance(10);
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let v = app.introspect(&s(&t["access_token"]), DEMO).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["scope"], "all view");
        assert_eq!(v["client_id"], "demo");
        assert_eq!(v["sub"], "demo");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["iat"], START + 10);
        assert_eq!(v["exp"], START + 10 + 300);
    }
}

crate::on_both_engines! {
    async fn introspecting_a_refresh_token_gives_the_session_expiry(app) {
        let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
        let v = app.introspect(&s(&t["refresh_token"]), DEMO).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["scope"], "view");
        assert_eq!(v["exp"], START + 1200);
    }
}

crate::on_both_engines! {
    async fn dead_unknown_and_foreign_tokens_are_inactive(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let (at, rt) = (s(&t["access_token"]), s(&t["refresh_token"]));
        assert_eq!(
            app.introspect("nope", DEMO).await,
            serde_json::json!({"active": false})
        );
        assert_eq!(
            app.introspect(&at, VIEWER).await,
            serde_json::json!({"active": false})
        );
        // An exchanged refresh token is dead.
        app.refresh("demo", "demo-secret", &rt, None).await;
        assert_eq!(app.introspect(&rt, DEMO).await["active"], false);
        // An expired access token is dead.
        app.clock.advance(301);
        assert_eq!(app.introspect(&at, DEMO).await["active"], false);
    }
}

crate::on_both_engines! {
    async fn metadata_lists_endpoints_methods_and_scopes(app) {
        let r = app
            .client
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let m: Value = r.json().await.unwrap();
        let iss = s(&m["issuer"]);
        assert_eq!(m["token_endpoint"], format!("{iss}/token"));
        assert_eq!(m["revocation_endpoint"], format!("{iss}/revoke"));
        assert_eq!(m["introspection_endpoint"], format!("{iss}/introspect"));
        assert_eq!(
            m["grant_types_supported"],
            serde_json::json!(["client_credentials", "refresh_token"])
        );
        let methods = serde_json::json!(["client_secret_basic", "client_secret_post"]);
        assert_eq!(m["token_endpoint_auth_methods_supported"], methods);
        assert_eq!(m["revocation_endpoint_auth_methods_supported"], methods);
        assert_eq!(m["introspection_endpoint_auth_methods_supported"], methods);
        assert_eq!(
            m["scopes_supported"],
            serde_json::json!(["admin", "all", "view"])
        );
    }
}

#[tokio::test]
async fn metadata_with_a_base_path_lives_where_rfc_8414_puts_it() {
    let app = spawn_app_with(|s| {
        s.base_path = "/Jim_Test".into();
        s.issuer = Some("https://erp.example.com/Jim_Test".into());
    })
    .await;
    let root = app.base.trim_end_matches("/Jim_Test").to_owned();
    let m: Value = app
        .client
        .get(format!(
            "{root}/.well-known/oauth-authorization-server/Jim_Test"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], "https://erp.example.com/Jim_Test");
    assert_eq!(
        m["token_endpoint"],
        "https://erp.example.com/Jim_Test/token"
    );
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    let get = |path: &'static str| {
        let r = app.client.get(app.url(path)).send();
        async move {
            let r = r.await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("JSON body");
            (status, body)
        }
    };
    let up = serde_json::json!({"status": "ok"});
    assert_eq!(get("/healthz").await, (200, up.clone()));
    assert_eq!(get("/readyz").await, (200, up.clone()));

    // The database stops answering: the process is still up, but not ready.
    let db = app.db();
    db.execute_batch("ALTER TABLE licence RENAME TO licence_away")
        .unwrap();
    assert_eq!(get("/healthz").await, (200, up.clone()));
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["status"], "database unavailable", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("licence"),
        "the detail names what failed: {body}"
    );
    db.execute_batch("ALTER TABLE licence_away RENAME TO licence")
        .unwrap();
    assert_eq!(get("/readyz").await, (200, up));
}

/// The 401's description, from the body and from the challenge, which must agree.
async fn invalid_token_says(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{body}");
    let why = s(&body["error_description"]);
    assert!(
        challenge.ends_with(&format!("error_description=\"{why}\"")),
        "{challenge}"
    );
    why
}

crate::on_both_engines! {
    async fn a_rejected_access_token_is_told_whether_it_expired_or_was_revoked(app) {
        let a = app.grant_ok("demo", "demo-secret", Some("view")).await;
        let b = app.grant_ok("demo", "demo-secret", Some("view")).await;
        let c = app.grant_ok("demo", "demo-secret", Some("view")).await;
        let demo = ("demo", "demo-secret");

        assert_eq!(
            app.revoke(&s(&a["access_token"]), None, demo)
                .await
                .status(),
            200
        );
        let why = invalid_token_says(app.me(&s(&a["access_token"])).await).await;
        assert_eq!(why, "the access token was revoked");

        app.revoke(&s(&b["refresh_token"]), Some("refresh_token"), demo)
            .await;
        let why = invalid_token_says(app.me(&s(&b["access_token"])).await).await;
        assert!(why.contains("session was revoked"), "{why}");

        let why = invalid_token_says(app.me("bm90LWEtdG9rZW4").await).await;
        assert_eq!(why, "the access token is unknown");

        app.clock.advance(301);
        let why = invalid_token_says(app.me(&s(&c["access_token"])).await).await;
        assert!(why.starts_with("the access token expired"), "{why}");
        app.clock.advance(1200);
        let why = invalid_token_says(
            app.get_with("/api/v1/products/NUT-M6", &s(&c["access_token"]))
                .await,
        )
        .await;
        assert!(why.starts_with("the access token expired"), "{why}");
    }
}
