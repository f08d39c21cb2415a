//! Script URL handlers (API.md §11) on both engines: the demo handlers, the scope and
//! method rules, every limit a hostile script hits (in bounded time, other requests
//! still served), the one transaction of a `--writes` handler, the namespace shared
//! with GetData queries, the compiled-script cache, `tollgate script …` and the admin
//! API's rows.
use crate::helpers::*;
use crate::on_both_engines;
use reqwest::{Method, Response};
use serde_json::{json, Value};

pub(crate) const CUSTOM: &str = "/api/v1/custom";
pub(crate) async fn token(app: &TestApp, user: &str, secret: &str, scope: Option<&str>) -> String {
    s(&app.grant_ok(user, secret, scope).await["access_token"])
}

pub(crate) async fn view_token(app: &TestApp) -> String {
    token(app, "viewer", "viewer-secret", None).await
}

pub(crate) async fn all_token(app: &TestApp) -> String {
    token(app, "demo", "demo-secret", Some("all")).await
}

pub(crate) async fn admin_token(app: &TestApp) -> String {
    token(app, "ops", "ops-secret", None).await
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    tok: &str,
    body: Option<Value>,
) -> Response {
    let mut rb = app.client.request(method, app.url(path)).bearer_auth(tok);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.unwrap()
}

pub(crate) async fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Publishes `source` through the admin API; the status.
pub(crate) async fn put(app: &TestApp, admin: &str, name: &str, body: Value) -> (u16, Value) {
    let path = format!("/admin/v1/scripts/{name}");
    json_of(call(app, Method::PUT, &path, admin, Some(body)).await).await
}

pub(crate) async fn publish(app: &TestApp, name: &str, source: &str) {
    let admin = admin_token(app).await;
    let (status, body) = put(app, &admin, name, json!({ "source": source })).await;
    assert!(status == 201 || status == 200, "{status} {body}");
}

pub(crate) async fn stock(app: &TestApp, sku: &str) -> i64 {
    let t = view_token(app).await;
    let r = app.get_with(&format!("/api/v1/products/{sku}"), &t).await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["stock"].as_i64().unwrap()
}

