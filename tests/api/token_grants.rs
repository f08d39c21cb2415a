//! Successful grants: both client authentication methods, scopes, refresh rotation.
use crate::helpers::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;

fn assert_opaque_token(t: &Value) {
    let t = t.as_str().expect("token string");
    let bytes = URL_SAFE_NO_PAD.decode(t).expect("base64url");
    assert!(bytes.len() >= 32, "at least 256 bits");
}

crate::on_both_engines! {
    async fn view_grant_by_basic_returns_the_documented_response(app) {
        let r = app.grant("demo", "demo-secret", Some("view")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["pragma"], "no-cache");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let t: Value = r.json().await.unwrap();
        assert_eq!(t["token_type"], "Bearer");
        assert_eq!(t["expires_in"], 300);
        assert_eq!(t["refresh_token_expires_in"], 1200);
        assert_eq!(t["scope"], "view");
        assert_opaque_token(&t["access_token"]);
        assert_opaque_token(&t["refresh_token"]);
        assert_ne!(t["access_token"], t["refresh_token"]);
    }
}

crate::on_both_engines! {
    async fn credentials_in_the_body_work(app) {
        let r = app
            .post_token(
                "grant_type=client_credentials&client_id=viewer&client_secret=viewer-secret",
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
        let t: Value = r.json().await.unwrap();
        assert_eq!(t["scope"], "view");
    }
}

crate::on_both_engines! {
    async fn absent_scope_grants_all_allowed_scopes(app) {
        assert_eq!(
            app.grant_ok("demo", "demo-secret", None).await["scope"],
            "all view"
        );
        assert_eq!(
            app.grant_ok("viewer", "viewer-secret", None).await["scope"],
            "view"
        );
    }
}

crate::on_both_engines! {
    async fn all_does_not_imply_view(app) {
        assert_eq!(
            app.grant_ok("demo", "demo-secret", Some("all")).await["scope"],
            "all"
        );
    }
}

crate::on_both_engines! {
    async fn ipim_style_client_id_among_scopes_is_ignored(app) {
        assert_eq!(
            app.grant_ok("demo", "demo-secret", Some("demo view")).await["scope"],
            "view"
        );
        assert_eq!(
            app.grant_ok("demo", "demo-secret", Some("demo")).await["scope"],
            "all view"
        );
    }
}

/// A user whose secret has characters that form-encoding changes.
fn add_user(app: &TestApp, name: &str, secret: &str) {
    let hash = tollgate::crypto::hash_password(secret, TEST_ITERATIONS);
    let c = app.db();
    c.execute(
        r#"INSERT INTO USERS (NICKNAME, "PASSWORD", APIUSER, ENABLED, CREATED_AT) VALUES (?1, ?2, 1, 1, 0)"#,
        rusqlite::params![name, hash],
    )
    .unwrap();
    c.execute(
        "INSERT INTO user_scopes (user_id, scope) SELECT ID, 'view' FROM USERS WHERE NICKNAME = ?1",
        [name],
    )
    .unwrap();
}

async fn raw_basic(app: &TestApp, userpass: &str) -> reqwest::Response {
    app.client
        .post(app.url("/token"))
        .header(
            "Authorization",
            format!("Basic {}", STANDARD.encode(userpass)),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=view")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unencoded_basic_credentials_from_the_csharp_example_work() {
    let app = spawn_app().await;
    add_user(&app, "TestClientId", "p+ss%word:1");
    // Sent raw, as System.Convert.ToBase64String of "user:password" does.
    assert_eq!(
        raw_basic(&app, "TestClientId:p+ss%word:1").await.status(),
        200
    );
    // And RFC 6749 §2.3.1's form-encoded version works too.
    assert_eq!(
        raw_basic(&app, "TestClientId:p%2Bss%25word%3A1")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn form_encoded_basic_credentials_are_decoded() {
    let app = spawn_app().await;
    add_user(&app, "svc user", "a b&c");
    assert_eq!(raw_basic(&app, "svc+user:a+b%26c").await.status(), 200);
}

#[tokio::test]
async fn a_new_stored_hash_invalidates_the_verified_credential() {
    let app = spawn_app().await;
    app.grant_ok("demo", "demo-secret", Some("view")).await;
    let hash = tollgate::crypto::hash_password("new-secret", TEST_ITERATIONS);
    app.db()
        .execute(
            r#"UPDATE USERS SET "PASSWORD" = ?1 WHERE NICKNAME = 'demo'"#,
            [hash],
        )
        .unwrap();
    assert_eq!(
        app.grant("demo", "demo-secret", Some("view"))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.grant("demo", "new-secret", Some("view")).await.status(),
        200
    );
}

#[tokio::test]
async fn tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let t = app.grant_ok("demo", "demo-secret", None).await;
    let (at, rt) = (s(&t["access_token"]), s(&t["refresh_token"]));
    let c = app.db();
    let dump: Vec<String> = c
        .prepare(
            "SELECT quote(hash) || session_id FROM access_tokens
             UNION ALL SELECT quote(hash) || session_id FROM refresh_tokens
             UNION ALL SELECT scope FROM sessions",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(dump
        .iter()
        .all(|row| !row.contains(&at) && !row.contains(&rt)));
    // The row keeps the SHA-256 of the token's secret part, found by the row id the
    // token carries.
    let key = tollgate::crypto::token_key(&at);
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM access_tokens WHERE id = ?1 AND hash = ?2",
            rusqlite::params![key.id, &key.hash[..]],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    // Nor the secret: the PASSWORD column holds a PBKDF2 PHC string.
    let pw: String = c
        .query_row(
            r#"SELECT "PASSWORD" FROM USERS WHERE NICKNAME = 'demo'"#,
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(pw.starts_with("$pbkdf2-sha256$i=") && !pw.contains("demo-secret"));
}

crate::on_both_engines! {
    async fn refresh_rotates_both_tokens_and_slides_the_session(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        app.clock.advance(1000);
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let n: Value = r.json().await.unwrap();
        assert_ne!(n["access_token"], t["access_token"]);
        assert_ne!(n["refresh_token"], t["refresh_token"]);
        assert_eq!(n["scope"], "all view");
        let me: Value = app.me(&s(&n["access_token"])).await.json().await.unwrap();
        assert_eq!(me["session_expires_at"], START + 1000 + 1200);
        // Past the original expiry, the slid session is still alive.
        app.clock.advance(1000);
        let r = app
            .refresh("demo", "demo-secret", &s(&n["refresh_token"]), None)
            .await;
        assert_eq!(r.status(), 200);
    }
}

crate::on_both_engines! {
    async fn refresh_may_narrow_the_scope(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), Some("view"))
            .await;
        let n: Value = r.json().await.unwrap();
        assert_eq!(n["scope"], "view");
        let me: Value = app.me(&s(&n["access_token"])).await.json().await.unwrap();
        assert_eq!(me["scope"], "view");
    }
}

crate::on_both_engines! {
    async fn refresh_with_credentials_in_the_body_works(app) {
        let t = app.grant_ok("viewer", "viewer-secret", None).await;
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id=viewer&client_secret=viewer-secret",
            s(&t["refresh_token"])
        );
        assert_eq!(app.post_token(&body, None).await.status(), 200);
    }
}

#[tokio::test]
async fn base_path_moves_every_route() {
    let app = spawn_app_with(|s| s.base_path = "/Jim_Test".into()).await;
    let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
    assert_eq!(app.me(&s(&t["access_token"])).await.status(), 200);
    let root = app.base.trim_end_matches("/Jim_Test").to_owned();
    let r = app
        .client
        .post(format!("{root}/token"))
        .basic_auth("demo", Some("demo-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn configured_ttls_are_used() {
    let app = spawn_app_with(|s| {
        s.access_ttl = 60;
        s.refresh_ttl = 120;
    })
    .await;
    let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
    assert_eq!(t["expires_in"], 60);
    assert_eq!(t["refresh_token_expires_in"], 120);
    app.clock.advance(61);
    assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
}
