//! Script URL handlers (API.md §11) on both engines: the demo handlers, the scope and
//! method rules, every limit a hostile script hits (in bounded time, other requests
//! still served), the one transaction of a `--writes` handler, the namespace shared
//! with GetData queries, the compiled-script cache, `tollgate script …` and the admin
//! API's rows.
use crate::helpers::*;
use crate::on_both_engines;
use reqwest::{Method, Response};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CUSTOM: &str = "/api/v1/custom";
/// A recursive CTE that never ends on its own (GetData's time limit stops it).
const FOREVER: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT max(x) AS n FROM c";

async fn token(app: &TestApp, user: &str, secret: &str, scope: Option<&str>) -> String {
    s(&app.grant_ok(user, secret, scope).await["access_token"])
}

async fn view_token(app: &TestApp) -> String {
    token(app, "viewer", "viewer-secret", None).await
}

async fn all_token(app: &TestApp) -> String {
    token(app, "demo", "demo-secret", Some("all")).await
}

async fn admin_token(app: &TestApp) -> String {
    token(app, "ops", "ops-secret", None).await
}

async fn call(
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

async fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Publishes `source` through the admin API; the status.
async fn put(app: &TestApp, admin: &str, name: &str, body: Value) -> (u16, Value) {
    let path = format!("/admin/v1/scripts/{name}");
    json_of(call(app, Method::PUT, &path, admin, Some(body)).await).await
}

async fn publish(app: &TestApp, name: &str, source: &str) {
    let admin = admin_token(app).await;
    let (status, body) = put(app, &admin, name, json!({ "source": source })).await;
    assert!(status == 201 || status == 200, "{status} {body}");
}

async fn stock(app: &TestApp, sku: &str) -> i64 {
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

    async fn every_limit_answers_in_bounded_time(app) {
        let cases = [
            ("spin", "loop {}".to_owned(), 503),
            ("slow-query", format!("query(\"{FOREVER}\")"), 503),
            ("long-string", "let s = \"x\"; loop { s += s; }".to_owned(), 500),
            ("deep", "fn f(n) { f(n + 1) } f(0)".to_owned(), 500),
            ("wide", "let a = [1]; loop { a += a; }".to_owned(), 500),
            ("bad-status", "response(99, 1)".to_owned(), 500),
        ];
        for (name, source, _) in &cases {
            publish(&app, name, source).await;
        }
        let view = view_token(&app).await;
        // While the slowest runs, other requests are answered at once.
        let slow = {
            let (client, url, t) = (app.client.clone(), app.url(&format!("{CUSTOM}/slow-query")), view.clone());
            tokio::spawn(async move { client.get(url).bearer_auth(t).send().await.unwrap().status() })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        assert_eq!(app.me(&view).await.status(), 200);
        assert_eq!(app.get_with(&format!("{CUSTOM}/price-list"), &view).await.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(slow.await.unwrap(), 503);
        for (name, _, want) in &cases {
            let started = Instant::now();
            let r = app.get_with(&format!("{CUSTOM}/{name}"), &view).await;
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").is_some();
            let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
            let body: Value = r.json().await.unwrap();
            assert_eq!(status, *want, "{name}: {body}");
            assert!(started.elapsed() < Duration::from_secs(5), "{name}: {:?}", started.elapsed());
            assert_eq!(ctype, "application/problem+json", "{name}");
            assert!(s(&body["detail"]).contains(name), "{name}: {body}");
            assert_eq!(retry, *want == 503, "{name}");
            if *want == 500 {
                assert!(s(&body["detail"]).contains("line 1"), "{name}: {body}");
            }
        }
        // The server is still whole.
        assert_eq!(app.get_with(&format!("{CUSTOM}/price-list"), &view).await.status(), 200);
    }

    async fn a_failing_script_names_itself_and_its_line(app) {
        publish(&app, "oops", "let a = 1;\nlet b = a.no_such_method();\nb").await;
        let view = view_token(&app).await;
        let (status, body) = json_of(app.get_with(&format!("{CUSTOM}/oops"), &view).await).await;
        assert_eq!(status, 500);
        let detail = s(&body["detail"]);
        assert!(detail.contains("script oops failed at line 2"), "{detail}");
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

fn source_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    f
}