on_both_engines! {
    async fn demo_handlers_answer_as_documented(app) {
        let view = view_token(&app).await;
        let (status, body) = json_of(app.get_with(&format!("{CUSTOM}/price-list?max=700"), &view).await).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        assert_eq!(body["count"], items.len());
        assert!(!items.is_empty());
        assert_eq!(items[0]["price"], "0.02");
        let (status, _) = json_of(app.get_with(&format!("{CUSTOM}/price-list?max=x"), &view).await).await;
        assert_eq!(status, 422);

        let before = stock(&app, "ANCHOR-8").await;
        let all = all_token(&app).await;
        let path = format!("{CUSTOM}/stock-adjust");
        let (status, body) = json_of(call(&app, Method::POST, &path, &all, Some(json!({"sku": "ANCHOR-8", "delta": -5}))).await).await;
        assert_eq!((status, body["stock"].as_i64()), (200, Some(before - 5)), "{body}");
        assert_eq!(stock(&app, "ANCHOR-8").await, before - 5);
        let (status, body) = json_of(call(&app, Method::POST, &path, &all, Some(json!({"sku": "ANCHOR-8", "delta": -100000}))).await).await;
        assert_eq!(status, 422, "{body}");
        let (status, _) = json_of(call(&app, Method::POST, &path, &all, Some(json!({"sku": 7}))).await).await;
        assert_eq!(status, 422);
        assert_eq!(stock(&app, "ANCHOR-8").await, before - 5);
        // `view` is not enough for a handler published under `all`.
        let r = call(&app, Method::POST, &path, &view, Some(json!({"sku": "ANCHOR-8", "delta": 1}))).await;
        assert_eq!(r.status(), 403);
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    }

    async fn scope_method_and_name_rules(app) {
        publish(&app, "hello", "#{ hello: request.client_id, method: request.method, q: request.query }").await;
        let admin = admin_token(&app).await;
        let (status, _) = put(&app, &admin, "secret", json!({"source": "1", "scope": "admin"})).await;
        assert_eq!(status, 201);
        let view = view_token(&app).await;
        let all = all_token(&app).await;
        let (status, body) = json_of(app.get_with(&format!("{CUSTOM}/hello?a=1"), &view).await).await;
        assert_eq!(status, 200);
        assert_eq!(body, json!({"hello": "viewer", "method": "GET", "q": {"a": "1"}}));
        // `all` passes a `view` handler, but never one under `admin`.
        assert_eq!(app.get_with(&format!("{CUSTOM}/hello"), &all).await.status(), 200);
        assert_eq!(app.get_with(&format!("{CUSTOM}/secret"), &all).await.status(), 403);
        // Wrong method: 405 with Allow, for a handler and for a query.
        let r = call(&app, Method::POST, &format!("{CUSTOM}/hello"), &view, None).await;
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "GET");
        let r = call(&app, Method::DELETE, &format!("{CUSTOM}/low-stock"), &view, None).await;
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "GET, HEAD");
        // Unknown: 404 whatever the method; `getdata` stays GetData's route.
        assert_eq!(app.get_with(&format!("{CUSTOM}/nope"), &view).await.status(), 404);
        assert_eq!(call(&app, Method::POST, &format!("{CUSTOM}/nope"), &view, None).await.status(), 404);
        let r = app.get_with(&format!("{CUSTOM}/getdata?queryname=low-stock&qp1=5"), &view).await;
        assert_eq!(r.status(), 200);
        assert!(r.json::<Value>().await.unwrap()["resultSets"].is_array());
        // No token: 401 before anything is looked up.
        let r = app.client.get(app.url(&format!("{CUSTOM}/hello"))).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }

    async fn a_writing_handler_is_one_transaction(app) {
        let admin = admin_token(&app).await;
        let half = "execute(\"UPDATE products SET stock = stock + 1 WHERE sku = ?1\", [\"ANCHOR-8\"]);\n\
                    execute(\"UPDATE products SET stock = stock + 1 WHERE sku = ?1\", [\"WASHER-M6\"]);\n\
                    if request.body.fail { throw \"half-way\"; }\n#{ ok: true }";
        let (status, body) = put(&app, &admin, "bump", json!({"source": half, "method": "POST", "scope": "all", "writes": true})).await;
        assert_eq!(status, 201, "{body}");
        let (a, w) = (stock(&app, "ANCHOR-8").await, stock(&app, "WASHER-M6").await);
        let all = all_token(&app).await;
        let path = format!("{CUSTOM}/bump");
        let (status, body) = json_of(call(&app, Method::POST, &path, &all, Some(json!({"fail": true}))).await).await;
        assert_eq!(status, 500, "{body}");
        assert!(s(&body["detail"]).contains("line 3"), "{body}");
        assert_eq!((stock(&app, "ANCHOR-8").await, stock(&app, "WASHER-M6").await), (a, w));
        let (status, _) = json_of(call(&app, Method::POST, &path, &all, Some(json!({"fail": false}))).await).await;
        assert_eq!(status, 200);
        assert_eq!((stock(&app, "ANCHOR-8").await, stock(&app, "WASHER-M6").await), (a + 1, w + 1));
        // execute() reaches the products table only.
        let (status, _) = put(&app, &admin, "grab", json!({"source": "execute(\"DELETE FROM users\")", "method": "POST", "scope": "all", "writes": true})).await;
        assert_eq!(status, 201);
        let (status, body) = json_of(call(&app, Method::POST, &format!("{CUSTOM}/grab"), &all, None).await).await;
        assert_eq!(status, 500);
        assert!(s(&body["detail"]).contains("refused"), "{body}");
        assert_eq!(app.grant("viewer", "viewer-secret", None).await.status(), 200);
        // A read-only handler may not call execute().
        publish(&app, "sneaky", "execute(\"DELETE FROM products\")").await;
        let (status, body) = json_of(app.get_with(&format!("{CUSTOM}/sneaky"), &all).await).await;
        assert_eq!(status, 500);
        assert!(s(&body["detail"]).contains("--writes"), "{body}");
        assert_eq!(stock(&app, "ANCHOR-8").await, a + 1);
    }

    async fn names_are_a_query_or_a_script_never_both(app) {
        let admin = admin_token(&app).await;
        let (status, body) = put(&app, &admin, "low-stock", json!({"source": "1"})).await;
        assert_eq!(status, 409, "{body}");
        assert!(s(&body["detail"]).contains("GetData query"), "{body}");
        let path = "/admin/v1/queries/price-list";
        let (status, body) = json_of(call(&app, Method::PUT, path, &admin, Some(json!({"sql": "SELECT 1 AS x"}))).await).await;
        assert_eq!(status, 409, "{body}");
        assert!(s(&body["detail"]).contains("script"), "{body}");
        let file = source_file("1");
        let err = fails(&app, &["script", "add", "low-stock", "--file", file.path().to_str().unwrap()]);
        assert!(err.contains("GetData query"), "{err}");
        let err = fails(&app, &["query", "add", "stock-adjust", "--sql", "SELECT 1 AS x"]);
        assert!(err.contains("script"), "{err}");
    }

    async fn the_cache_sees_a_change_at_the_next_request(app) {
        publish(&app, "ver", "\"one\"").await;
        let view = view_token(&app).await;
        let url = format!("{CUSTOM}/ver");
        let get = || app.get_with(&url, &view);
        assert_eq!(get().await.json::<Value>().await.unwrap(), "one");
        publish(&app, "ver", "\"two\"").await;
        assert_eq!(get().await.json::<Value>().await.unwrap(), "two");
        let file = source_file("\"three\"");
        ok(&app, &["script", "add", "ver", "--file", file.path().to_str().unwrap(), "--replace"]);
        assert_eq!(get().await.json::<Value>().await.unwrap(), "three");
        ok(&app, &["script", "remove", "ver"]);
        assert_eq!(get().await.status(), 404);
    }

    async fn cli_adds_lists_runs_and_removes(app) {
        let file = source_file("#{ sum: parse_int(request.query.a) + request.body.b }");
        let path = file.path().to_str().unwrap();
        let out = ok(&app, &["script", "add", "sum", "--file", path, "--method", "post", "--description", "adds"]);
        assert!(out.contains("script sum added"), "{out}");
        let err = fails(&app, &["script", "add", "sum", "--file", path]);
        assert!(err.contains("exists already"), "{err}");
        let listed = cli_json(&app, &["script", "list", "--json"]);
        let sum = listed.as_array().unwrap().iter().find(|s| s["name"] == "sum").unwrap().clone();
        assert_eq!((sum["method"].clone(), sum["scope"].clone(), sum["writes"].clone()), (json!("POST"), json!("view"), json!(false)));
        let table = ok(&app, &["script", "list"]);
        assert!(table.contains("price-list") && table.contains("sum"), "{table}");
        let out = ok(&app, &["script", "run", "sum", "--query", "a=2", "--body", "{\"b\": 3}"]);
        assert!(out.starts_with("200\n"), "{out}");
        assert_eq!(serde_json::from_str::<Value>(&out[4..]).unwrap(), json!({"sum": 5}));
        let bad = source_file("let x = 1;\nlet = ;");
        let err = fails(&app, &["script", "add", "broken", "--file", bad.path().to_str().unwrap()]);
        assert!(err.contains("does not compile: line 2"), "{err}");
        let err = fails(&app, &["script", "add", "w", "--file", path, "--writes"]);
        assert!(err.contains("scope all"), "{err}");
        let out = ok(&app, &["script", "remove", "sum"]);
        assert!(out.contains("removed"), "{out}");
        let err = fails(&app, &["script", "remove", "sum"]);
        assert!(err.contains("no script named"), "{err}");
        let err = fails(&app, &["script", "run", "sum"]);
        assert!(err.contains("no script named"), "{err}");
    }

    async fn admin_api_rows(app) {
        let admin = admin_token(&app).await;
        let (status, body) = json_of(call(&app, Method::GET, "/admin/v1/scripts", &admin, None).await).await;
        assert_eq!(status, 200);
        assert_eq!(body["total"], 2);
        assert_eq!(body["items"][0]["name"], "price-list");
        let (status, body) = json_of(call(&app, Method::GET, "/admin/v1/scripts/stock-adjust", &admin, None).await).await;
        assert_eq!((status, body["writes"].clone(), body["method"].clone()), (200, json!(true), json!("POST")));
        let (status, _) = json_of(call(&app, Method::GET, "/admin/v1/scripts/nope", &admin, None).await).await;
        assert_eq!(status, 404);
        let (status, body) = put(&app, &admin, "n1", json!({"source": "1", "description": "one"})).await;
        assert_eq!((status, body["version"].clone()), (201, json!(1)), "{body}");
        let (status, body) = put(&app, &admin, "n1", json!({"source": "2"})).await;
        assert_eq!((status, body["version"].clone()), (200, json!(2)), "{body}");
        for (body, field) in [
            (json!({"source": "let = ;"}), "source"),
            (json!({"source": "1", "method": "PATCH"}), "method"),
            (json!({"source": "1", "scope": "nope"}), "scope"),
            (json!({"source": "1", "writes": true}), "writes"),
            (json!({"source": "1", "extra": 1}), "extra"),
            (json!({}), "source"),
        ] {
            let (status, problem) = put(&app, &admin, "n2", body.clone()).await;
            assert_eq!(status, 400, "{body}: {problem}");
            assert!(s(&problem["detail"]).contains(field), "{body}: {problem}");
        }
        let (_, problem) = put(&app, &admin, "n2", json!({"source": "1 +"})).await;
        assert!(s(&problem["detail"]).contains("line 1"), "{problem}");
        let (status, _) = put(&app, &admin, "bad%20name", json!({"source": "1"})).await;
        assert_eq!(status, 400);
        let (status, _) = put(&app, &admin, "getdata", json!({"source": "1"})).await;
        assert_eq!(status, 400);
        let (status, _) = json_of(call(&app, Method::DELETE, "/admin/v1/scripts/n1", &admin, None).await).await;
        assert_eq!(status, 204);
        let (status, _) = json_of(call(&app, Method::DELETE, "/admin/v1/scripts/n1", &admin, None).await).await;
        assert_eq!(status, 404);
        // Not an admin token: 403; none: 401.
        let view = view_token(&app).await;
        assert_eq!(call(&app, Method::GET, "/admin/v1/scripts", &view, None).await.status(), 403);
        let r = app.client.get(app.url("/admin/v1/scripts")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        // Every change is in the audit trail with the acting client.
        let (_, audit) = json_of(call(&app, Method::GET, "/admin/v1/audit?limit=100", &admin, None).await).await;
        let events: Vec<String> = audit["items"].as_array().unwrap().iter().map(|i| s(&i["event"])).collect();
        for e in ["script.add", "script.replace", "script.remove"] {
            assert!(events.iter().any(|x| x == e), "{e}: {events:?}");
        }
    }
}

pub(crate) fn source_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    f
}
