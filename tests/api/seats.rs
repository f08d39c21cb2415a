//! Licence seats (API.md §2): exact under concurrency, kept on refresh, freed on expiry and reuse.
use crate::helpers::*;
use serde_json::Value;

crate::on_both_engines! {
    async fn third_licensed_grant_is_refused_with_retry_after(app) {
        app.grant_ok("demo", "demo-secret", Some("all")).await;
        app.clock.advance(100);
        app.grant_ok("demo", "demo-secret", Some("all")).await;
        let r = app.grant("demo", "demo-secret", Some("all")).await;
        // The first seat frees 1200 s after it was taken, i.e. 1100 s from now.
        assert_eq!(r.headers()["retry-after"], "1100");
        assert_oauth_error(r, 403, "licence_unavailable").await;
    }
}

crate::on_both_engines! {
    async fn view_grants_succeed_while_every_seat_is_held(app) {
        app.grant_ok("demo", "demo-secret", None).await;
        app.grant_ok("demo", "demo-secret", None).await;
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 403);
        assert_eq!(
            app.grant_ok("demo", "demo-secret", Some("view")).await["scope"],
            "view"
        );
        assert_eq!(
            app.grant_ok("viewer", "viewer-secret", None).await["scope"],
            "view"
        );
        assert_eq!(app.seats_held(), 2);
    }
}

crate::on_both_engines! {
    async fn view_grant_takes_no_seat(app) {
        let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
        assert_eq!(app.seats_held(), 0);
        let me: Value = app.me(&s(&t["access_token"])).await.json().await.unwrap();
        assert_eq!(me["seat"], false);
    }
}

crate::on_both_engines! {
    async fn exactly_s_of_n_concurrent_licensed_grants_succeed(app) {
        app.set_seats(5);
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let client = app.client.clone();
                let url = app.url("/token");
                tokio::spawn(async move {
                    let r = client
                        .post(url)
                        .basic_auth("demo", Some("demo-secret"))
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body("grant_type=client_credentials&scope=all")
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap();
                    (status, body)
                })
            })
            .collect();
        let mut ok = 0;
        let mut refused = 0;
        for t in tasks {
            match t.await.unwrap() {
                (200, _) => ok += 1,
                (403, b) if b["error"] == "licence_unavailable" => refused += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!((ok, refused), (5, 35));
        assert_eq!(app.seats_held(), 5);
    }
}

crate::on_both_engines! {
    async fn refresh_keeps_the_seat_without_taking_a_second(app) {
        app.set_seats(1);
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        assert_eq!(
            r.status(),
            200,
            "a full pool must not block the session's own refresh"
        );
        assert_eq!(app.seats_held(), 1);
        let n: Value = r.json().await.unwrap();
        let me: Value = app.me(&s(&n["access_token"])).await.json().await.unwrap();
        assert_eq!(me["seat"], true);
    }
}

crate::on_both_engines! {
    async fn narrowing_to_view_on_refresh_keeps_the_seat(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), Some("view"))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.seats_held(), 1);
    }
}

crate::on_both_engines! {
    async fn reuse_of_a_refresh_token_frees_the_seat(app) {
        app.set_seats(1);
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let rt = s(&t["refresh_token"]);
        assert_eq!(
            app.refresh("demo", "demo-secret", &rt, None).await.status(),
            200
        );
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 403);
        assert_eq!(
            app.refresh("demo", "demo-secret", &rt, None).await.status(),
            400
        );
        assert_eq!(app.seats_held(), 0);
        app.grant_ok("demo", "demo-secret", None).await;
    }
}

crate::on_both_engines! {
    async fn expiry_frees_the_seat(app) {
        app.grant_ok("demo", "demo-secret", None).await;
        app.grant_ok("demo", "demo-secret", None).await;
        app.clock.advance(1199);
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 403);
        app.clock.advance(1);
        app.grant_ok("demo", "demo-secret", None).await;
    }
}

crate::on_both_engines! {
    async fn retry_after_is_at_least_one_second(app) {
        app.set_seats(1);
        app.grant_ok("demo", "demo-secret", None).await;
        app.clock.advance(1199);
        let r = app.grant("demo", "demo-secret", None).await;
        assert_eq!(r.headers()["retry-after"], "1");
    }
}
