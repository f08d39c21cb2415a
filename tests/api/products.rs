//! Resource routes (API.md §4): bearer authentication, the product catalogue and /me.
use crate::helpers::*;
use reqwest::{Method, Response};
use serde_json::{json, Value};

const PRODUCTS: &str = "/api/v1/products";
const PLAIN_CHALLENGE: &str = "Bearer realm=\"tollgate\"";
const INVALID_TOKEN_PREFIX: &str =
    "Bearer realm=\"tollgate\", error=\"invalid_token\", error_description=\"";
const INSUFFICIENT_SCOPE: &str =
    "Bearer realm=\"tollgate\", error=\"insufficient_scope\", scope=\"all\"";
const INVALID_REQUEST: &str = "Bearer realm=\"tollgate\", error=\"invalid_request\"";

// ---- local helpers ----

/// An access token for `user` from a client_credentials grant.
async fn token(app: &TestApp, user: &str, secret: &str, scope: Option<&str>) -> String {
    s(&app.grant_ok(user, secret, scope).await["access_token"])
}

/// demo's default grant: `all view`, holds a seat.
async fn full_token(app: &TestApp) -> String {
    token(app, "demo", "demo-secret", None).await
}

/// viewer's grant: `view` only.
async fn view_token(app: &TestApp) -> String {
    token(app, "viewer", "viewer-secret", None).await
}

/// A request with an optional raw `Authorization` header and an optional JSON body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut rb = app.client.request(method, app.url(path));
    if let Some(a) = authorization {
        rb = rb.header("Authorization", a);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    rb.send().await.expect("request")
}

/// A request carrying `Authorization: Bearer <token>`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Response {
    send(app, method, path, Some(&format!("Bearer {token}")), body).await
}

fn sku_path(sku: &str) -> String {
    format!("{PRODUCTS}/{sku}")
}

fn www_authenticate(r: &Response) -> String {
    r.headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts an RFC 9457 problem response; returns its body.
async fn assert_problem(r: Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}"
    );
    r.json().await.expect("problem body is JSON")
}

/// Asserts a 400 problem whose `detail` names `field`.
async fn assert_bad_request_naming(r: Response, field: &str) {
    let body = assert_problem(r, 400).await;
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains(field),
        "detail {detail:?} should name {field}"
    );
}

fn assert_invalid_token(r: &Response) {
    assert_eq!(r.status(), 401);
    let h = www_authenticate(r);
    assert!(h.starts_with(INVALID_TOKEN_PREFIX), "{h}");
    assert!(h.ends_with('"'), "{h}");
}

fn widget(sku: &str) -> Value {
    json!({"sku": sku, "name": "Widget", "description": "A test widget",
           "price_cents": 1234, "stock": 7})
}

/// POSTs `body` with a full token and asserts a 400 whose detail names `field`.
async fn assert_post_rejected(body: Value, field: &str) {
    let app = spawn_app().await;
    let t = full_token(&app).await;
    let r = call(&app, Method::POST, PRODUCTS, &t, Some(&body)).await;
    assert_bad_request_naming(r, field).await;
}

/// GET the list with `query` and a view token; asserts 200 and returns the body.
async fn list(app: &TestApp, t: &str, query: &str) -> Value {
    let r = app.get_with(&format!("{PRODUCTS}{query}"), t).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn skus(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| s(&p["sku"]))
        .collect()
}

fn product_count(app: &TestApp) -> i64 {
    app.db()
        .query_row("SELECT count(*) FROM products", [], |r| r.get(0))
        .unwrap()
}

