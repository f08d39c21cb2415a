//! GetData (API.md §7): queries an administrator publishes with `tollgate query`
//! and clients read over `/api/v1/custom/getdata?queryname=…` and `/api/v1/custom/{name}`;
//! Jim2's response shape and paging, every error row, the Bearer rules of §4, the sandbox's
//! refusals (at `query add` and at run time), the time limit and `--data-db`.
use crate::helpers::*;
use reqwest::Response;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const GETDATA: &str = "/api/v1/custom/getdata";
const PLAIN_CHALLENGE: &str = "Bearer realm=\"tollgate\"";
const INVALID_TOKEN_PREFIX: &str = "Bearer realm=\"tollgate\", error=\"invalid_token\"";
const INVALID_REQUEST: &str = "Bearer realm=\"tollgate\", error=\"invalid_request\"";
/// A recursive CTE that never ends on its own.
const FOREVER: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT max(x) FROM c";
/// The demo queries' SQL (src/store/demo.rs), run directly as the oracle.
const LOW_STOCK_SQL: &str =
    "SELECT sku, name, stock FROM products WHERE stock < ?1 ORDER BY stock, sku";
const BY_PREFIX_SQL: &str =
    "SELECT sku, name, price_cents FROM products WHERE name LIKE ?1 || '%' ORDER BY name, sku";

/// `tollgate query add NAME --sql SQL` plus any extra flags; must succeed.
fn publish(app: &TestApp, name: &str, sql: &str, extra: &[&str]) {
    let mut args = vec!["query", "add", name, "--sql", sql];
    args.extend_from_slice(extra);
    ok(app, &args);
}

fn query_names(app: &TestApp) -> Vec<String> {
    cli_json(app, &["query", "list", "--json"])
        .as_array()
        .expect("query list --json is an array")
        .iter()
        .map(|q| s(&q["name"]))
        .collect()
}

// ---- tokens and requests ----

/// viewer's grant: `view` only.
async fn view_token(app: &TestApp) -> String {
    s(&app.grant_ok("viewer", "viewer-secret", None).await["access_token"])
}

/// demo's grant narrowed to `all` (no `view`): must pass any query.
async fn all_token(app: &TestApp) -> String {
    let t = app.grant_ok("demo", "demo-secret", Some("all")).await;
    assert_eq!(t["scope"], "all");
    s(&t["access_token"])
}

/// Percent-encodes a query-string value.
fn enc(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The same call on both routes: `getdata?queryname=NAME&…` and its alias `NAME?…`.
fn both_routes(name: &str, query: &str) -> [String; 2] {
    let (sep, q) = if query.is_empty() {
        ("", String::new())
    } else {
        ("&", format!("?{query}"))
    };
    [
        format!("{GETDATA}?queryname={}{sep}{query}", enc(name)),
        format!("/api/v1/custom/{name}{q}"),
    ]
}

async fn send(app: &TestApp, path: &str, authorization: Option<&str>) -> Response {
    let mut rb = app.client.get(app.url(path));
    if let Some(a) = authorization {
        rb = rb.header("Authorization", a);
    }
    rb.send().await.expect("request")
}

/// A 200 GetData answer in Jim2's shape; returns the document.
async fn answer(app: &TestApp, path: &str, token: &str) -> Value {
    let r = app.get_with(path, token).await;
    let status = r.status();
    let ct = header(&r, "content-type");
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    assert!(
        ct.starts_with("application/json"),
        "{path}: content-type {ct}"
    );
    let doc: Value = serde_json::from_str(&text).expect("JSON body");
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "{path}: exactly resultSets, pageno, pagesize: {doc}"
    );
    assert!(doc["pageno"].is_u64() && doc["pagesize"].is_u64(), "{doc}");
    let sets = doc["resultSets"].as_array().expect("resultSets array");
    assert_eq!(sets.len(), 1, "{doc}");
    let width = sets[0]["columns"].as_array().expect("columns").len();
    for row in sets[0]["rows"].as_array().expect("rows") {
        assert_eq!(row.as_array().expect("a row is an array").len(), width);
    }
    doc
}

fn columns(doc: &Value) -> Value {
    doc["resultSets"][0]["columns"].clone()
}

fn rows(doc: &Value) -> Vec<Value> {
    doc["resultSets"][0]["rows"].as_array().unwrap().clone()
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts an RFC 9457 problem response; returns its body.
async fn assert_problem(r: Response, status: u16) -> Value {
    let got = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("problem body is JSON");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
    body
}

/// Asserts a 400 problem whose `detail` names `param`.
async fn assert_names(r: Response, param: &str, path: &str) {
    let body = assert_problem(r, 400).await;
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains(param),
        "{path}: detail {detail:?} should name {param}"
    );
}

// ---- the database, read directly ----

