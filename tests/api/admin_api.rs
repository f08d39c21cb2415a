//! The admin API (API.md §8) over HTTP, on both engines: the scope it needs, the
//! shapes it answers, its paging, its 400/404/409 cases, and the audit record of
//! every action with the acting client.
use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

const ADMIN: &str = "/admin/v1";

/// Every admin route, with a body that would be valid.
fn routes() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (Method::GET, "/licences", None),
        (Method::PUT, "/licences", Some(json!({"seats": 3}))),
        (Method::GET, "/sessions", None),
        (Method::DELETE, "/sessions/1", None),
        (Method::GET, "/users", None),
        (
            Method::POST,
            "/users",
            Some(json!({"client_id": "x1", "scopes": ["view"]})),
        ),
        (Method::POST, "/users/viewer/disable", None),
        (Method::POST, "/users/viewer/enable", None),
        (Method::POST, "/users/viewer/secret", None),
        (Method::GET, "/scopes", None),
        (Method::GET, "/audit", None),
        (Method::GET, "/queries", None),
        (
            Method::PUT,
            "/queries/q1",
            Some(json!({"sql": "SELECT sku FROM products"})),
        ),
        (Method::DELETE, "/queries/q1", None),
        (Method::GET, "/scripts", None),
        (Method::GET, "/scripts/price-list", None),
        (Method::PUT, "/scripts/s1", Some(json!({"source": "1"}))),
        (Method::DELETE, "/scripts/s1", None),
    ]
}

async fn admin_token(app: &TestApp) -> String {
    let t = app.grant_ok("ops", "ops-secret", None).await;
    assert_eq!(t["scope"], "admin");
    s(&t["access_token"])
}

/// One admin call: status, headers and the JSON body (Null when empty).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = app
        .client
        .request(method, app.url(&format!("{ADMIN}{path}")));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, headers, v)
}