/// Parses an RFC 3339 date-time into Unix seconds (fractions dropped); None if malformed.
fn rfc3339_secs(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let p = t.get(r)?;
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (num(t.len() - 5..t.len() - 3)? * 3600 + num(t.len() - 2..t.len())? * 60)
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

fn assert_updated_at(p: &Value, expected: i64) {
    let t = p["updated_at"].as_str().expect("updated_at string");
    assert_eq!(rfc3339_secs(t), Some(expected), "updated_at {t:?}");
}

#[test]
fn rfc3339_helper_parses_what_it_should() {
    assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(rfc3339_secs("2027-01-15T08:00:00Z"), Some(START));
    assert_eq!(rfc3339_secs("2027-01-15T09:00:00.5+01:00"), Some(START));
    assert_eq!(rfc3339_secs("2027-01-15 08:00:00"), None);
    assert_eq!(rfc3339_secs("1800000000"), None);
}

// ---- authentication (RFC 6750) ----

crate::on_both_engines! {
    async fn request_without_token_gets_plain_bearer_challenge(app) {
        let r = send(&app, Method::GET, PRODUCTS, None, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(www_authenticate(&r), PLAIN_CHALLENGE);
    }
}

crate::on_both_engines! {
    async fn write_without_token_gets_plain_bearer_challenge(app) {
        let r = send(&app, Method::DELETE, &sku_path("NUT-M6"), None, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(www_authenticate(&r), PLAIN_CHALLENGE);
        assert_eq!(
            app.get_with(&sku_path("NUT-M6"), &view_token(&app).await)
                .await
                .status(),
            200
        );
    }
}

crate::on_both_engines! {
    async fn me_without_token_gets_plain_bearer_challenge(app) {
        let r = send(&app, Method::GET, "/api/v1/me", None, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(www_authenticate(&r), PLAIN_CHALLENGE);
    }
}

crate::on_both_engines! {
    async fn access_token_in_query_string_is_ignored(app) {
        let t = view_token(&app).await;
        let path = format!("{PRODUCTS}?access_token={t}");
        let r = send(&app, Method::GET, &path, None, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(www_authenticate(&r), PLAIN_CHALLENGE);
    }
}

crate::on_both_engines! {
    async fn unknown_token_is_invalid_token(app) {
        let r = app
            .get_with(PRODUCTS, "bm90LWEtcmVhbC10b2tlbi1hdC1hbGwtMDEyMzQ1Njc4OQ")
            .await;
        assert_invalid_token(&r);
    }
}

crate::on_both_engines! {
    async fn expired_token_is_invalid_token(app) {
        let t = view_token(&app).await;
        assert_eq!(app.get_with(PRODUCTS, &t).await.status(), 200);
        app.clock.advance(301);
        assert_invalid_token(&app.get_with(PRODUCTS, &t).await);
    }
}

#[tokio::test]
async fn token_of_revoked_session_is_invalid_token() {
    let app = spawn_app().await;
    let t = full_token(&app).await;
    let me: Value = app.me(&t).await.json().await.unwrap();
    let session = me["session_id"].as_i64().expect("session_id");
    app.db()
        .execute(
            "UPDATE sessions SET revoked_at = ?1 WHERE id = ?2",
            [app.clock_now(), session],
        )
        .unwrap();
    assert_invalid_token(&app.get_with(PRODUCTS, &t).await);
}

crate::on_both_engines! {
    async fn view_token_cannot_create_a_product(app) {
        let t = view_token(&app).await;
        let r = call(&app, Method::POST, PRODUCTS, &t, Some(&widget("WIDGET-1"))).await;
        assert_eq!(r.status(), 403);
        assert_eq!(www_authenticate(&r), INSUFFICIENT_SCOPE);
        assert_eq!(app.get_with(&sku_path("WIDGET-1"), &t).await.status(), 404);
    }
}

crate::on_both_engines! {
    async fn view_token_cannot_replace_a_product(app) {
        let t = token(&app, "demo", "demo-secret", Some("view")).await;
        let r = call(
            &app,
            Method::PUT,
            &sku_path("NUT-M6"),
            &t,
            Some(&widget("NUT-M6")),
        )
        .await;
        assert_eq!(r.status(), 403);
        assert_eq!(www_authenticate(&r), INSUFFICIENT_SCOPE);
        let p: Value = app
            .get_with(&sku_path("NUT-M6"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(p["name"], "Hex nut M6");
    }
}

crate::on_both_engines! {
    async fn view_token_cannot_delete_a_product(app) {
        let t = view_token(&app).await;
        let r = call(&app, Method::DELETE, &sku_path("NUT-M6"), &t, None).await;
        assert_eq!(r.status(), 403);
        assert_eq!(www_authenticate(&r), INSUFFICIENT_SCOPE);
        assert_eq!(app.get_with(&sku_path("NUT-M6"), &t).await.status(), 200);
    }
}

crate::on_both_engines! {
    async fn bearer_without_token_is_invalid_request(app) {
        let r = send(&app, Method::GET, PRODUCTS, Some("Bearer"), None).await;
        assert_eq!(r.status(), 400);
        assert_eq!(www_authenticate(&r), INVALID_REQUEST);
    }
}

crate::on_both_engines! {
    async fn bearer_token_with_space_is_invalid_request(app) {
        let r = send(&app, Method::GET, PRODUCTS, Some("Bearer a b"), None).await;
        assert_eq!(r.status(), 400);
        assert_eq!(www_authenticate(&r), INVALID_REQUEST);
    }
}

crate::on_both_engines! {
    async fn bearer_token_outside_b64token_is_invalid_request(app) {
        let r = send(&app, Method::GET, PRODUCTS, Some("Bearer a,b"), None).await;
        assert_eq!(r.status(), 400);
        assert_eq!(www_authenticate(&r), INVALID_REQUEST);
    }
}

crate::on_both_engines! {
    async fn bearer_scheme_name_is_case_insensitive(app) {
        let t = view_token(&app).await;
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            let auth = format!("{scheme} {t}");
            let r = send(&app, Method::GET, PRODUCTS, Some(&auth), None).await;
            assert_eq!(r.status(), 200, "scheme {scheme}");
        }
    }
}

// ---- listing ----

#[tokio::test]
async fn list_defaults_to_first_50_ordered_by_sku() {
    let app = spawn_app().await;
    let t = view_token(&app).await;
    let body = list(&app, &t, "").await;
    let total = product_count(&app);
    assert_eq!(body["total"], total);
    assert_eq!(body["limit"], 50);
    assert_eq!(body["offset"], 0);
    let got = skus(&body);
    assert_eq!(got.len() as i64, total.min(50));
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
}

crate::on_both_engines! {
    async fn list_items_are_whole_products(app) {
        let t = view_token(&app).await;
        let body = list(&app, &t, "?limit=1").await;
        let p = &body["items"][0];
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        for k in [
            "sku",
            "name",
            "description",
            "price_cents",
            "stock",
            "updated_at",
        ] {
            assert!(keys.contains(&k), "{k} missing from {p}");
        }
        assert_eq!(keys.len(), 6, "{p}");
        assert!(rfc3339_secs(&s(&p["updated_at"])).is_some(), "{p}");
    }
}

crate::on_both_engines! {
    async fn list_pages_with_limit_and_offset(app) {
        let t = view_token(&app).await;
        let all = skus(&list(&app, &t, "?limit=500").await);
        let page = list(&app, &t, "?limit=5&offset=3").await;
        assert_eq!(page["limit"], 5);
        assert_eq!(page["offset"], 3);
        assert_eq!(page["total"], all.len());
        assert_eq!(skus(&page), all[3..8]);
    }
}

#[tokio::test]
async fn list_offset_past_the_end_is_empty() {
    let app = spawn_app().await;
    let t = view_token(&app).await;
    let page = list(&app, &t, "?offset=10000").await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["total"], product_count(&app));
}

#[tokio::test]
async fn list_accepts_limit_bounds_1_and_500() {
    let app = spawn_app().await;
    let t = view_token(&app).await;
    assert_eq!(skus(&list(&app, &t, "?limit=1").await).len(), 1);
    let big = list(&app, &t, "?limit=500").await;
    assert_eq!(big["limit"], 500);
    assert_eq!(skus(&big).len() as i64, product_count(&app));
}

crate::on_both_engines! {
    async fn list_q_matches_sku_case_insensitively(app) {
        let t = view_token(&app).await;
        let all = list(&app, &t, "?limit=500").await;
        let expected: Vec<String> = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                s(&p["sku"]).to_lowercase().contains("nut")
                    || s(&p["name"]).to_lowercase().contains("nut")
            })
            .map(|p| s(&p["sku"]))
            .collect();
        assert!(expected.contains(&"NUT-M6".to_owned()));
        for q in ["nut", "NUT", "nUt"] {
            let body = list(&app, &t, &format!("?q={q}")).await;
            assert_eq!(skus(&body), expected, "q={q}");
            assert_eq!(body["total"], expected.len(), "q={q}");
        }
    }
}

crate::on_both_engines! {
    async fn list_q_matches_name_case_insensitively(app) {
        let t = view_token(&app).await;
        // "Wood screw 4 x 40" / "Wood screw 5 x 60": the name matches, the sku does not.
        let body = list(&app, &t, "?q=wOOD+sCREW").await;
        assert_eq!(skus(&body), ["SCREW-WD-4x40", "SCREW-WD-5x60"]);
        assert_eq!(body["total"], 2);
    }
}

crate::on_both_engines! {
    async fn list_rejects_limit_zero(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&format!("{PRODUCTS}?limit=0"), &t).await;
        assert_bad_request_naming(r, "limit").await;
    }
}

crate::on_both_engines! {
    async fn list_rejects_limit_over_500(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&format!("{PRODUCTS}?limit=501"), &t).await;
        assert_bad_request_naming(r, "limit").await;
    }
}

crate::on_both_engines! {
    async fn list_rejects_non_numeric_limit(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&format!("{PRODUCTS}?limit=abc"), &t).await;
        assert_bad_request_naming(r, "limit").await;
    }
}

