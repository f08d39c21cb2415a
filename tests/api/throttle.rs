//! Hostile clients: brute-force throttling and bounded PBKDF2.
use crate::helpers::*;
use reqwest::Client;
use std::net::IpAddr;

fn client_from(addr: &str) -> Client {
    Client::builder()
        .local_address(addr.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn grant_from(
    app: &TestApp,
    client: &Client,
    user: &str,
    secret: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut rb = client
        .post(app.url("/token"))
        .basic_auth(user, Some(secret))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=view");
    if let Some(x) = xff {
        rb = rb.header("X-Forwarded-For", x);
    }
    rb.send().await.unwrap()
}

crate::on_both_engines! {
    async fn six_wrong_secrets_from_one_address_get_slow_down(app) {
        for _ in 0..5 {
            assert_eq!(app.grant("demo", "wrong", None).await.status(), 401);
        }
        let r = app.grant("demo", "wrong", None).await;
        assert_eq!(r.headers()["retry-after"], "30");
        assert_oauth_error(r, 429, "slow_down").await;
        // While blocked, even the right secret waits: the block is on the pair, not the secret.
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 429);
        app.clock.advance(30);
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 200);
    }
}

#[tokio::test]
async fn blocks_double_up_to_the_cap() {
    let app = spawn_app_with(|s| s.throttle.cap = 100).await;
    let mut blocks = Vec::new();
    for _ in 0..4 {
        for _ in 0..5 {
            app.grant("demo", "wrong", None).await;
        }
        let r = app.grant("demo", "wrong", None).await;
        let secs: i64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        blocks.push(secs);
        app.clock.advance(secs);
    }
    assert_eq!(blocks, vec![30, 60, 100, 100]);
}

crate::on_both_engines! {
    async fn a_legitimate_client_from_another_address_is_not_locked_out(app) {
        let attacker = client_from("127.0.0.2");
        for _ in 0..6 {
            grant_from(&app, &attacker, "demo", "wrong", None).await;
        }
        assert_eq!(
            grant_from(&app, &attacker, "demo", "wrong", None)
                .await
                .status(),
            429
        );
        let legit = client_from("127.0.0.3");
        assert_eq!(
            grant_from(&app, &legit, "demo", "demo-secret", None)
                .await
                .status(),
            200
        );
    }
}

#[tokio::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    // Untrusted: X-Forwarded-For is ignored, so varying it does not evade the block.
    let app = spawn_app().await;
    for i in 0..6 {
        grant_from(
            &app,
            &app.client,
            "demo",
            "wrong",
            Some(&format!("203.0.113.{i}")),
        )
        .await;
    }
    let r = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("198.51.100.1"),
    )
    .await;
    assert_eq!(r.status(), 429);

    // Trusted: the forwarded address is the one throttled.
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    for _ in 0..6 {
        grant_from(&app, &app.client, "demo", "wrong", Some("203.0.113.9")).await;
    }
    let blocked = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(blocked.status(), 429);
    let other = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("198.51.100.1"),
    )
    .await;
    assert_eq!(other.status(), 200);
}

crate::on_both_engines! {
    async fn revoke_and_introspect_are_throttled_too(app) {
        for path in ["/revoke", "/introspect"] {
            let mut last = 0;
            for _ in 0..6 {
                let r = app
                    .client
                    .post(app.url(path))
                    .basic_auth("viewer", Some("wrong"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("token=x")
                    .send()
                    .await
                    .unwrap();
                last = r.status().as_u16();
            }
            assert_eq!(last, 429, "{path}");
            app.clock.advance(1000);
        }
    }
}

async fn pbkdf2_computations(app: &TestApp) -> i64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("tollgate_pbkdf2_computations "))
        .expect("pbkdf2 gauge")
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn forty_simultaneous_first_grants_with_one_credential_cost_one_pbkdf2() {
    let app = spawn_app().await;
    app.set_seats(100);
    // A costly hash, so that all forty arrive while the first verification runs.
    let hash = tollgate::crypto::hash_password("demo-secret", 300_000);
    app.db()
        .execute(
            r#"UPDATE USERS SET "PASSWORD" = ?1 WHERE NICKNAME = 'demo'"#,
            [hash],
        )
        .unwrap();
    let before = pbkdf2_computations(&app).await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/token"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .basic_auth("demo", Some("demo-secret"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(pbkdf2_computations(&app).await - before, 1);
}

#[tokio::test]
async fn a_flood_of_wrong_secrets_does_not_starve_a_verified_client() {
    // Unknown clients are checked against a dummy hash of this cost. The address's
    // own failure budget is not what this test is about.
    let app = spawn_app_with(|s| {
        s.pbkdf2_iterations = 300_000;
        s.throttle.address_failures = 1000;
    })
    .await;
    app.grant_ok("demo", "demo-secret", Some("view")).await;
    let flood: Vec<_> = (0..60)
        .map(|i| {
            let (client, url) = (app.client.clone(), app.url("/token"));
            tokio::spawn(async move {
                let r = client
                    .post(url)
                    .basic_auth(format!("intruder-{i}"), Some("guess"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .unwrap();
                (
                    r.status().as_u16(),
                    r.headers().get("retry-after").is_some(),
                )
            })
        })
        .collect();
    for _ in 0..10 {
        assert_eq!(
            app.grant("demo", "demo-secret", Some("view"))
                .await
                .status(),
            200
        );
    }
    let mut busy = 0;
    for t in flood {
        match t.await.unwrap() {
            (401, _) => {}
            (503, true) => busy += 1,
            other => panic!("unexpected flood answer {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "distinct unverified credentials beyond the bound fail fast with 503"
    );
}

async fn wrong_id_from(app: &TestApp, id: &str, xff: &str) -> reqwest::Response {
    grant_from(app, &app.client, id, "guess", Some(xff)).await
}

#[tokio::test]
async fn one_address_cannot_try_unlimited_client_ids() {
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    for i in 0..50 {
        let r = wrong_id_from(&app, &format!("guess-{i}"), "203.0.113.7").await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    let r = wrong_id_from(&app, "guess-50", "203.0.113.7").await;
    assert_eq!(r.headers()["retry-after"], "30");
    assert_oauth_error(r, 429, "slow_down").await;
    let r = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 429, "every client id from that address waits");
    let r = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("198.51.100.1"),
    )
    .await;
    assert_eq!(r.status(), 200, "another address is served");
    app.clock.advance(30);
    let r = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_flood_of_random_client_ids_does_not_lift_a_block() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        s.throttle.max_entries = 100;
    })
    .await;
    for _ in 0..6 {
        wrong_id_from(&app, "demo", "203.0.113.9").await;
    }
    // Three times the table's size, each from an address of its own.
    for i in 0..300 {
        let r = wrong_id_from(
            &app,
            &format!("random-{i}"),
            &format!("10.0.{}.{}", i / 250, i % 250),
        )
        .await;
        assert_eq!(r.status(), 401);
    }
    let r = grant_from(
        &app,
        &app.client,
        "demo",
        "demo-secret",
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(r.status(), 429, "the block outlived the flood");
}