/// A 400 problem+json that names `field` in its member and its detail.
fn assert_field(status: u16, h: &reqwest::header::HeaderMap, v: &Value, field: &str) {
    assert_eq!(status, 400, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(v["field"], field, "{v}");
    assert!(s(&v["detail"]).starts_with(field), "{v}");
}

/// The admin audit rows, newest first, read through the API itself.
async fn audit(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (st, _, v) = call(
        app,
        Method::GET,
        &format!("/audit?{query}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

crate::on_both_engines! {
    async fn every_admin_route_needs_a_token_holding_admin(app) {
        let view = s(&app.grant_ok("viewer", "viewer-secret", None).await["access_token"]);
        // `all` never implies `admin`.
        let all = s(&app.grant_ok("demo", "demo-secret", Some("all")).await["access_token"]);
        for (method, path, body) in routes() {
            let (st, h, _) = call(&app, method.clone(), path, None, body.clone()).await;
            assert_eq!(st, 401, "{method} {path} without a token");
            assert!(h["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
            let (st, h, _) = call(&app, method.clone(), path, Some("not-a-token"), body.clone()).await;
            assert_eq!(st, 401, "{method} {path} with a bad token");
            assert!(h["www-authenticate"].to_str().unwrap().contains("invalid_token"));
            for token in [&view, &all] {
                let (st, h, _) = call(&app, method.clone(), path, Some(token), body.clone()).await;
                assert_eq!(st, 403, "{method} {path} without admin");
                assert_eq!(
                    h["www-authenticate"],
                    "Bearer realm=\"tollgate\", error=\"insufficient_scope\", scope=\"admin\""
                );
            }
        }
        // Nothing changed on the way.
        let token = admin_token(&app).await;
        let (_, _, v) = call(&app, Method::GET, "/licences", Some(&token), None).await;
        assert_eq!(v["seats"], 2);
        let (_, _, v) = call(&app, Method::GET, "/users", Some(&token), None).await;
        assert!(v["items"].as_array().unwrap().iter().all(|u| u["client_id"] != "x1"));
    }
}

crate::on_both_engines! {
    async fn the_admin_scope_takes_no_seat_and_is_granted_only_by_name(app) {
        let t = app.grant_ok("ops", "ops-secret", Some("admin")).await;
        assert_eq!(t["scope"], "admin");
        assert_eq!(app.seats_held(), 0);
        let r = app.me(&s(&t["access_token"])).await;
        assert_eq!(r.json::<Value>().await.unwrap()["seat"], false);
        // demo holds `all` and `view`, not `admin`.
        assert_oauth_error(app.grant("demo", "demo-secret", Some("admin")).await, 400, "invalid_scope").await;
    }
}

crate::on_both_engines! {
    async fn licences_are_read_and_set(app) {
        let token = admin_token(&app).await;
        app.grant_ok("demo", "demo-secret", Some("all")).await;
        let (st, _, v) = call(&app, Method::GET, "/licences", Some(&token), None).await;
        assert_eq!((st, v), (200, json!({"seats": 2, "held": 1})));
        let (st, _, v) = call(&app, Method::PUT, "/licences", Some(&token), Some(json!({"seats": 5}))).await;
        assert_eq!((st, v), (200, json!({"seats": 5, "held": 1})));
        for bad in [json!({"seats": -1}), json!({"seats": "x"}), json!({"seats": 1_000_001}), json!({"seats": 1.5})] {
            let (st, h, v) = call(&app, Method::PUT, "/licences", Some(&token), Some(bad.clone())).await;
            assert_field(st, &h, &v, "seats");
        }
        for bad in [json!({}), json!({"seats": 1, "extra": 1}), json!([1])] {
            let (st, _, v) = call(&app, Method::PUT, "/licences", Some(&token), Some(bad)).await;
            assert_eq!(st, 400, "{v}");
        }
        let (_, _, v) = call(&app, Method::GET, "/licences", Some(&token), None).await;
        assert_eq!(v["seats"], 5);
        let rows = audit(&app, &token, "client=ops").await;
        let set = rows.iter().find(|r| r["event"] == "licences.set").unwrap();
        assert_eq!(set["client_id"], "ops");
        assert_eq!(set["address"], "127.0.0.1");
        assert_eq!(set["outcome"], "ok");
        assert!(s(&set["detail"]).contains("2 -> 5"));
    }
}

crate::on_both_engines! {
    async fn ending_a_session_frees_its_seat_and_kills_its_tokens(app) {
        let token = admin_token(&app).await;
        let t = app.grant_ok("demo", "demo-secret", Some("all")).await;
        let access = s(&t["access_token"]);
        let me: Value = app.me(&access).await.json().await.unwrap();
        let (st, _, v) = call(&app, Method::GET, "/sessions", Some(&token), None).await;
        assert_eq!(st, 200);
        assert_eq!(v["total"], 2, "{v}");
        let session = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["client_id"] == "demo")
            .unwrap()
            .clone();
        let keys: Vec<&str> = session.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["client_id", "created_at", "expires_at", "id", "scope", "seat"]);
        assert_eq!(session["id"], me["session_id"]);
        assert_eq!(session["scope"], "all");
        assert_eq!(session["seat"], true);
        assert_eq!(session["expires_at"].as_i64().unwrap() - session["created_at"].as_i64().unwrap(), 1200);
        let id = session["id"].as_i64().unwrap();
        let (st, _, v) = call(&app, Method::DELETE, &format!("/sessions/{id}"), Some(&token), None).await;
        assert_eq!((st, v), (204, Value::Null));
        assert_eq!(app.seats_held(), 0);
        assert_eq!(app.me(&access).await.status(), 401);
        let r = app.refresh("demo", "demo-secret", &s(&t["refresh_token"]), None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        for gone in [format!("/sessions/{id}"), "/sessions/999999".into(), "/sessions/abc".into()] {
            let (st, h, v) = call(&app, Method::DELETE, &gone, Some(&token), None).await;
            assert_eq!(st, 404, "{gone}: {v}");
            assert_eq!(h["content-type"], "application/problem+json");
        }
        let rows = audit(&app, &token, "").await;
        assert!(rows.iter().any(|r| r["event"] == "sessions.revoke"
            && r["client_id"] == "ops"
            && s(&r["detail"]) == format!("session {id}")));
    }
}

crate::on_both_engines! {
    async fn users_are_added_with_a_secret_shown_once_that_works(app) {
        let token = admin_token(&app).await;
        let (st, h, v) = call(&app, Method::POST, "/users", Some(&token),
            Some(json!({"client_id": "carol", "scopes": ["view", "all"], "api_user": true}))).await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["location"], "/admin/v1/users/carol");
        let secret = s(&v["client_secret"]);
        assert!(secret.len() >= 43);
        assert_eq!(v["client_id"], "carol");
        assert_eq!(v["scopes"], json!(["all", "view"]));
        assert_eq!(v["disabled"], false);
        assert_eq!(v["api_user"], true);
        assert_eq!(v["created_at"], app.clock_now());
        assert_eq!(app.grant_ok("carol", &secret, Some("view")).await["scope"], "view");
        // Listed, never with a hash or a secret.
        let (_, _, list) = call(&app, Method::GET, "/users", Some(&token), None).await;
        let text = list.to_string();
        assert!(!text.contains(&secret) && !text.contains("pbkdf2"), "{text}");
        let carol = list["items"].as_array().unwrap().iter().find(|u| u["client_id"] == "carol").unwrap();
        let keys: Vec<&str> = carol.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["api_user", "client_id", "created_at", "disabled", "scopes"]);
        // Defaults: scopes ["view"], an API user.
        let (st, _, v) = call(&app, Method::POST, "/users", Some(&token), Some(json!({"client_id": "dave"}))).await;
        assert_eq!((st, &v["scopes"], &v["api_user"]), (201, &json!(["view"]), &json!(true)));
        let rows = audit(&app, &token, "client=ops").await;
        let add = rows.iter().find(|r| r["event"] == "user.add").unwrap();
        assert!(s(&add["detail"]).starts_with("dave: "), "{add}");
        assert!(!serde_json::to_string(&rows).unwrap().contains(&secret));
    }
}

crate::on_both_engines! {
    async fn adding_a_user_refuses_taken_names_bad_names_and_unknown_scopes(app) {
        let token = admin_token(&app).await;
        let (st, h, v) = call(&app, Method::POST, "/users", Some(&token), Some(json!({"client_id": "demo"}))).await;
        assert_eq!(st, 409, "{v}");
        assert_eq!(h["content-type"], "application/problem+json");
        assert!(s(&v["detail"]).contains("exists already"));
        for bad in ["", "a:b", " padded", "x".repeat(65).as_str()] {
            let (st, h, v) = call(&app, Method::POST, "/users", Some(&token), Some(json!({"client_id": bad}))).await;
            assert_field(st, &h, &v, "client_id");
        }
        let (st, h, v) = call(&app, Method::POST, "/users", Some(&token),
            Some(json!({"client_id": "erin", "scopes": ["view", "nope"]}))).await;
        assert_field(st, &h, &v, "scopes");
        assert!(s(&v["detail"]).contains("nope"));
        for bad in [json!({"scopes": ["view"]}), json!({"client_id": 5}), json!({"client_id": "f", "secret": "x"})] {
            let (st, _, v) = call(&app, Method::POST, "/users", Some(&token), Some(bad.clone())).await;
            assert_eq!(st, 400, "{bad}: {v}");
        }
        let (_, _, list) = call(&app, Method::GET, "/users", Some(&token), None).await;
        assert_eq!(list["total"], 4, "nothing was added: {list}");
    }
}

crate::on_both_engines! {
    async fn disabling_ends_sessions_and_refuses_grants_until_enabled(app) {
        let token = admin_token(&app).await;
        let t = app.grant_ok("demo", "demo-secret", Some("all")).await;
        let (st, _, v) = call(&app, Method::POST, "/users/demo/disable", Some(&token), None).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["client_id"], "demo");
        assert_eq!(v["disabled"], true);
        assert_eq!(app.seats_held(), 0);
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
        assert_oauth_error(app.grant("demo", "demo-secret", None).await, 401, "invalid_client").await;
        let (st, _, v) = call(&app, Method::POST, "/users/demo/enable", Some(&token), None).await;
        assert_eq!((st, &v["disabled"]), (200, &json!(false)));
        app.grant_ok("demo", "demo-secret", None).await;
        let (st, _, v) = call(&app, Method::POST, "/users/ops/disable", Some(&token), None).await;
        assert_eq!(st, 409, "an admin client cannot lock itself out: {v}");
        for path in ["/users/ghost/disable", "/users/ghost/enable", "/users/ghost/secret", "/users/demo/explode"] {
            let (st, _, v) = call(&app, Method::POST, path, Some(&token), None).await;
            assert_eq!(st, 404, "{path}: {v}");
        }
        let events: Vec<String> = audit(&app, &token, "client=ops").await.iter().map(|r| s(&r["event"])).collect();
        assert!(events.contains(&"user.disable".into()) && events.contains(&"user.enable".into()), "{events:?}");
    }
}

crate::on_both_engines! {
    async fn a_new_secret_works_at_once_and_the_old_one_is_dead(app) {
        let token = admin_token(&app).await;
        let (st, h, v) = call(&app, Method::POST, "/users/viewer/secret", Some(&token), None).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(v["client_id"], "viewer");
        let secret = s(&v["client_secret"]);
        assert_oauth_error(app.grant("viewer", "viewer-secret", None).await, 401, "invalid_client").await;
        app.grant_ok("viewer", &secret, None).await;
        let rows = audit(&app, &token, "client=ops").await;
        assert!(rows.iter().any(|r| r["event"] == "user.reset-secret" && r["detail"] == "viewer"));
    }
}

crate::on_both_engines! {
    async fn scopes_and_lists_are_paged(app) {
        let token = admin_token(&app).await;
        let (st, _, v) = call(&app, Method::GET, "/scopes", Some(&token), None).await;
        assert_eq!(st, 200);
        let admin = v["items"].as_array().unwrap().iter().find(|x| x["name"] == "admin").unwrap();
        assert_eq!(admin["licensed"], false);
        let keys: Vec<&str> = admin.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["description", "licensed", "name"]);
        let (_, _, all) = call(&app, Method::GET, "/users", Some(&token), None).await;
        assert_eq!((all["total"].as_i64(), all["limit"].as_i64(), all["offset"].as_i64()), (Some(4), Some(50), Some(0)));
        let (_, _, page) = call(&app, Method::GET, "/users?limit=2&offset=1", Some(&token), None).await;
        assert_eq!(page["total"], 4);
        assert_eq!(page["items"].as_array().unwrap()[..], all["items"].as_array().unwrap()[1..3]);
        let (_, _, past) = call(&app, Method::GET, "/users?offset=10", Some(&token), None).await;
        assert_eq!((past["items"].as_array().unwrap().len(), &past["total"]), (0, &json!(4)));
        for (q, field) in [("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")] {
            let (st, h, v) = call(&app, Method::GET, &format!("/sessions?{q}"), Some(&token), None).await;
            assert_field(st, &h, &v, field);
        }
        let (st, _, v) = call(&app, Method::GET, "/users?colour=red", Some(&token), None).await;
        assert_eq!(st, 400, "{v}");
        assert!(s(&v["detail"]).contains("colour"));
    }
}

crate::on_both_engines! {
    async fn the_audit_trail_is_newest_first_filtered_and_paged(app) {
        let token = admin_token(&app).await;
        app.grant_ok("viewer", "viewer-secret", None).await;
        app.clock.advance(10);
        call(&app, Method::PUT, "/licences", Some(&token), Some(json!({"seats": 3}))).await;
        app.clock.advance(10);
        // A new token: the first's `now` was read at its own request.
        let token = admin_token(&app).await;
        call(&app, Method::PUT, "/licences", Some(&token), Some(json!({"seats": 4}))).await;
        // Grants are written with a later commit: wait for the trail to show them.
        let mut rows = Vec::new();
        for _ in 0..100 {
            rows = audit(&app, &token, "since=1h").await;
            if rows.iter().any(|r| r["client_id"] == "viewer") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let ats: Vec<i64> = rows.iter().map(|r| r["at"].as_i64().unwrap()).collect();
        assert!(ats.windows(2).all(|w| w[0] >= w[1]), "newest first: {ats:?}");
        // Grants are recorded with a later commit, so within one second a grant may
        // follow an admin change it preceded; the admin changes keep their order.
        let sets: Vec<&Value> = rows.iter().filter(|r| r["event"] == "licences.set").collect();
        assert!(s(&sets[0]["detail"]).contains("3 -> 4"));
        assert!(s(&sets[1]["detail"]).contains("2 -> 3"));
        let keys: Vec<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["address", "at", "client_id", "detail", "event", "outcome"]);
        let viewer = audit(&app, &token, "client=viewer").await;
        assert!(!viewer.is_empty() && viewer.iter().all(|r| r["client_id"] == "viewer"));
        let (_, _, page) = call(&app, Method::GET, "/audit?since=1h&limit=1&offset=1", Some(&token), None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["items"][0], rows[1]);
        assert_eq!(page["total"], rows.len());
        // `since` bounds it: 5 s back is after the viewer's grant.
        let recent = audit(&app, &token, "since=5").await;
        assert!(recent.iter().all(|r| r["client_id"] != "viewer"), "{recent:?}");
        for bad in ["since=soon", "since=0", "since=-1h"] {
            let (st, h, v) = call(&app, Method::GET, &format!("/audit?{bad}"), Some(&token), None).await;
            assert_field(st, &h, &v, "since");
        }
    }
}

crate::on_both_engines! {
    async fn queries_are_put_replaced_run_and_removed(app) {
        let token = admin_token(&app).await;
        let body = json!({"sql": "SELECT sku, stock FROM products WHERE sku = ?1", "scope": "view", "description": "Stock of one SKU"});
        let (st, _, v) = call(&app, Method::PUT, "/queries/stock_of", Some(&token), Some(body.clone())).await;
        assert_eq!(st, 201, "{v}");
        assert_eq!(v, json!({"name": "stock_of", "sql": body["sql"], "scope": "view", "description": "Stock of one SKU"}));
        let view = s(&app.grant_ok("viewer", "viewer-secret", None).await["access_token"]);
        let r = app.get_with("/api/v1/custom/stock_of?qp1=NUT-M6", &view).await;
        assert_eq!(r.status(), 200);
        let doc: Value = r.json().await.unwrap();
        assert_eq!(doc["resultSets"][0]["rows"][0][0], "NUT-M6", "{doc}");
        // Replaced: 200, and the new SQL answers.
        let (st, _, v) = call(&app, Method::PUT, "/queries/stock_of", Some(&token),
            Some(json!({"sql": "SELECT sku FROM products WHERE sku = ?1"}))).await;
        assert_eq!((st, &v["description"]), (200, &json!("")));
        let (_, _, list) = call(&app, Method::GET, "/queries", Some(&token), None).await;
        let mine: Vec<&Value> = list["items"].as_array().unwrap().iter().filter(|q| q["name"] == "stock_of").collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["sql"], "SELECT sku FROM products WHERE sku = ?1");
        let (st, _, _) = call(&app, Method::DELETE, "/queries/stock_of", Some(&token), None).await;
        assert_eq!(st, 204);
        assert_eq!(app.get_with("/api/v1/custom/stock_of?qp1=NUT-M6", &view).await.status(), 404);
        let (st, _, _) = call(&app, Method::DELETE, "/queries/stock_of", Some(&token), None).await;
        assert_eq!(st, 404);
        let events: Vec<String> = audit(&app, &token, "client=ops").await.iter().map(|r| s(&r["event"])).collect();
        for e in ["query.add", "query.replace", "query.remove"] {
            assert!(events.contains(&e.to_owned()), "{e}: {events:?}");
        }
    }
}

