//! Script URL handlers (API.md §11), continued: every limit a hostile script hits
//! answers in bounded time with the documented status while other requests are
//! served, a failure names the handler and its line, and on PostgreSQL a change
//! made through one instance is what another runs at its next request.
use crate::helpers::*;
use crate::on_both_engines;
use crate::scripts::{admin_token, call, json_of, publish, put, view_token, CUSTOM};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tollgate::clock::ManualClock;

/// A recursive CTE that never ends on its own (GetData's time limit stops it).
const FOREVER: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT max(x) AS n FROM c";

on_both_engines! {
    async fn every_limit_answers_in_bounded_time(app) {
        let cases = [
            ("spin", "loop {}".to_owned(), 503),
            ("slow-query", format!("query(\"{FOREVER}\")"), 503),
            ("long-string", "let s = \"x\"; loop { s += s; }".to_owned(), 500),
            ("deep", "fn f(n) { f(n + 1) } f(0)".to_owned(), 500),
            ("wide", "let a = [1]; loop { a += a; }".to_owned(), 500),
            // Cheap in operations, dear in time: the time limit stops it.
            ("slow-rhai", "let s = \"y\"; s.pad(500000, \"y\"); loop { let t = s + \"z\"; }".to_owned(), 503),
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

}

#[tokio::test]
async fn a_change_through_one_instance_runs_at_another() {
    let Some(db) = PgDb::demo(module_path!()) else {
        return;
    };
    let db = Arc::new(db);
    let a = spawn_on_postgres(&db, ManualClock::new(START), |_| {}).await;
    let b = spawn_on_postgres(&db, ManualClock::new(START), |_| {}).await;
    let view = view_token(&b).await;
    let url = format!("{CUSTOM}/ver");
    for text in ["one", "two"] {
        publish(&a, "ver", &format!("\"{text}\"")).await;
        let got: Value = b.get_with(&url, &view).await.json().await.unwrap();
        assert_eq!(got, json!(text));
    }
    let admin = admin_token(&a).await;
    let r = call(&a, Method::DELETE, "/admin/v1/scripts/ver", &admin, None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(b.get_with(&url, &view).await.status(), 404);
    let (status, _) = put(&a, &admin, "low-stock", json!({"source": "1"})).await;
    assert_eq!(status, 409);
}
