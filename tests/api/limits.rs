//! Conditional product writes (RFC 9110 §13.1.1) and limits on what a client controls.
use crate::helpers::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut rb = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(tag) = if_match {
        rb = rb.header("If-Match", tag);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

fn nut(stock: i64) -> Value {
    json!({"sku": "NUT-M6", "name": "Hex nut M6", "description": "", "price_cents": 4, "stock": stock})
}

async fn full_token(app: &TestApp) -> String {
    s(&app.grant_ok("demo", "demo-secret", None).await["access_token"])
}

crate::on_both_engines! {
    async fn get_returns_an_etag_that_changes_with_the_product(app) {
        let t = full_token(&app).await;
        let r = send(&app, Method::GET, "/api/v1/products/NUT-M6", &t, None, None).await;
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NUT-M6",
            &t,
            None,
            Some(nut(1)),
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_ne!(r.headers()["etag"].to_str().unwrap(), tag);
    }
}

crate::on_both_engines! {
    async fn two_editors_cannot_silently_overwrite_each_other(app) {
        let t = full_token(&app).await;
        let r = send(&app, Method::GET, "/api/v1/products/NUT-M6", &t, None, None).await;
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        // Editor one saves with the tag it read.
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NUT-M6",
            &t,
            Some(&tag),
            Some(nut(10)),
        )
        .await;
        assert_eq!(r.status(), 200);
        // Editor two, holding the same old tag, is refused.
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NUT-M6",
            &t,
            Some(&tag),
            Some(nut(20)),
        )
        .await;
        assert_eq!(r.status(), 412);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let got: Value = send(&app, Method::GET, "/api/v1/products/NUT-M6", &t, None, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(got["stock"], 10);
    }
}

crate::on_both_engines! {
    async fn delete_honours_if_match(app) {
        let t = full_token(&app).await;
        let r = send(
            &app,
            Method::DELETE,
            "/api/v1/products/NUT-M6",
            &t,
            Some("\"stale\""),
            None,
        )
        .await;
        assert_eq!(r.status(), 412);
        let tag = send(&app, Method::GET, "/api/v1/products/NUT-M6", &t, None, None)
            .await
            .headers()["etag"]
            .to_str()
            .unwrap()
            .to_owned();
        let r = send(
            &app,
            Method::DELETE,
            "/api/v1/products/NUT-M6",
            &t,
            Some(&tag),
            None,
        )
        .await;
        assert_eq!(r.status(), 204);
    }
}

crate::on_both_engines! {
    async fn if_match_star_needs_an_existing_product_and_weak_tags_never_match(app) {
        let t = full_token(&app).await;
        let new = json!({"sku": "NEW-1", "name": "New", "price_cents": 1, "stock": 1});
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NEW-1",
            &t,
            Some("*"),
            Some(new.clone()),
        )
        .await;
        assert_eq!(r.status(), 412);
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NEW-1",
            &t,
            None,
            Some(new.clone()),
        )
        .await;
        assert_eq!(r.status(), 201);
        let tag = r.headers()["etag"].to_str().unwrap().to_owned();
        let weak = format!("W/{tag}");
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NEW-1",
            &t,
            Some(&weak),
            Some(new.clone()),
        )
        .await;
        assert_eq!(r.status(), 412);
        let r = send(
            &app,
            Method::PUT,
            "/api/v1/products/NEW-1",
            &t,
            Some(&format!("\"x\", {tag}")),
            Some(new),
        )
        .await;
        assert_eq!(r.status(), 200);
    }
}

crate::on_both_engines! {
    async fn product_body_over_64_kib_is_413(app) {
        let t = full_token(&app).await;
        let body = json!({"sku": "BIG", "name": "x", "description": "y".repeat(70 * 1024), "price_cents": 1, "stock": 1});
        let r = send(&app, Method::POST, "/api/v1/products", &t, None, Some(body)).await;
        assert_eq!(r.status(), 413);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

crate::on_both_engines! {
    async fn search_string_over_200_characters_is_400(app) {
        let t = full_token(&app).await;
        let path = format!("/api/v1/products?q={}", "a".repeat(201));
        let r = send(&app, Method::GET, &path, &t, None, None).await;
        assert_eq!(r.status(), 400);
        let p: Value = r.json().await.unwrap();
        assert!(s(&p["detail"]).contains('q'));
    }
}

crate::on_both_engines! {
    async fn more_than_32_form_parameters_is_invalid_request(app) {
        let extra: Vec<String> = (0..40).map(|i| format!("x{i}=1")).collect();
        let body = format!("grant_type=client_credentials&{}", extra.join("&"));
        let r = app.post_token(&body, Some(("demo", "demo-secret"))).await;
        assert_oauth_error(r, 400, "invalid_request").await;
    }
}

crate::on_both_engines! {
    async fn scope_string_over_1024_bytes_is_invalid_scope(app) {
        let scope = "view ".repeat(300);
        let r = app.grant("demo", "demo-secret", Some(scope.trim())).await;
        assert_oauth_error(r, 400, "invalid_scope").await;
    }
}

crate::on_both_engines! {
    async fn too_many_header_fields_is_431(app) {
        let mut rb = app.client.get(app.url("/healthz"));
        for i in 0..120 {
            rb = rb.header(format!("x-h{i}"), "1");
        }
        assert_eq!(rb.send().await.unwrap().status(), 431);
    }
}

crate::on_both_engines! {
    async fn dot_skus_that_no_url_could_reach_are_refused(app) {
        let t = full_token(&app).await;
        for sku in [".", ".."] {
            let body = json!({"sku": sku, "name": "Dots", "price_cents": 1, "stock": 1});
            let r = send(&app, Method::POST, "/api/v1/products", &t, None, Some(body)).await;
            assert_eq!(r.status(), 400, "{sku}");
        }
        let body = json!({"sku": "...", "name": "Three dots", "price_cents": 1, "stock": 1});
        let r = send(&app, Method::POST, "/api/v1/products", &t, None, Some(body)).await;
        assert_eq!(r.status(), 201);
    }
}

crate::on_both_engines! {
    async fn read_only_routes_answer_head_and_405_with_allow(app) {
        for path in ["/", "/healthz", "/readyz", "/metrics", "/openapi.json"] {
            let r = app.client.head(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "HEAD {path}");
            let r = app.client.post(app.url(path)).send().await.unwrap();
            assert_eq!(r.status(), 405, "POST {path}");
            assert!(
                r.headers()["allow"].to_str().unwrap().contains("GET"),
                "{path}"
            );
        }
    }
}