crate::on_both_engines! {
    async fn a_query_the_sandbox_refuses_is_a_400_that_says_why(app) {
        let token = admin_token(&app).await;
        let cases = [
            ("/queries/wipe", json!({"sql": "DELETE FROM products"}), "sql"),
            ("/queries/users", json!({"sql": "SELECT \"PASSWORD\" FROM users"}), "sql"),
            ("/queries/bad%20name", json!({"sql": "SELECT 1"}), "name"),
            ("/queries/noscope", json!({"sql": "SELECT 1", "scope": "nope"}), "scope"),
        ];
        for (path, body, field) in cases {
            let (st, h, v) = call(&app, Method::PUT, path, Some(&token), Some(body)).await;
            assert_field(st, &h, &v, field);
            assert!(s(&v["detail"]).len() > field.len() + 10, "{v}");
        }
        let (st, _, v) = call(&app, Method::PUT, "/queries/x", Some(&token), Some(json!({"scope": "view"}))).await;
        assert_eq!(st, 400, "{v}");
        assert!(s(&v["detail"]).contains("sql"));
        let (_, _, list) = call(&app, Method::GET, "/queries", Some(&token), None).await;
        assert!(list["items"].as_array().unwrap().iter().all(|q| q["name"] != "wipe" && q["name"] != "users"));
    }
}

crate::on_both_engines! {
    async fn all_does_not_pass_a_query_published_under_admin(app) {
        let token = admin_token(&app).await;
        let (st, _, v) = call(&app, Method::PUT, "/queries/ops_only", Some(&token),
            Some(json!({"sql": "SELECT count(*) FROM products", "scope": "admin"}))).await;
        assert_eq!(st, 201, "{v}");
        let all = s(&app.grant_ok("demo", "demo-secret", Some("all")).await["access_token"]);
        assert_eq!(app.get_with("/api/v1/custom/ops_only", &all).await.status(), 403);
        assert_eq!(app.get_with("/api/v1/custom/ops_only", &token).await.status(), 200);
    }
}