crate::on_both_engines! {
    async fn list_rejects_negative_offset(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&format!("{PRODUCTS}?offset=-1"), &t).await;
        assert_bad_request_naming(r, "offset").await;
    }
}

crate::on_both_engines! {
    async fn list_rejects_non_numeric_offset(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&format!("{PRODUCTS}?offset=abc"), &t).await;
        assert_bad_request_naming(r, "offset").await;
    }
}

// ---- one product ----

crate::on_both_engines! {
    async fn get_returns_one_product(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&sku_path("NUT-M6"), &t).await;
        assert_eq!(r.status(), 200);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["sku"], "NUT-M6");
        assert_eq!(p["name"], "Hex nut M6");
        assert_eq!(p["price_cents"], 4);
        assert_eq!(p["stock"], 9000);
        assert!(p["description"].is_string());
        assert!(rfc3339_secs(&s(&p["updated_at"])).is_some(), "{p}");
    }
}

crate::on_both_engines! {
    async fn full_token_can_read_a_product(app) {
        // `all` alone, without `view`: full access includes reading.
        let t = token(&app, "demo", "demo-secret", Some("all")).await;
        let r = app.get_with(&sku_path("BOLT-M6-20"), &t).await;
        assert_eq!(r.status(), 200);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["sku"], "BOLT-M6-20");
        assert!(!s(&p["name"]).is_empty(), "{p}");
    }
}

