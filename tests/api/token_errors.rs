//! Every error row of API.md §3, each its own test.
use crate::helpers::*;

const CC: &str = "grant_type=client_credentials";

crate::on_both_engines! {
    async fn missing_grant_type_is_invalid_request(app) {
        let r = app
            .post_token("scope=view", Some(("demo", "demo-secret")))
            .await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn empty_grant_type_counts_as_missing(app) {
        let r = app
            .post_token("grant_type=", Some(("demo", "demo-secret")))
            .await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn duplicate_parameter_is_invalid_request(app) {
        let r = app
            .post_token(
                "grant_type=client_credentials&scope=view&scope=all",
                Some(("demo", "demo-secret")),
            )
            .await;
        let body = assert_oauth_error(r, 400, "invalid_request").await;
        assert!(s(&body["error_description"]).contains("scope"));
    }
}

crate::on_both_engines! {
    async fn basic_plus_body_secret_is_invalid_request(app) {
        let r = app
            .post_token(
                &format!("{CC}&client_secret=demo-secret"),
                Some(("demo", "demo-secret")),
            )
            .await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn body_client_id_naming_another_client_beside_basic_is_invalid_request(app) {
        let r = app
            .post_token(
                &format!("{CC}&client_id=viewer"),
                Some(("demo", "demo-secret")),
            )
            .await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn body_client_id_naming_the_same_client_beside_basic_is_tolerated(app) {
        let r = app
            .post_token(
                &format!("{CC}&client_id=demo&scope=view"),
                Some(("demo", "demo-secret")),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
}

crate::on_both_engines! {
    async fn malformed_basic_header_is_invalid_request(app) {
        for header in [
            "Basic",
            "Basic !!!notbase64",
            "Basic ZGVtbw==",
            "Digest abc",
        ] {
            let r = app
                .client
                .post(app.url("/token"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Authorization", header)
                .body(CC)
                .send()
                .await
                .unwrap();
            assert_oauth_error(r, 400, "invalid_request").await;
        }
    }
}

crate::on_both_engines! {
    async fn wrong_content_type_is_invalid_request(app) {
        let r = app
            .client
            .post(app.url("/token"))
            .basic_auth("demo", Some("demo-secret"))
            .header("Content-Type", "application/json")
            .body(r#"{"grant_type":"client_credentials"}"#)
            .send()
            .await
            .unwrap();
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn refresh_grant_without_refresh_token_is_invalid_request(app) {
        let r = app
            .post_token("grant_type=refresh_token", Some(("demo", "demo-secret")))
            .await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

async fn assert_invalid_client(r: reqwest::Response) -> (reqwest::header::HeaderMap, String) {
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"tollgate\"");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "invalid_client");
    (headers, body)
}

crate::on_both_engines! {
    async fn unknown_client_is_invalid_client(app) {
        assert_invalid_client(app.grant("nobody", "demo-secret", None).await).await;
    }
}

crate::on_both_engines! {
    async fn wrong_secret_is_invalid_client(app) {
        assert_invalid_client(app.grant("demo", "not-the-secret", None).await).await;
    }
}

crate::on_both_engines! {
    async fn wrong_secret_in_body_is_invalid_client(app) {
        let r = app
            .post_token(&format!("{CC}&client_id=demo&client_secret=nope"), None)
            .await;
        assert_invalid_client(r).await;
    }
}

crate::on_both_engines! {
    async fn ordinary_user_with_right_secret_is_invalid_client(app) {
        assert_invalid_client(app.grant("alice", "alice-secret", Some("view")).await).await;
    }
}

#[tokio::test]
async fn disabled_user_is_invalid_client_and_its_tokens_stop_working() {
    let app = spawn_app().await;
    let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
    app.db()
        .execute("UPDATE USERS SET ENABLED = 0 WHERE NICKNAME = 'demo'", [])
        .unwrap();
    assert_invalid_client(app.grant("demo", "demo-secret", Some("view")).await).await;
    assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
}

crate::on_both_engines! {
    async fn no_credentials_is_invalid_client(app) {
        assert_invalid_client(app.post_token(CC, None).await).await;
        let r = app.post_token(&format!("{CC}&client_id=demo"), None).await;
        assert_invalid_client(r).await;
    }
}

crate::on_both_engines! {
    async fn unknown_client_wrong_secret_and_ordinary_user_look_identical(app) {
        let mut seen = Vec::new();
        for (u, p) in [("alice", "alice-secret"), ("demo", "wrong"), ("ghost", "x")] {
            let (mut h, body) = assert_invalid_client(app.grant(u, p, None).await).await;
            h.remove("date");
            let mut headers: Vec<_> = h
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
                .collect();
            headers.sort();
            seen.push((headers, body));
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[1], seen[2]);
    }
}

crate::on_both_engines! {
    async fn other_grant_types_are_unsupported(app) {
        for gt in [
            "password",
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:device_code",
        ] {
            let r = app
                .post_token(&format!("grant_type={gt}"), Some(("demo", "demo-secret")))
                .await;
            assert_oauth_error(r, 400, "unsupported_grant_type").await;
        }
    }
}

crate::on_both_engines! {
    async fn unknown_scope_is_invalid_scope(app) {
        let r = app.grant("demo", "demo-secret", Some("view admin")).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
}

crate::on_both_engines! {
    async fn scope_not_allowed_for_the_client_is_invalid_scope(app) {
        let r = app.grant("viewer", "viewer-secret", Some("all")).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
}

crate::on_both_engines! {
    async fn refresh_that_widens_the_scope_is_invalid_scope(app) {
        let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
        let r = app
            .refresh(
                "demo",
                "demo-secret",
                &s(&t["refresh_token"]),
                Some("view all"),
            )
            .await;
        assert_oauth_error(r, 400, "invalid_scope").await;
        // The failed attempt changed nothing: the token still refreshes.
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        assert_eq!(r.status(), 200);
    }
}

crate::on_both_engines! {
    async fn unknown_refresh_token_is_invalid_grant(app) {
        let r = app
            .refresh("demo", "demo-secret", "no-such-token", None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
}

crate::on_both_engines! {
    async fn expired_refresh_token_is_invalid_grant(app) {
        let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
        app.clock.advance(1201);
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
}

#[tokio::test]
async fn revoked_refresh_token_is_invalid_grant() {
    let app = spawn_app().await;
    let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
    app.db()
        .execute("UPDATE sessions SET revoked_at = ?1", [START])
        .unwrap();
    let r = app
        .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
}

crate::on_both_engines! {
    async fn reused_refresh_token_is_invalid_grant_and_ends_the_session(app) {
        let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
        let rt = s(&t["refresh_token"]);
        let r = app.refresh("demo", "demo-secret", &rt, None).await;
        let new: serde_json::Value = r.json().await.unwrap();
        let r = app.refresh("demo", "demo-secret", &rt, None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        // RFC 9700 §4.14.2: the whole session is revoked, the rotated tokens too.
        assert_eq!(app.me(&s(&new["access_token"])).await.status(), 401);
        let r = app
            .refresh("demo", "demo-secret", &s(&new["refresh_token"]), None)
            .await;
        assert_oauth_error(r, 400, "invalid_grant").await;
    }
}

crate::on_both_engines! {
    async fn another_clients_refresh_token_is_invalid_grant_and_left_alone(app) {
        let t = app.grant_ok("viewer", "viewer-secret", None).await;
        let rt = s(&t["refresh_token"]);
        let r = app.refresh("demo", "demo-secret", &rt, None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        let r = app.refresh("viewer", "viewer-secret", &rt, None).await;
        assert_eq!(r.status(), 200, "the owner's token must still work");
    }
}

crate::on_both_engines! {
    async fn licensed_grant_with_no_seats_at_all_has_no_retry_after(app) {
        app.set_seats(0);
        let r = app.grant("demo", "demo-secret", Some("all")).await;
        assert!(r.headers().get("retry-after").is_none());
        assert_oauth_error(r, 403, "licence_unavailable").await;
    }
}

crate::on_both_engines! {
    async fn get_on_the_token_endpoint_is_405_with_allow_post(app) {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::PUT,
            reqwest::Method::DELETE,
        ] {
            let r = app
                .client
                .request(method, app.url("/token"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["allow"], "POST");
            assert_oauth_error(r, 405, "invalid_request").await;
        }
    }
}

crate::on_both_engines! {
    async fn body_over_8_kib_is_413(app) {
        let body = format!("{CC}&pad={}", "x".repeat(8 * 1024));
        let r = app.post_token(&body, Some(("demo", "demo-secret"))).await;
        assert_oauth_error(r, 413, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn body_of_exactly_8_kib_is_accepted(app) {
        let head = format!("{CC}&scope=view&pad=");
        let body = format!("{head}{}", "x".repeat(8 * 1024 - head.len()));
        assert_eq!(body.len(), 8 * 1024);
        let r = app.post_token(&body, Some(("demo", "demo-secret"))).await;
        assert_eq!(r.status(), 200);
    }
}