/// The rows `sql` gives on the server's database with plain SQLite, as JSON.
fn oracle(app: &TestApp, sql: &str, params: &[&str]) -> Vec<Value> {
    let c = app.db();
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    st.query_map(rusqlite::params_from_iter(params.iter()), |r| {
        Ok(Value::Array(
            (0..n)
                .map(|i| match r.get_ref_unwrap(i) {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(i) => json!(i),
                    rusqlite::types::ValueRef::Real(f) => json!(f),
                    rusqlite::types::ValueRef::Text(t) => json!(String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Blob(_) => panic!("no blobs here"),
                })
                .collect(),
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// [`oracle`] on either engine: on PostgreSQL straight from the app's database,
/// with the parameters as quoted literals.
async fn oracle_on(app: &TestApp, sql: &str, params: &[&str]) -> Vec<Value> {
    use tokio_postgres::types::Type;
    let Some(pg) = &app.pg else {
        return oracle(app, sql, params);
    };
    let mut sql = sql.to_owned();
    for (i, p) in params.iter().enumerate().rev() {
        sql = sql.replace(
            &format!("?{}", i + 1),
            &format!("'{}'", p.replace('\'', "''")),
        );
    }
    let (c, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let rows = c.query(sql.as_str(), &[]).await.unwrap();
    drop(c);
    let _ = conn.await;
    rows.iter()
        .map(|r| {
            Value::Array(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| match *col.type_() {
                        Type::INT8 => json!(r.get::<_, Option<i64>>(i)),
                        Type::INT4 => json!(r.get::<_, Option<i32>>(i)),
                        Type::TEXT => json!(r.get::<_, Option<String>>(i)),
                        ref t => panic!("the oracle reads no {t} here"),
                    })
                    .collect(),
            )
        })
        .collect()
}

/// Every row of `table`, each as text, sorted.
fn dump(app: &TestApp, table: &str) -> Vec<String> {
    let c = app.db();
    let mut st = c.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let n = st.column_count();
    let mut rows: Vec<String> = st
        .query_map([], |r| {
            Ok((0..n)
                .map(|i| format!("{:?}", r.get_ref_unwrap(i)))
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

/// tollgate's own tables and the catalogue, row by row.
fn snapshot(app: &TestApp) -> Vec<(&'static str, Vec<String>)> {
    [
        "USERS",
        "user_scopes",
        "scopes",
        "licence",
        "sessions",
        "access_tokens",
        "refresh_tokens",
        "products",
        "queries",
    ]
    .into_iter()
    .map(|t| (t, dump(app, t)))
    .collect()
}

/// Each `(sql, reason words)` is refused by `query add` with a non-zero exit and a
/// reason on stderr naming one of the words; nothing is saved and no table changes.
async fn assert_refused_at_add(app: &TestApp, cases: &[(&str, &[&str])]) {
    // A live session and tokens, so the token tables have rows to protect.
    all_token(app).await;
    let before = snapshot(app);
    let listed = cli_json(app, &["query", "list", "--json"]);
    for (i, (sql, words)) in cases.iter().enumerate() {
        let name = format!("forbidden-{i}");
        let err = fails(app, &["query", "add", &name, "--sql", sql]);
        let lower = err.to_lowercase();
        assert!(
            words.iter().any(|w| lower.contains(&w.to_lowercase())),
            "{sql}: the reason should mention one of {words:?}; stderr: {err}"
        );
        assert!(!err.contains("pbkdf2"), "{sql}: {err}");
    }
    assert_eq!(
        cli_json(app, &["query", "list", "--json"]),
        listed,
        "a refused query must not be saved"
    );
    assert_eq!(snapshot(app), before, "the database changed");
}

// ---- the demo queries, shape and paging ----

#[tokio::test]
async fn low_stock_answers_jims_shape_with_declared_column_types_on_both_routes() {
    let app = spawn_app().await;
    let t = view_token(&app).await;
    let expected = oracle(&app, LOW_STOCK_SQL, &["5"]);
    assert_eq!(
        expected.first(),
        Some(&json!(["WD-LUBE-400", "Penetrating lubricant 400 ml", 0])),
        "demo data"
    );
    let mut docs = Vec::new();
    for path in both_routes("low-stock", "qp1=5") {
        let doc = answer(&app, &path, &t).await;
        assert_eq!(
            columns(&doc),
            json!([
                {"Name": "sku", "Type": "TEXT"},
                {"Name": "name", "Type": "TEXT"},
                {"Name": "stock", "Type": "INTEGER"}
            ]),
            "{path}"
        );
        assert_eq!(rows(&doc), expected, "{path}");
        assert!(rows(&doc).iter().all(|r| r[2].as_i64().unwrap() < 5));
        assert_eq!(doc["pageno"], 1, "{path}");
        assert_eq!(doc["pagesize"], 50, "{path}");
        docs.push(doc);
    }
    assert_eq!(docs[0], docs[1], "both routes answer the same document");
}

#[tokio::test]
async fn products_by_prefix_matches_case_insensitively_and_binds_parameters_as_values() {
    let app = spawn_app().await;
    let t = view_token(&app).await;
    let expected = oracle(&app, BY_PREFIX_SQL, &["Hex"]);
    assert_eq!(
        expected.len(),
        6,
        "demo data: three hex bolts, three hex nuts"
    );
    for prefix in ["Hex", "hex", "HEX"] {
        for path in both_routes("products-by-prefix", &format!("qp1={prefix}")) {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(
                columns(&doc),
                json!([
                    {"Name": "sku", "Type": "TEXT"},
                    {"Name": "name", "Type": "TEXT"},
                    {"Name": "price_cents", "Type": "INTEGER"}
                ]),
                "{path}"
            );
            assert_eq!(rows(&doc), expected, "{path}");
        }
    }
    // A parameter is a value, never SQL.
    for hostile in [
        "' OR 1=1 --",
        "x' UNION SELECT NICKNAME, \"PASSWORD\", 0 FROM USERS --",
    ] {
        for path in both_routes("products-by-prefix", &format!("qp1={}", enc(hostile))) {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(rows(&doc), Vec::<Value>::new(), "{path}");
        }
    }
}

crate::on_both_engines! {
    async fn paging_defaults_to_page_one_of_fifty(app) {
        let t = view_token(&app).await;
        let all = oracle_on(&app, LOW_STOCK_SQL, &["1000000"]).await;
        assert!(all.len() > 4, "demo data has a few dozen products");
        for path in both_routes("low-stock", "qp1=1000000") {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(
                (doc["pageno"].clone(), doc["pagesize"].clone()),
                (json!(1), json!(50))
            );
            assert_eq!(rows(&doc), all.iter().take(50).cloned().collect::<Vec<_>>());
        }
        // pagesize alone keeps pageno 1; pageno alone keeps pagesize 50.
        for path in both_routes("low-stock", "qp1=1000000&pagesize=3") {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(
                (doc["pageno"].clone(), doc["pagesize"].clone()),
                (json!(1), json!(3))
            );
            assert_eq!(rows(&doc), all[..3].to_vec(), "{path}");
        }
        for path in both_routes("low-stock", "qp1=1000000&pageno=1") {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(doc["pagesize"], 50, "{path}");
        }
    }
}

crate::on_both_engines! {
    async fn each_page_continues_where_the_previous_one_stopped(app) {
        let t = view_token(&app).await;
        let all = oracle_on(&app, LOW_STOCK_SQL, &["1000"]).await;
        assert!(all.len() > 8, "demo data");
        for route in 0..2 {
            let mut collected = Vec::new();
            let mut pageno = 1;
            loop {
                let path = both_routes("low-stock", &format!("qp1=1000&pagesize=4&pageno={pageno}"))
                    [route]
                    .clone();
                let doc = answer(&app, &path, &t).await;
                assert_eq!(doc["pageno"], pageno, "{path}");
                assert_eq!(doc["pagesize"], 4, "{path}");
                let page = rows(&doc);
                assert!(page.len() <= 4, "{path}");
                if page.is_empty() {
                    break;
                }
                collected.extend(page);
                pageno += 1;
                assert!(pageno < 100, "paging never ends");
            }
            assert_eq!(
                collected, all,
                "route {route}: the pages together are the whole answer"
            );
        }
        // products-by-prefix Hex: 6 rows as 4 + 2 + nothing.
        for route in 0..2 {
            let page = |n: u32| {
                both_routes(
                    "products-by-prefix",
                    &format!("qp1=Hex&pagesize=4&pageno={n}"),
                )[route]
                    .clone()
            };
            let expected = oracle_on(&app, BY_PREFIX_SQL, &["Hex"]).await;
            assert_eq!(
                rows(&answer(&app, &page(1), &t).await),
                expected[..4].to_vec()
            );
            assert_eq!(
                rows(&answer(&app, &page(2), &t).await),
                expected[4..].to_vec()
            );
            let past = answer(&app, &page(3), &t).await;
            assert_eq!(rows(&past), Vec::<Value>::new());
            assert_eq!(
                columns(&past).as_array().unwrap().len(),
                3,
                "columns even with no rows"
            );
            assert_eq!(past["pageno"], 3);
        }
    }
}

crate::on_both_engines! {
    async fn a_page_far_past_the_end_has_no_rows(app) {
        let t = view_token(&app).await;
        for path in both_routes("low-stock", "qp1=5&pageno=1000&pagesize=500") {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(rows(&doc), Vec::<Value>::new(), "{path}");
            assert_eq!(
                (doc["pageno"].clone(), doc["pagesize"].clone()),
                (json!(1000), json!(500))
            );
        }
    }
}

crate::on_both_engines! {
    async fn pagesize_takes_one_to_five_hundred(app) {
        let t = view_token(&app).await;
        let all = oracle_on(&app, LOW_STOCK_SQL, &["1000000"]).await;
        for path in both_routes("low-stock", "qp1=1000000&pagesize=1&pageno=2") {
            assert_eq!(
                rows(&answer(&app, &path, &t).await),
                vec![all[1].clone()],
                "{path}"
            );
        }
        for path in both_routes("low-stock", "qp1=1000000&pagesize=500") {
            let doc = answer(&app, &path, &t).await;
            assert_eq!(doc["pagesize"], 500);
            assert_eq!(rows(&doc), all, "{path}");
        }
    }
}

#[tokio::test]
async fn an_expression_column_has_an_empty_type() {
    let app = spawn_app().await;
    publish(
        &app,
        "stock-value",
        "SELECT sku, price_cents * stock AS value, upper(name), 'each' AS unit, stock \
         FROM products WHERE stock >= ?1 ORDER BY sku",
        &["--description", "Stock value per product"],
    );
    let t = view_token(&app).await;
    for path in both_routes("stock-value", "qp1=1&pagesize=2") {
        let doc = answer(&app, &path, &t).await;
        let cols = columns(&doc);
        assert_eq!(
            cols,
            json!([
                {"Name": "sku", "Type": "TEXT"},
                {"Name": "value", "Type": ""},
                {"Name": "upper(name)", "Type": ""},
                {"Name": "unit", "Type": ""},
                {"Name": "stock", "Type": "INTEGER"}
            ]),
            "{path}"
        );
        let first = &rows(&doc)[0];
        assert!(
            first[1].is_i64() && first[2].is_string() && first[3] == "each",
            "{first}"
        );
    }
}

// ---- every error row of §7 ----

crate::on_both_engines! {
    async fn an_unknown_query_is_404_problem_on_both_routes(app) {
        let t = view_token(&app).await;
        for path in both_routes("no-such-query", "qp1=5")
            .into_iter()
            .chain(both_routes("no-such-query", ""))
        {
            let body = assert_problem(app.get_with(&path, &t).await, 404).await;
            assert!(body["detail"].is_string(), "{path}: {body}");
        }
    }
}

crate::on_both_engines! {
    async fn a_missing_parameter_is_400_naming_it(app) {
        let t = view_token(&app).await;
        for (name, query) in [
            ("low-stock", ""),
            ("low-stock", "pagesize=5"),
            ("products-by-prefix", ""),
        ] {
            for path in both_routes(name, query) {
                assert_names(app.get_with(&path, &t).await, "qp1", &path).await;
            }
        }
        publish(
            &app,
            "two-params",
            "SELECT sku FROM products WHERE stock BETWEEN ?1 AND ?2",
            &[],
        );
        for path in both_routes("two-params", "qp1=1") {
            assert_names(app.get_with(&path, &t).await, "qp2", &path).await;
        }
        for path in both_routes("two-params", "qp2=9") {
            assert_names(app.get_with(&path, &t).await, "qp1", &path).await;
        }
        for path in both_routes("two-params", "qp1=1&qp2=100") {
            answer(&app, &path, &t).await;
        }
    }
}

crate::on_both_engines! {
    async fn an_extra_parameter_is_400_naming_it(app) {
        let t = view_token(&app).await;
        for path in both_routes("low-stock", "qp1=5&qp2=1") {
            assert_names(app.get_with(&path, &t).await, "qp2", &path).await;
        }
        for path in both_routes("products-by-prefix", "qp1=Hex&qp9=1") {
            assert_names(app.get_with(&path, &t).await, "qp9", &path).await;
        }
        publish(&app, "no-params", "SELECT count(*) AS n FROM products", &[]);
        for path in both_routes("no-params", "qp1=1") {
            assert_names(app.get_with(&path, &t).await, "qp1", &path).await;
        }
        for path in both_routes("no-params", "") {
            answer(&app, &path, &t).await;
        }
    }
}

crate::on_both_engines! {
    async fn qp10_is_400_naming_it(app) {
        let t = view_token(&app).await;
        for path in both_routes("low-stock", "qp1=5&qp10=1") {
            assert_names(app.get_with(&path, &t).await, "qp10", &path).await;
        }
    }
}

crate::on_both_engines! {
    async fn a_bad_pagesize_is_400_naming_it(app) {
        let t = view_token(&app).await;
        for bad in ["0", "501", "abc", "-1", "1.5", ""] {
            for path in both_routes("low-stock", &format!("qp1=5&pagesize={bad}")) {
                assert_names(app.get_with(&path, &t).await, "pagesize", &path).await;
            }
        }
    }
}

crate::on_both_engines! {
    async fn a_bad_pageno_is_400_naming_it(app) {
        let t = view_token(&app).await;
        for bad in ["0", "abc", "-1", "1.5", ""] {
            for path in both_routes("low-stock", &format!("qp1=5&pageno={bad}")) {
                assert_names(app.get_with(&path, &t).await, "pageno", &path).await;
            }
        }
    }
}

crate::on_both_engines! {
    async fn the_getdata_route_without_queryname_is_400_naming_it(app) {
        let t = view_token(&app).await;
        for path in [
            GETDATA.to_owned(),
            format!("{GETDATA}?qp1=5"),
            format!("{GETDATA}?pageno=1&pagesize=10"),
        ] {
            assert_names(app.get_with(&path, &t).await, "queryname", &path).await;
        }
    }
}

crate::on_both_engines! {
    async fn a_query_needing_all_is_403_for_a_view_token_and_names_its_scope(app) {
        publish(
            &app,
            "prices",
            "SELECT sku, price_cents FROM products ORDER BY sku",
            &["--scope", "all", "--description", "Full price list"],
        );
        let challenge = "Bearer realm=\"tollgate\", error=\"insufficient_scope\", scope=\"all\"";
        let viewer = view_token(&app).await;
        let demo_view = s(&app.grant_ok("demo", "demo-secret", Some("view")).await["access_token"]);
        for t in [&viewer, &demo_view] {
            for path in both_routes("prices", "") {
                let r = app.get_with(&path, t).await;
                assert_eq!(r.status(), 403, "{path}");
                assert_eq!(header(&r, "www-authenticate"), challenge, "{path}");
            }
        }
        let all = all_token(&app).await;
        for path in both_routes("prices", "pagesize=2") {
            assert_eq!(rows(&answer(&app, &path, &all).await).len(), 2);
        }
    }
}

crate::on_both_engines! {
    async fn a_token_holding_all_passes_any_query(app) {
        ok(
            &app,
            &["scope", "add", "reports", "--description", "Reports"],
        );
        publish(
            &app,
            "report",
            "SELECT count(*) AS n, sum(stock) AS units FROM products",
            &["--scope", "reports"],
        );
        let viewer = view_token(&app).await;
        for path in both_routes("report", "") {
            let r = app.get_with(&path, &viewer).await;
            assert_eq!(r.status(), 403, "{path}");
            assert_eq!(
                header(&r, "www-authenticate"),
                "Bearer realm=\"tollgate\", error=\"insufficient_scope\", scope=\"reports\"",
                "{path}"
            );
        }
        let all = all_token(&app).await;
        for (name, query) in [
            ("report", ""),
            ("low-stock", "qp1=5"),
            ("products-by-prefix", "qp1=Hex"),
        ] {
            for path in both_routes(name, query) {
                answer(&app, &path, &all).await;
            }
        }
    }
}

#[tokio::test]
async fn a_query_past_the_time_limit_is_interrupted_with_503_and_retry_after() {
    let app = spawn_app_with(|s| s.query_time_limit = Duration::from_millis(200)).await;
    publish(&app, "forever", FOREVER, &[]);
    let t = view_token(&app).await;
    for path in both_routes("forever", "") {
        let started = Instant::now();
        let r = app.get_with(&path, &t).await;
        let took = started.elapsed();
        assert_eq!(r.status(), 503, "{path}");
        let retry = header(&r, "retry-after");
        assert!(retry.parse::<u64>().is_ok(), "Retry-After {retry:?}");
        let body = assert_problem(r, 503).await;
        assert!(body["detail"].is_string(), "{body}");
        assert!(
            took < Duration::from_secs(10),
            "{path}: answered after {took:?}"
        );
    }
    // The server and its query connections are fine afterwards.
    for path in both_routes("low-stock", "qp1=5") {
        answer(&app, &path, &t).await;
    }
}

// ---- Bearer rules of §4 on these routes ----

crate::on_both_engines! {
    async fn getdata_without_a_token_is_401_with_a_plain_challenge(app) {
        let t = view_token(&app).await;
        let paths = both_routes("low-stock", "qp1=5")
            .into_iter()
            .chain(both_routes("no-such-query", ""))
            // A token in the query string is ignored: still no token.
            .chain(both_routes("low-stock", &format!("qp1=5&access_token={t}")))
            .chain([GETDATA.to_owned()]);
        for path in paths {
            let r = send(&app, &path, None).await;
            assert_eq!(r.status(), 401, "{path}");
            assert_eq!(header(&r, "www-authenticate"), PLAIN_CHALLENGE, "{path}");
        }
    }
}

crate::on_both_engines! {
    async fn getdata_with_an_unknown_or_expired_token_is_401_invalid_token(app) {
        let t = view_token(&app).await;
        for path in both_routes("low-stock", "qp1=5") {
            let r = app.get_with(&path, "not-a-real-token").await;
            assert_eq!(r.status(), 401, "{path}");
            let h = header(&r, "www-authenticate");
            assert!(h.starts_with(INVALID_TOKEN_PREFIX), "{path}: {h}");
        }
        app.clock.advance(app.settings.access_ttl + 1);
        for path in both_routes("low-stock", "qp1=5") {
            let r = app.get_with(&path, &t).await;
            assert_eq!(r.status(), 401, "{path}: expired token");
            let h = header(&r, "www-authenticate");
            assert!(h.starts_with(INVALID_TOKEN_PREFIX), "{path}: {h}");
        }
    }
}

crate::on_both_engines! {
    async fn getdata_with_a_malformed_authorization_header_is_400_invalid_request(app) {
        let t = view_token(&app).await;
        for auth in [
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {t} extra"),
            "Bearer a,b".to_owned(),
        ] {
            for path in both_routes("low-stock", "qp1=5") {
                let r = send(&app, &path, Some(&auth)).await;
                assert_eq!(r.status(), 400, "{path} with {auth:?}");
                assert_eq!(header(&r, "www-authenticate"), INVALID_REQUEST, "{path}");
            }
        }
        // The scheme name is case-insensitive.
        for path in both_routes("low-stock", "qp1=5") {
            let r = send(&app, &path, Some(&format!("bEaReR {t}"))).await;
            assert_eq!(r.status(), 200, "{path}");
        }
    }
}

// ---- refused at `query add` ----

#[tokio::test]
async fn reading_tollgates_own_tables_is_refused_at_add() {
    let app = spawn_app().await;
    assert_refused_at_add(
        &app,
        &[
            (
                "SELECT NICKNAME, \"PASSWORD\" FROM USERS WHERE APIUSER = 1",
                &["USERS"],
            ),
            ("select nickname from users", &["users"]),
            ("SELECT * FROM main.USERS", &["USERS"]),
            ("SELECT count(*) FROM USERS", &["USERS"]),
            ("SELECT * FROM access_tokens", &["access_tokens"]),
            (
                "SELECT hash, session_id FROM refresh_tokens",
                &["refresh_tokens"],
            ),
            ("SELECT * FROM sessions", &["sessions"]),
            ("SELECT count(*) FROM sessions", &["sessions"]),
            ("SELECT * FROM audit", &["audit"]),
            ("SELECT name, sql FROM queries", &["queries"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn reading_users_through_a_subquery_a_cte_or_a_union_is_refused_at_add() {
    let app = spawn_app().await;
    assert_refused_at_add(
        &app,
        &[
            (
                "SELECT sku FROM products WHERE sku IN (SELECT NICKNAME FROM USERS)",
                &["USERS"],
            ),
            (
                "SELECT sku, (SELECT \"PASSWORD\" FROM USERS LIMIT 1) AS p FROM products",
                &["USERS"],
            ),
            (
                "SELECT sku FROM products WHERE EXISTS \
                 (SELECT 1 FROM USERS WHERE \"PASSWORD\" LIKE '$pbkdf2%')",
                &["USERS"],
            ),
            (
                "WITH u AS (SELECT NICKNAME, \"PASSWORD\" FROM USERS) SELECT * FROM u",
                &["USERS"],
            ),
            (
                "WITH RECURSIVE u(n) AS (SELECT NICKNAME FROM USERS UNION SELECT n FROM u) \
                 SELECT n FROM u",
                &["USERS"],
            ),
            (
                "SELECT sku, name FROM products UNION SELECT NICKNAME, \"PASSWORD\" FROM USERS",
                &["USERS"],
            ),
            (
                "SELECT sku, name FROM products UNION ALL \
                 SELECT * FROM (SELECT NICKNAME, \"PASSWORD\" FROM USERS)",
                &["USERS"],
            ),
            (
                "SELECT p.sku, u.NICKNAME FROM products p JOIN USERS u ON 1 = 1",
                &["USERS"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn writes_are_refused_at_add_even_to_readable_tables() {
    let app = spawn_app().await;
    let write: &[&str] = &[
        "read-only",
        "insert",
        "update",
        "delete",
        "write",
        "readonly",
    ];
    assert_refused_at_add(
        &app,
        &[
            (
                "INSERT INTO products (sku, name, price_cents, stock, updated_at) \
                 VALUES ('X', 'x', 1, 1, 0)",
                write,
            ),
            ("UPDATE products SET stock = 0", write),
            ("UPDATE products SET stock = 0 RETURNING sku", write),
            ("DELETE FROM products", write),
            ("DELETE FROM products RETURNING sku", write),
            ("UPDATE USERS SET \"PASSWORD\" = ''", &["read-only", "update", "USERS"]),
            ("DELETE FROM sessions", &["read-only", "delete", "sessions"]),
            (
                "INSERT INTO queries (name, sql, scope, created_at) VALUES ('q', 'SELECT 1', 'view', 0)",
                &["read-only", "insert", "queries"],
            ),
            ("DROP TABLE products", &["read-only", "drop", "products"]),
            ("CREATE TABLE t (x)", &["read-only", "create"]),
            (
                "REPLACE INTO products SELECT * FROM products",
                &["read-only", "insert", "products"],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn attach_pragma_and_load_extension_are_refused_at_add() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
    assert_refused_at_add(
        &app,
        &[
            (&attach, &["ATTACH"]),
            ("DETACH DATABASE main", &["DETACH", "read-only"]),
            ("PRAGMA table_info(USERS)", &["PRAGMA", "table_info"]),
            (
                "PRAGMA writable_schema = ON",
                &["PRAGMA", "writable_schema"],
            ),
            ("PRAGMA query_only = OFF", &["PRAGMA", "query_only"]),
            (
                "SELECT name FROM pragma_table_info('USERS')",
                &["PRAGMA", "pragma_table_info"],
            ),
            ("SELECT load_extension('/tmp/nope.so')", &["load_extension"]),
            (
                "SELECT sku FROM products WHERE load_extension('/tmp/nope.so', 'init') IS NULL",
                &["load_extension"],
            ),
        ],
    )
    .await;
    assert!(!other.exists(), "ATTACH created {}", other.display());
}

#[tokio::test]
async fn named_parameters_and_several_statements_are_refused_at_add() {
    let app = spawn_app().await;
    assert_refused_at_add(
        &app,
        &[
            (
                "SELECT sku FROM products WHERE stock < :x",
                &["positional", "?1", "parameter"],
            ),
            (
                "SELECT sku FROM products WHERE stock < @x",
                &["positional", "?1", "parameter"],
            ),
            (
                "SELECT sku FROM products WHERE stock < $x",
                &["positional", "?1", "parameter"],
            ),
            ("SELECT 1; SELECT 2", &["statement"]),
            (
                "SELECT sku FROM products; DELETE FROM products",
                &["statement", "read-only"],
            ),
            ("SELEC sku FROM products", &["syntax", "prepare"]),
            ("SELECT nothing FROM no_such_table", &["no_such_table"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_query_saved_directly_that_reads_users_is_refused_at_run_time() {
    let app = spawn_app().await;
    let sneaky = [
        ("sneaky-plain", "SELECT NICKNAME, \"PASSWORD\" FROM USERS"),
        (
            "sneaky-cte",
            "WITH u AS (SELECT NICKNAME, \"PASSWORD\" FROM USERS) SELECT * FROM u",
        ),
        (
            "sneaky-union",
            "SELECT sku, name FROM products UNION SELECT NICKNAME, \"PASSWORD\" FROM USERS",
        ),
        (
            "sneaky-subquery",
            "SELECT sku, (SELECT \"PASSWORD\" FROM USERS LIMIT 1) FROM products",
        ),
        (
            "sneaky-tokens",
            "SELECT hex(hash), scope FROM access_tokens",
        ),
        ("sneaky-delete", "DELETE FROM products RETURNING sku, name"),
        (
            "sneaky-update",
            "UPDATE USERS SET \"PASSWORD\" = 'x' RETURNING NICKNAME",
        ),
    ];
    {
        let c = app.db();
        for (name, sql) in sneaky {
            c.execute(
                "INSERT INTO queries (name, sql, scope, description, created_at) \
                 VALUES (?1, ?2, 'view', 'bypassed query add', 0)",
                [name, sql],
            )
            .unwrap();
        }
    }
    let all = all_token(&app).await;
    let before = snapshot(&app);
    for (name, _) in sneaky {
        for path in both_routes(name, "") {
            let r = app.get_with(&path, &all).await;
            let status = r.status();
            let body = r.text().await.unwrap();
            assert_ne!(status, 200, "{path} answered: {body}");
            assert!(!body.contains("pbkdf2"), "{path}: {body}");
            assert!(
                !body.contains("NICKNAME") && !body.contains("demo"),
                "{path}: {body}"
            );
        }
        let out = tollgate(&app, &["query", "run", name, "--json"], None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "query run {name}: {text}");
        assert!(!text.contains("pbkdf2"), "query run {name}: {text}");
    }
    assert_eq!(snapshot(&app), before, "the database changed");
}

// ---- --data-db ----

/// A business database the test owns: `orders`, four rows; returns its path.
fn business_db(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("business.db");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total_cents INTEGER);
         INSERT INTO orders (id, customer, total_cents) VALUES
           (1, 'Acme Pty', 1500),
           (2, 'Bolt & Nut Co', 250),
           (3, 'Cogs Ltd', 9900),
           (4, 'Dynamo', 700);",
    )
    .unwrap();
    drop(c);
    path
}

#[tokio::test]
async fn data_db_publishes_a_business_database_read_only_and_never_changes_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = business_db(dir.path());
    let data_arg = data.to_str().unwrap().to_owned();
    let bytes = std::fs::read(&data).unwrap();
    let app = spawn_app_with(|s| s.data_db = Some(data.clone())).await;
    let sql = "SELECT id, customer FROM data.orders WHERE total_cents > ?1 ORDER BY id";
    publish(&app, "big-orders", sql, &["--data-db", &data_arg]);
    let t = view_token(&app).await;
    for path in both_routes("big-orders", "qp1=1000") {
        let doc = answer(&app, &path, &t).await;
        assert_eq!(
            columns(&doc),
            json!([{"Name": "id", "Type": "INTEGER"}, {"Name": "customer", "Type": "TEXT"}])
        );
        assert_eq!(
            rows(&doc),
            vec![json!([1, "Acme Pty"]), json!([3, "Cogs Ltd"])]
        );
    }
    for path in both_routes("big-orders", "qp1=100&pagesize=3&pageno=2") {
        assert_eq!(
            rows(&answer(&app, &path, &t).await),
            vec![json!([4, "Dynamo"])]
        );
    }
    // `query run --data-db` prints the same document as the HTTP answer.
    let http = answer(&app, &both_routes("big-orders", "qp1=1000")[1], &t).await;
    let run = cli_json(
        &app,
        &[
            "query",
            "run",
            "big-orders",
            "1000",
            "--json",
            "--data-db",
            &data_arg,
        ],
    );
    assert_eq!(run, http);

    // Writes to data.* are refused at add, with the reason, and nothing is saved.
    let listed = query_names(&app);
    for bad in [
        "INSERT INTO data.orders (customer, total_cents) VALUES ('x', 1)",
        "UPDATE data.orders SET total_cents = 0",
        "UPDATE data.orders SET total_cents = 0 RETURNING id",
        "DELETE FROM data.orders",
        "DELETE FROM data.orders RETURNING id, customer",
        "DROP TABLE data.orders",
        "CREATE TABLE data.t (x)",
        "SELECT id FROM data.orders; DELETE FROM data.orders",
        "PRAGMA data.journal_mode = WAL",
    ] {
        let err = fails(
            &app,
            &[
                "query",
                "add",
                "data-write",
                "--sql",
                bad,
                "--data-db",
                &data_arg,
            ],
        );
        assert!(!err.trim().is_empty(), "{bad}: no reason given");
    }
    assert_eq!(query_names(&app), listed);

    // A write saved directly, bypassing `query add`, fails at run time.
    app.db()
        .execute(
            "INSERT INTO queries (name, sql, scope, description, created_at) \
             VALUES ('data-wipe', 'DELETE FROM data.orders RETURNING id', 'view', '', 0)",
            [],
        )
        .unwrap();
    for path in both_routes("data-wipe", "") {
        assert_ne!(app.get_with(&path, &t).await.status(), 200, "{path}");
    }
    let out = tollgate(
        &app,
        &["query", "run", "data-wipe", "--data-db", &data_arg],
        None,
    );
    assert!(!out.status.success());

    // Still all there, over HTTP and on disk, byte for byte.
    for path in both_routes("big-orders", "qp1=0") {
        assert_eq!(rows(&answer(&app, &path, &t).await).len(), 4, "{path}");
    }
    assert_eq!(
        std::fs::read(&data).unwrap(),
        bytes,
        "the data file changed"
    );
}

crate::on_both_engines! {
    async fn a_data_query_is_refused_at_add_without_data_db(app) {
        let before = query_names(&app);
        let err = fails(
            &app,
            &[
                "query",
                "add",
                "orders",
                "--sql",
                "SELECT id FROM data.orders",
            ],
        );
        assert!(
            err.contains("data.orders") || err.contains("orders"),
            "{err}"
        );
        assert_eq!(query_names(&app), before);
    }
}

/// Runs `tollgate serve` on the app's database, which must exit by itself within
/// the startup limit; returns its output.
fn serve_must_exit(app: &TestApp, extra: &[&str]) -> Output {
    let mut cmd = binary(Path::new("."));
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("TOLLGATE_DB", &app.db_path)
        .env("RUST_LOG", "warn");
    run_to_end(cmd)
}

#[tokio::test]
async fn serve_with_a_missing_data_db_fails_at_start_naming_the_file() {
    let app = spawn_app().await;
    assert!(!Path::new("/nonexistent.db").exists());
    let out = serve_must_exit(&app, &["--data-db", "/nonexistent.db"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve should fail: {err}");
    assert!(
        err.contains("/nonexistent.db"),
        "stderr should name the file: {err}"
    );
    assert!(
        !Path::new("/nonexistent.db").exists(),
        "serve created the file"
    );
}

#[tokio::test]
async fn serve_with_a_corrupt_data_db_fails_at_start_naming_the_file() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.db");
    std::fs::write(&bad, b"this is not an SQLite database\n".repeat(200)).unwrap();
    let bytes = std::fs::read(&bad).unwrap();
    let out = serve_must_exit(&app, &["--data-db", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve should fail: {err}");
    assert!(
        err.contains(bad.to_str().unwrap()),
        "stderr should name the file: {err}"
    );
    assert_eq!(std::fs::read(&bad).unwrap(), bytes);
}

// ---- the commands ----

crate::on_both_engines! {
    async fn query_run_json_prints_the_same_document_as_the_http_answer(app) {
        let t = view_token(&app).await;
        let http = answer(&app, &both_routes("low-stock", "qp1=5")[0], &t).await;
        let run = cli_json(&app, &["query", "run", "low-stock", "5", "--json"]);
        assert_eq!(run, http);
        let http = answer(
            &app,
            &both_routes("products-by-prefix", "qp1=Hex&pageno=2&pagesize=4")[1],
            &t,
        )
        .await;
        let run = cli_json(
            &app,
            &[
                "query",
                "run",
                "products-by-prefix",
                "Hex",
                "--json",
                "--pageno",
                "2",
                "--pagesize",
                "4",
            ],
        );
        assert_eq!(run, http);
        // Without --json: a table with the column names and the rows.
        let table = ok(&app, &["query", "run", "low-stock", "5"]);
        assert!(
            table.contains("sku") && table.contains("WD-LUBE-400"),
            "{table}"
        );
        // The wrong number of parameters is refused.
        fails(&app, &["query", "run", "low-stock"]);
        fails(&app, &["query", "run", "low-stock", "5", "6"]);
    }
}

crate::on_both_engines! {
    async fn query_list_json_shows_each_query_with_its_sql_scope_and_description(app) {
        let listed = cli_json(&app, &["query", "list", "--json"]);
        let demo = listed.as_array().unwrap();
        let low = demo
            .iter()
            .find(|q| q["name"] == "low-stock")
            .expect("low-stock");
        assert_eq!(low["sql"], LOW_STOCK_SQL);
        assert_eq!(low["scope"], "view");
        assert!(low["description"].is_string());
        assert!(demo.iter().any(|q| q["name"] == "products-by-prefix"));
        publish(
            &app,
            "prices",
            "SELECT sku, price_cents FROM products",
            &["--scope", "all", "--description", "Full price list"],
        );
        let listed = cli_json(&app, &["query", "list", "--json"]);
        let prices = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["name"] == "prices")
            .expect("prices listed")
            .clone();
        assert_eq!(prices["scope"], "all");
        assert_eq!(prices["description"], "Full price list");
        assert_eq!(prices["sql"], "SELECT sku, price_cents FROM products");
        let text = ok(&app, &["query", "list"]);
        assert!(
            text.contains("prices") && text.contains("low-stock"),
            "{text}"
        );
        // A taken name is refused, and the first query stays as it was.
        fails(&app, &["query", "add", "prices", "--sql", "SELECT 1"]);
        assert_eq!(cli_json(&app, &["query", "list", "--json"]), listed);
    }
}

crate::on_both_engines! {
    async fn query_remove_makes_the_query_404_over_http(app) {
        let t = view_token(&app).await;
        for path in both_routes("low-stock", "qp1=5") {
            answer(&app, &path, &t).await;
        }
        ok(&app, &["query", "remove", "low-stock"]);
        for path in both_routes("low-stock", "qp1=5") {
            assert_problem(app.get_with(&path, &t).await, 404).await;
        }
        assert!(!query_names(&app).contains(&"low-stock".to_owned()));
        assert!(query_names(&app).contains(&"products-by-prefix".to_owned()));
        fails(&app, &["query", "remove", "low-stock"]);
        fails(&app, &["query", "run", "low-stock", "5"]);
    }
}

#[tokio::test]
async fn query_add_with_a_corrupt_data_db_fails_naming_the_file() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrupt.db");
    std::fs::write(&bad, b"this is not an SQLite database\n".repeat(200)).unwrap();
    let before = query_names(&app);
    let err = fails(
        &app,
        &[
            "query",
            "add",
            "orders",
            "--sql",
            "SELECT 1 AS one",
            "--data-db",
            bad.to_str().unwrap(),
        ],
    );
    assert!(
        err.contains(bad.to_str().unwrap()),
        "stderr should name the file: {err}"
    );
    assert_eq!(query_names(&app), before);
}

// ---- bounds on answers, the function allow-list, broken saved queries ----

/// Publishes `sql` as `name` and calls it with `query`, as a token holding `view`.
async fn call_with(app: &TestApp, name: &str, sql: &str, query: &str) -> Response {
    publish(app, name, sql, &[]);
    let token = view_token(app).await;
    app.get_with(&format!("/api/v1/custom/{name}{query}"), &token)
        .await
}

#[tokio::test]
async fn a_huge_value_is_refused_with_422_at_once_never_500() {
    let app = spawn_app().await;
    let huge = [
        ("zero", "SELECT zeroblob(?1)"),
        ("random", "SELECT randomblob(?1)"),
        ("printed", "SELECT printf('%.*c', ?1, 'x')"),
    ];
    for (name, sql) in huge {
        let started = Instant::now();
        let r = call_with(&app, name, sql, "?qp1=1000000000").await;
        let body = assert_problem(r, 422).await;
        assert!(
            s(&body["detail"]).contains("1048576 bytes"),
            "{name}: {body}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    }
    // Just under the bound is served.
    let r = call_with(&app, "fits", "SELECT length(zeroblob(?1))", "?qp1=1048576").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_answer_past_eight_mebibytes_is_refused_with_422() {
    let app = spawn_app().await;
    // 100 rows of 512 KiB: each value fits, the page does not.
    let sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100) \
               SELECT n, zeroblob(524288) FROM r";
    let r = call_with(&app, "wide", sql, "?pagesize=100").await;
    let body = assert_problem(r, 422).await;
    assert!(s(&body["detail"]).contains("pagesize"), "{body}");
    // A page that fits is served from the same query.
    let all = all_token(&app).await;
    let doc = answer(&app, "/api/v1/custom/wide?pagesize=5", &all).await;
    assert_eq!(rows(&doc).len(), 5);
}

#[tokio::test]
async fn counting_a_common_table_expression_and_json_each_are_allowed() {
    let app = spawn_app().await;
    publish(
        &app,
        "cte-count",
        "WITH c AS (SELECT sku FROM products WHERE stock < ?1) SELECT count(*) FROM c",
        &[],
    );
    publish(
        &app,
        "values-count",
        "WITH c(n) AS (VALUES (1), (2)) SELECT count(*) FROM c",
        &[],
    );
    publish(&app, "json", "SELECT value FROM json_each(?1)", &[]);
    let all = all_token(&app).await;
    let doc = answer(&app, "/api/v1/custom/values-count", &all).await;
    assert_eq!(rows(&doc), vec![json!([2])]);
    let doc = answer(&app, "/api/v1/custom/json?qp1=%5B1%2C2%5D", &all).await;
    assert_eq!(rows(&doc), vec![json!([1]), json!([2])]);
}

#[tokio::test]
async fn a_function_off_the_list_is_refused_naming_it() {
    let app = spawn_app().await;
    assert_refused_at_add(
        &app,
        &[
            ("SELECT sqlite_version()", &["sqlite_version()"]),
            (
                "SELECT sqlite_compileoption_get(0)",
                &["sqlite_compileoption_get()"],
            ),
            ("SELECT load_extension('x')", &["load_extension()"]),
        ],
    )
    .await;
    let err = fails(
        &app,
        &["query", "add", "v", "--sql", "SELECT sqlite_version()"],
    );
    assert!(err.contains("not one of the SQL functions"), "{err}");
    assert!(!err.contains("tollgate's own data"), "{err}");
}

#[tokio::test]
async fn a_saved_query_the_sandbox_refuses_is_409_with_the_reason() {
    let app = spawn_app().await;
    app.db()
        .execute(
            "INSERT INTO queries (name, sql, scope, description, created_at) \
             VALUES ('hashes', 'SELECT NICKNAME, \"PASSWORD\" FROM USERS', 'view', '', 0)",
            [],
        )
        .unwrap();
    let all = all_token(&app).await;
    for path in both_routes("hashes", "") {
        let body = assert_problem(app.get_with(&path, &all).await, 409).await;
        let detail = s(&body["detail"]);
        assert!(
            detail.contains("USERS") && detail.contains("hashes"),
            "{detail}"
        );
    }
}

crate::on_both_engines! {
    async fn query_run_uses_the_time_limit_it_is_given(app) {
        publish(&app, "forever", FOREVER, &[]);
        let started = Instant::now();
        let out = tollgate(
            &app,
            &["query", "run", "forever", "--query-time-limit-ms", "200"],
            None,
        );
        let took = started.elapsed();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("time limit"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            took < Duration::from_millis(1500),
            "took {took:?}: not the 200 ms asked"
        );
    }
}

#[tokio::test]
async fn data_db_naming_a_tollgate_database_is_refused() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    app.db()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    for data in [app.db_path.clone(), copy] {
        let out = serve_must_exit(&app, &["--data-db", data.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("USERS") && err.contains("password hashes"),
            "{err}"
        );
        let err = fails(
            &app,
            &[
                "query",
                "add",
                "p",
                "--sql",
                "SELECT 1",
                "--data-db",
                data.to_str().unwrap(),
            ],
        );
        assert!(err.contains("password hashes"), "{err}");
    }
}

// ---- PostgreSQL (API.md §7, §9): the same contract in a READ ONLY transaction,
// under statement_timeout, as role tollgate_getdata ----

/// A server on SQLite and, when PostgreSQL is reachable, one on PostgreSQL.
async fn on_both(test: &str, tweak: fn(&mut tollgate::config::Settings)) -> Vec<TestApp> {
    let mut apps = vec![spawn_app_on(Engine::Sqlite, "", tweak).await.unwrap()];
    if let Some(app) = spawn_app_on(Engine::Postgres, test, tweak).await {
        apps.push(app);
    }
    apps
}

/// A server on PostgreSQL, or None (the skip already said so).
async fn on_postgres(test: &str, tweak: fn(&mut tollgate::config::Settings)) -> Option<TestApp> {
    spawn_app_on(Engine::Postgres, test, tweak).await
}

fn no_tweak(_: &mut tollgate::config::Settings) {}

#[tokio::test]
async fn the_demo_queries_answer_the_same_rows_on_both_engines() {
    let apps = on_both("getdata::the_demo_queries_answer_the_same_rows", no_tweak).await;
    let mut answers = Vec::new();
    for app in &apps {
        let t = view_token(app).await;
        let mut docs = Vec::new();
        for (name, query) in [
            ("low-stock", "qp1=5"),
            ("low-stock", "qp1=100000&pageno=2&pagesize=3"),
            ("low-stock", "qp1=100000&pageno=99&pagesize=500"),
            // SQLite's LIKE ignores ASCII case, PostgreSQL's does not: a prefix in
            // the names' own case answers the same on both.
            ("products-by-prefix", "qp1=Hex"),
            ("products-by-prefix", "qp1=Hex&pageno=2&pagesize=2"),
        ] {
            for path in both_routes(name, query) {
                let doc = answer(app, &path, &t).await;
                let names: Vec<Value> = columns(&doc)
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["Name"].clone())
                    .collect();
                docs.push((
                    path,
                    names,
                    rows(&doc),
                    doc["pageno"].clone(),
                    doc["pagesize"].clone(),
                ));
            }
        }
        assert!(!docs[0].2.is_empty() && !docs[6].2.is_empty(), "demo data");
        answers.push(docs);
    }
    if let [sqlite, postgres] = &answers[..] {
        assert_eq!(sqlite, postgres);
    }
    if let Some(pg) = apps.get(1) {
        let t = view_token(pg).await;
        let doc = answer(pg, &both_routes("low-stock", "qp1=5")[0], &t).await;
        assert_eq!(
            columns(&doc),
            json!([
                {"Name": "sku", "Type": "text"},
                {"Name": "name", "Type": "text"},
                {"Name": "stock", "Type": "int8"}
            ])
        );
        // `query run` prints the same document.
        let run = cli_json(pg, &["query", "run", "low-stock", "5", "--json"]);
        assert_eq!(run, doc);
    }
}

#[tokio::test]
async fn postgres_values_map_to_json_with_their_type_names() {
    let Some(app) = on_postgres("getdata::postgres_values_map_to_json", no_tweak).await else {
        return;
    };
    publish(
        &app,
        "types",
        "SELECT 7::int2 AS s, 1::int4 AS i, 9007199254740993::int8 AS l, 1.5::float8 AS f, \
         12.50::numeric AS n, -0.001::numeric(10,3) AS m, true AS b, NULL::text AS z, \
         'a\"b'::varchar AS v, '\\x01ff'::bytea AS y, '{\"a\":[1]}'::jsonb AS j, ?1 AS p",
        &[],
    );
    let t = view_token(&app).await;
    let doc = answer(&app, &both_routes("types", "qp1=%3F1")[1], &t).await;
    let types: Vec<Value> = columns(&doc)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Type"].clone())
        .collect();
    assert_eq!(
        types,
        json!([
            "int2", "int4", "int8", "float8", "numeric", "numeric", "bool", "text", "varchar",
            "bytea", "jsonb", "text"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        rows(&doc),
        vec![
            json!([7, 1, 9007199254740993i64, 1.5, "12.50", "-0.001", true, null, "a\"b", "Af8=", {"a": [1]}, "?1"])
        ]
    );
    // A type it does not return is refused at add, naming the cast to use.
    let err = fails(&app, &["query", "add", "d", "--sql", "SELECT now() AS t"]);
    assert!(
        err.contains("timestamptz") && err.contains("::text"),
        "{err}"
    );
    // A value the parameter's type cannot take is 400, naming why.
    let r = app
        .get_with(&both_routes("low-stock", "qp1=abc")[0], &t)
        .await;
    let body = assert_problem(r, 400).await;
    assert!(
        s(&body["detail"]).contains("invalid input syntax"),
        "{body}"
    );
}

#[tokio::test]
async fn query_add_on_postgres_refuses_writes_statements_tollgates_tables_and_bad_numbering() {
    let Some(app) = on_postgres("getdata::query_add_on_postgres_refuses", no_tweak).await else {
        return;
    };
    all_token(&app).await;
    let pg = app.pg.as_ref().unwrap();
    let count = |t: &str| pg.exec(&format!("SELECT count(*) FROM {t}"))[0][0].clone();
    let before = (
        count("products"),
        count("users"),
        count("sessions"),
        count("queries"),
    );
    let cases: &[(&str, &[&str])] = &[
        ("DELETE FROM products", &["not a read-only select"]),
        (
            "INSERT INTO products (sku, name, description, price_cents, stock, updated_at) \
             VALUES ('x', 'x', '', 1, 1, 1) RETURNING sku",
            &["permission denied"],
        ),
        (
            "WITH d AS (DELETE FROM products RETURNING sku) SELECT sku FROM d",
            &["permission denied"],
        ),
        (
            "UPDATE products SET stock = 0 RETURNING sku",
            &["permission denied"],
        ),
        ("SELECT sku FROM products; SELECT 1", &["multiple commands"]),
        (
            "SELECT sku FROM products; DELETE FROM products",
            &["multiple commands"],
        ),
        (
            "SELECT nickname, \"PASSWORD\" FROM users",
            &["permission denied for table users"],
        ),
        (
            "SELECT sku FROM products WHERE sku IN (SELECT nickname FROM users)",
            &["permission denied for table users"],
        ),
        ("SELECT hash FROM access_tokens", &["permission denied"]),
        (
            "SELECT * FROM audit_log",
            &["permission denied", "does not exist"],
        ),
        ("SELECT seats FROM licence", &["permission denied"]),
        ("SELECT sql FROM queries", &["permission denied"]),
        (
            "SELECT set_config('role', 'postgres', true)",
            &["set_config"],
        ),
        (
            "SELECT sku FROM products FOR UPDATE",
            &["permission denied"],
        ),
        ("SELECT ?2", &["?1 to ?9"]),
        ("SELECT ?1, ?3", &["?1 to ?9"]),
        ("SELECT $1", &["?1 to ?9"]),
        ("SELECT :name", &["does not prepare", "syntax"]),
        ("SELECT ?1,?2,?3,?4,?5,?6,?7,?8,?9,?10", &["at most 9"]),
        ("", &["not a read-only select"]),
    ];
    for (i, (sql, words)) in cases.iter().enumerate() {
        let err = fails(&app, &["query", "add", &format!("bad-{i}"), "--sql", sql]);
        let lower = err.to_lowercase();
        assert!(
            words.iter().any(|w| lower.contains(&w.to_lowercase())),
            "{sql}: the reason should mention one of {words:?}; stderr: {err}"
        );
    }
    let after = (
        count("products"),
        count("users"),
        count("sessions"),
        count("queries"),
    );
    assert_eq!(before, after, "nothing changed and nothing was saved");
    // A query saved directly, past `query add`, that reads USERS: refused at run
    // time with the reason, never an answer.
    pg.exec(
        "INSERT INTO queries (name, sql, scope, description, created_at) \
         VALUES ('sneaky', 'SELECT nickname, \"PASSWORD\" FROM users', 'view', '', 0)",
    );
    let t = view_token(&app).await;
    for path in both_routes("sneaky", "") {
        let r = app.get_with(&path, &t).await;
        let body = assert_problem(r, 409).await;
        assert!(s(&body["detail"]).contains("permission denied"), "{body}");
        assert!(!body.to_string().contains("pbkdf2"), "{body}");
    }
    // Functions' privileges are checked when they run, not by `query add`: a write
    // through one is refused at run time, and changes nothing.
    let before = pg.exec("SELECT last_value FROM users_id_seq");
    publish(&app, "bump", "SELECT nextval('users_id_seq')", &[]);
    let r = app.get_with(&both_routes("bump", "")[0], &t).await;
    let body = assert_problem(r, 409).await;
    let detail = s(&body["detail"]);
    assert!(
        detail.contains("permission denied") || detail.contains("read-only"),
        "{body}"
    );
    assert_eq!(pg.exec("SELECT last_value FROM users_id_seq"), before);
}

#[tokio::test]
async fn a_postgres_query_past_the_time_limit_is_503_and_its_connection_is_reused() {
    let Some(app) = on_postgres("getdata::a_postgres_query_past_the_time_limit", |s| {
        s.query_time_limit = Duration::from_millis(300)
    })
    .await
    else {
        return;
    };
    publish(&app, "forever", FOREVER, &[]);
    publish(&app, "sleepy", "SELECT pg_sleep(5)::text AS slept", &[]);
    let t = view_token(&app).await;
    // More rounds than the pool has connections: each is used again after a cancel.
    for round in 0..6 {
        for name in ["forever", "sleepy"] {
            let started = Instant::now();
            let r = app.get_with(&both_routes(name, "")[round % 2], &t).await;
            let took = started.elapsed();
            assert_eq!(r.status(), 503, "{name}");
            assert!(header(&r, "retry-after").parse::<u64>().is_ok());
            assert_problem(r, 503).await;
            assert!(
                took < Duration::from_secs(4),
                "{name}: answered after {took:?}"
            );
        }
        answer(&app, &both_routes("low-stock", "qp1=5")[0], &t).await;
    }
}

#[tokio::test]
async fn postgres_answers_past_their_bounds_are_422_and_scopes_hold() {
    let Some(app) = on_postgres("getdata::postgres_answers_past_their_bounds", no_tweak).await
    else {
        return;
    };
    publish(
        &app,
        "huge",
        "SELECT repeat('x', 1000000) AS x FROM generate_series(1, 20)",
        &[],
    );
    publish(&app, "long", "SELECT repeat('x', 1048577) AS x", &[]);
    publish(
        &app,
        "secret",
        "SELECT sku FROM products ORDER BY sku",
        &["--scope", "all"],
    );
    let t = view_token(&app).await;
    let r = app
        .get_with(&both_routes("huge", "pagesize=20")[0], &t)
        .await;
    let body = assert_problem(r, 422).await;
    assert!(s(&body["detail"]).contains("larger than"), "{body}");
    // A page that fits answers.
    let doc = answer(&app, &both_routes("huge", "pagesize=2")[1], &t).await;
    assert_eq!(rows(&doc).len(), 2);
    let r = app.get_with(&both_routes("long", "")[0], &t).await;
    let body = assert_problem(r, 422).await;
    assert!(s(&body["detail"]).contains("longer than"), "{body}");
    // Scopes as on SQLite: `all` is needed, a view token is 403 naming it.
    let r = app.get_with(&both_routes("secret", "")[0], &t).await;
    assert_eq!(r.status(), 403);
    let all = all_token(&app).await;
    let doc = answer(&app, &both_routes("secret", "")[1], &all).await;
    assert!(!rows(&doc).is_empty());
    // A session-level advisory lock a query takes does not outlive it on the
    // pooled connection (it could block another instance's migrations).
    publish(
        &app,
        "locker",
        "SELECT pg_advisory_lock(42)::text AS l",
        &[],
    );
    answer(&app, &both_routes("locker", "")[0], &t).await;
    let held = app
        .pg
        .as_ref()
        .unwrap()
        .exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42");
    assert_eq!(held[0][0].as_deref(), Some("0"));
}

/// A connecting user that may not create tollgate_getdata nor is a member of it:
/// migration V8 fails saying what a superuser must run, not with a bare error.
#[tokio::test]
async fn postgres_migration_v8_without_the_role_says_what_a_superuser_must_run() {
    let Some(db) = PgDb::create("getdata::postgres_migration_v8_without_the_role") else {
        return;
    };
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let user = format!("{name}_u");
    db.exec(&format!(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tollgate_getdata') \
         THEN CREATE ROLE tollgate_getdata NOLOGIN; END IF; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
         CREATE ROLE {user} LOGIN PASSWORD 'pw'; ALTER DATABASE {name} OWNER TO {user}; \
         ALTER SCHEMA public OWNER TO {user}"
    ));
    let (scheme_host, _) = db.url.rsplit_once('/').unwrap();
    let host = scheme_host
        .rsplit_once('@')
        .map_or(scheme_host.split_once("://").unwrap().1, |(_, h)| h);
    let url = format!("postgres://{user}:pw@{host}/{name}");
    let out = binary(Path::new("."))
        .args(["init", &url])
        .output()
        .expect("run tollgate init");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    drop(db);
    let _ = pg_exec(&admin_url(), &format!("DROP ROLE IF EXISTS {user}"));
    assert!(!out.status.success(), "init should fail: {err}");
    assert!(
        err.contains("GRANT tollgate_getdata TO") && err.contains(&user),
        "{err}"
    );
}

/// On PostgreSQL a query cannot switch from tollgate_getdata back to the session's
/// role, not even through functions that run SQL text of their own: migration V10
/// takes set_config from everybody but tollgate's user. And should a superuser give
/// it back, GetData refuses to run at all, saying what to revoke.
#[tokio::test]
async fn on_postgres_a_query_cannot_switch_back_to_tollgates_role() {
    let Some(app) = spawn_app_on(Engine::Postgres, "getdata::switch_back", |_| {}).await else {
        return;
    };
    let pg = app.pg.clone().unwrap();
    let escapes = [
        "SELECT query_to_xml(concat('SELECT set_', 'config(''role'', ''postgres'', false)'), true, true, '')::text AS a, \
         query_to_xml('SELECT nickname, \"PASSWORD\" FROM users', true, true, '')::text AS b",
        "SELECT word FROM ts_stat(concat('SELECT to_tsvector(set_', 'config(''role'', ''postgres'', false))'))",
    ];
    let token = s(&app.grant_ok("viewer", "viewer-secret", None).await["access_token"]);
    for (i, sql) in escapes.iter().enumerate() {
        let name = format!("escape{i}");
        // The text check cannot see set_config inside a string: it is saved...
        ok(&app, &["query", "add", &name, "--sql", sql]);
        // ...and refused when it runs, with the database's reason, and no row.
        let r = app
            .get_with(&format!("/api/v1/custom/{name}"), &token)
            .await;
        assert_eq!(r.status(), 409);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("permission denied for function set_config"),
            "{body}"
        );
        assert!(
            !body.contains("pbkdf2") && !body.contains("viewer"),
            "{body}"
        );
    }
    // A published query still answers.
    let r = app.get_with("/api/v1/custom/low-stock?qp1=5", &token).await;
    assert_eq!(r.status(), 200);
    pg.exec("GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO PUBLIC");
    let r = app.get_with("/api/v1/custom/low-stock?qp1=5", &token).await;
    assert_eq!(r.status(), 409);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("REVOKE EXECUTE ON FUNCTION pg_catalog.set_config"),
        "{body}"
    );
}