crate::on_both_engines! {
    async fn get_unknown_sku_is_404_problem(app) {
        let t = view_token(&app).await;
        let r = app.get_with(&sku_path("NO-SUCH-SKU"), &t).await;
        assert_problem(r, 404).await;
    }
}

crate::on_both_engines! {
    async fn one_product_with_a_dead_token_is_invalid_token_whether_or_not_it_exists(app) {
        let unknown = "bm90LWEtcmVhbC10b2tlbi1hdC1hbGwtMDEyMzQ1Njc4OQ";
        assert_invalid_token(&app.get_with(&sku_path("NUT-M6"), unknown).await);
        assert_invalid_token(&app.get_with(&sku_path("NO-SUCH-SKU"), unknown).await);

        // Revoked: the session ends with its refresh token (RFC 7009 §2.1).
        let g = app.grant_ok("viewer", "viewer-secret", None).await;
        let t = s(&g["access_token"]);
        assert_eq!(app.get_with(&sku_path("NUT-M6"), &t).await.status(), 200);
        let r = app
            .client
            .post(app.url("/revoke"))
            .basic_auth("viewer", Some("viewer-secret"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={}", s(&g["refresh_token"])))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_invalid_token(&app.get_with(&sku_path("NUT-M6"), &t).await);
        assert_invalid_token(&app.get_with(&sku_path("NO-SUCH-SKU"), &t).await);

        // Expired.
        let t = view_token(&app).await;
        assert_eq!(app.get_with(&sku_path("NUT-M6"), &t).await.status(), 200);
        app.clock.advance(301);
        assert_invalid_token(&app.get_with(&sku_path("NUT-M6"), &t).await);
        assert_invalid_token(&app.get_with(&sku_path("NO-SUCH-SKU"), &t).await);
    }
}

// ---- writes ----

crate::on_both_engines! {
    async fn post_creates_a_product_with_location(app) {
        let t = full_token(&app).await;
        let r = call(&app, Method::POST, PRODUCTS, &t, Some(&widget("WIDGET-1"))).await;
        assert_eq!(r.status(), 201);
        let loc = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(loc.ends_with("/api/v1/products/WIDGET-1"), "{loc}");
        let p: Value = r.json().await.unwrap();
        let mut expected = widget("WIDGET-1");
        expected["updated_at"] = p["updated_at"].clone();
        assert_eq!(p, expected);
        assert_updated_at(&p, app.clock_now());
        let again: Value = app
            .get_with(&sku_path("WIDGET-1"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again, p);
    }
}

crate::on_both_engines! {
    async fn post_of_existing_sku_is_conflict(app) {
        let t = full_token(&app).await;
        let r = call(&app, Method::POST, PRODUCTS, &t, Some(&widget("NUT-M6"))).await;
        assert_eq!(r.status(), 409);
        let p: Value = app
            .get_with(&sku_path("NUT-M6"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(p["name"], "Hex nut M6");
    }
}

crate::on_both_engines! {
    async fn post_without_description_stores_empty_description(app) {
        let t = full_token(&app).await;
        let body = json!({"sku": "WIDGET-2", "name": "Widget", "price_cents": 0, "stock": 0});
        let r = call(&app, Method::POST, PRODUCTS, &t, Some(&body)).await;
        assert_eq!(r.status(), 201);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["description"], "");
    }
}

crate::on_both_engines! {
    async fn put_creates_then_replaces(app) {
        let t = full_token(&app).await;
        let path = sku_path("WIDGET-3");
        let r = call(&app, Method::PUT, &path, &t, Some(&widget("WIDGET-3"))).await;
        assert_eq!(r.status(), 201);
        let mut changed = widget("WIDGET-3");
        changed["stock"] = json!(99);
        let r = call(&app, Method::PUT, &path, &t, Some(&changed)).await;
        assert_eq!(r.status(), 200);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["stock"], 99);
        assert_eq!(p["name"], "Widget");
    }
}

crate::on_both_engines! {
    async fn put_replacement_is_visible_to_get(app) {
        let t = full_token(&app).await;
        app.clock.advance(60);
        let body = json!({"sku": "NUT-M6", "name": "Hex nut M6, stainless",
                          "description": "A2", "price_cents": 15, "stock": 3});
        let r = call(&app, Method::PUT, &sku_path("NUT-M6"), &t, Some(&body)).await;
        assert_eq!(r.status(), 200);
        let p: Value = app
            .get_with(&sku_path("NUT-M6"), &t)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(p["name"], "Hex nut M6, stainless");
        assert_eq!(p["description"], "A2");
        assert_eq!(p["price_cents"], 15);
        assert_eq!(p["stock"], 3);
        assert_updated_at(&p, app.clock_now());
    }
}

crate::on_both_engines! {
    async fn put_with_body_sku_differing_from_url_is_rejected(app) {
        let t = full_token(&app).await;
        let r = call(
            &app,
            Method::PUT,
            &sku_path("WIDGET-4"),
            &t,
            Some(&widget("WIDGET-5")),
        )
        .await;
        assert_bad_request_naming(r, "sku").await;
        assert_eq!(app.get_with(&sku_path("WIDGET-4"), &t).await.status(), 404);
        assert_eq!(app.get_with(&sku_path("WIDGET-5"), &t).await.status(), 404);
    }
}

crate::on_both_engines! {
    async fn delete_removes_a_product(app) {
        let t = full_token(&app).await;
        let path = sku_path("NUT-M6");
        assert_eq!(
            call(&app, Method::DELETE, &path, &t, None).await.status(),
            204
        );
        assert_problem(app.get_with(&path, &t).await, 404).await;
        assert_problem(call(&app, Method::DELETE, &path, &t, None).await, 404).await;
    }
}

// ---- bad product input ----

#[tokio::test]
async fn product_with_unknown_field_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["colour"] = json!("red");
    assert_post_rejected(body, "colour").await;
}

#[tokio::test]
async fn product_with_updated_at_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["updated_at"] = json!("2027-01-15T08:00:00Z");
    assert_post_rejected(body, "updated_at").await;
}

#[tokio::test]
async fn product_with_string_price_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["price_cents"] = json!("1234");
    assert_post_rejected(body, "price_cents").await;
}

#[tokio::test]
async fn product_with_negative_stock_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["stock"] = json!(-1);
    assert_post_rejected(body, "stock").await;
}

#[tokio::test]
async fn product_with_negative_price_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["price_cents"] = json!(-1);
    assert_post_rejected(body, "price_cents").await;
}

#[tokio::test]
async fn product_without_sku_is_rejected() {
    let mut body = widget("WIDGET-6");
    body.as_object_mut().unwrap().remove("sku");
    assert_post_rejected(body, "sku").await;
}

#[tokio::test]
async fn product_with_201_character_name_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["name"] = json!("n".repeat(201));
    assert_post_rejected(body, "name").await;
}

#[tokio::test]
async fn product_with_empty_name_is_rejected() {
    let mut body = widget("WIDGET-6");
    body["name"] = json!("");
    assert_post_rejected(body, "name").await;
}

#[tokio::test]
async fn product_with_bad_sku_characters_is_rejected() {
    assert_post_rejected(widget("BAD SKU!"), "sku").await;
}

crate::on_both_engines! {
    async fn malformed_json_body_is_rejected(app) {
        let t = full_token(&app).await;
        let r = app
            .client
            .post(app.url(PRODUCTS))
            .bearer_auth(&t)
            .header("Content-Type", "application/json")
            .body(r#"{"sku": "WIDGET-7", "name": "#)
            .send()
            .await
            .unwrap();
        assert_problem(r, 400).await;
    }
}

// ---- /me ----

crate::on_both_engines! {
    async fn me_describes_a_licensed_grant(app) {
        app.clock.advance(1000);
        let granted_at = app.clock_now();
        let grant = app.grant_ok("demo", "demo-secret", Some("all")).await;
        let r = app.me(&s(&grant["access_token"])).await;
        assert_eq!(r.status(), 200);
        let me: Value = r.json().await.unwrap();
        assert_eq!(me["client_id"], "demo");
        assert_eq!(me["scope"], grant["scope"]);
        assert_eq!(me["expires_at"], granted_at + 300);
        assert!(!me["session_id"].is_null(), "{me}");
        assert_eq!(me["session_expires_at"], granted_at + 1200);
        assert_eq!(me["seat"], true);
    }
}

crate::on_both_engines! {
    async fn me_describes_a_view_grant_without_seat(app) {
        app.clock.advance(1000);
        let granted_at = app.clock_now();
        let t = view_token(&app).await;
        let me: Value = app.me(&t).await.json().await.unwrap();
        assert_eq!(me["client_id"], "viewer");
        assert_eq!(me["scope"], "view");
        assert_eq!(me["expires_at"], granted_at + 300);
        assert_eq!(me["session_expires_at"], granted_at + 1200);
        assert_eq!(me["seat"], false);
    }
}

crate::on_both_engines! {
    async fn me_for_demo_view_grant_holds_no_seat(app) {
        let t = token(&app, "demo", "demo-secret", Some("view")).await;
        let me: Value = app.me(&t).await.json().await.unwrap();
        assert_eq!(me["client_id"], "demo");
        assert_eq!(me["scope"], "view");
        assert_eq!(me["seat"], false);
    }
}
