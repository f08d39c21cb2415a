//! The real `tollgate` executable as an operator runs it (API.md §1, §2, §6):
//! crash safety of seats and tokens, the committed `sample.db`, first-run
//! behaviour, command-line refusals and the `TOLLGATE_*` environment twins.
use crate::helpers::{
    binary as tollgate, free_port, granted, init_demo, json_with, run_to_end, Server,
};
use reqwest::Response;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REGENERATE: &str = "sample.db is stale: delete it and regenerate it with \
                          `cargo run --release -- init sample.db --demo`";

/// A 403 licence_unavailable with a whole-seconds Retry-After of at least 1; returns it.
async fn assert_licence_unavailable(r: Response, what: &str) -> u64 {
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json_with(r, 403, what).await;
    assert_eq!(body["error"], "licence_unavailable", "{what}: {body}");
    let retry_after = retry_after.unwrap_or_else(|| panic!("{what}: no Retry-After"));
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {retry_after:?} is not whole seconds"));
    assert!(secs >= 1, "{what}: Retry-After {secs}");
    secs
}

fn sample_db() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample.db")
}

fn open_read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", path.display()))
}

/// Every schema object but refinery's bookkeeping, as (type, name, sql), by name.
fn schema(c: &Connection) -> Vec<(String, String, Option<String>)> {
    let mut st = c
        .prepare(
            "SELECT type, name, sql FROM sqlite_master \
             WHERE name NOT LIKE 'refinery%' ORDER BY name",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn seats_and_tokens_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db); // 2 seats out of the box

    let mut first = Server::serve(dir.path(), &db, &[]);
    let (body_a, access_a, refresh_a) = granted(first.licensed_grant().await, "grant A").await;
    let (_, access_b, refresh_b) = granted(first.licensed_grant().await, "grant B").await;
    let scope = body_a["scope"].as_str().unwrap_or_default();
    assert!(
        scope.split(' ').any(|s| s == "all"),
        "demo's default grant is licensed: {body_a}"
    );
    assert_licence_unavailable(first.licensed_grant().await, "third grant before the crash").await;

    first.kill_9();
    drop(first);

    let second = Server::serve(dir.path(), &db, &[]);
    assert_licence_unavailable(
        second.licensed_grant().await,
        "third grant after kill -9: both seats are still held",
    )
    .await;
    for (name, access) in [("A", &access_a), ("B", &access_b)] {
        let me = json_with(
            second.me(access).await,
            200,
            &format!("access token {name} after kill -9"),
        )
        .await;
        assert_eq!(me["client_id"], "demo", "{me}");
        assert_eq!(me["seat"], true, "{me}");
    }
    for (name, refresh) in [("A", &refresh_a), ("B", &refresh_b)] {
        granted(
            second.refresh(refresh).await,
            &format!("refresh token {name} after kill -9"),
        )
        .await;
    }
    assert_licence_unavailable(
        second.licensed_grant().await,
        "refreshing keeps each session's seat without taking another",
    )
    .await;
    let (view, _, _) = granted(second.view_grant().await, "view grant with every seat held").await;
    assert_eq!(view["scope"], "view", "{view}");
}

#[tokio::test]
async fn expired_seats_are_free_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    let ttls = ["--refresh-ttl", "2", "--access-ttl", "1"];

    let mut first = Server::serve(dir.path(), &db, &ttls);
    let (a, _, _) = granted(first.licensed_grant().await, "grant A").await;
    assert_eq!(a["refresh_token_expires_in"], 2, "{a}");
    granted(first.licensed_grant().await, "grant B").await;
    let last_grant = Instant::now();
    let retry = assert_licence_unavailable(first.licensed_grant().await, "third grant").await;
    assert!(
        retry <= 2,
        "a seat frees within the refresh TTL: Retry-After {retry}"
    );
    first.kill_9();
    drop(first);

    // The binary runs on the real clock: let both 2-second sessions lapse.
    let lapse = Duration::from_millis(3100);
    if let Some(rest) = lapse.checked_sub(last_grant.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    let second = Server::serve(dir.path(), &db, &ttls);
    granted(
        second.licensed_grant().await,
        "licensed grant after the held seats expired",
    )
    .await;
}

#[tokio::test]
async fn sample_db_answers_the_seed_query_verbatim() {
    let c = open_read_only(&sample_db());
    let mut st = c
        .prepare(r#"SELECT NICKNAME, "PASSWORD" FROM USERS WHERE APIUSER = 1;"#)
        .expect("the §1 query runs on sample.db");
    let mut rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["demo", "ops", "viewer"], "API users in sample.db");
    for (name, hash) in &rows {
        assert!(
            hash.starts_with("$pbkdf2-sha256$i=600000$"),
            "{name}'s PASSWORD is not a default-cost PBKDF2 hash: {hash}"
        );
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(
            parts.len(),
            5,
            "{name}: $pbkdf2-sha256$i=N$salt$hash: {hash}"
        );
        assert!(
            !parts[3].is_empty() && !parts[4].is_empty(),
            "{name}: {hash}"
        );
        for secret in ["demo-secret", "viewer-secret", "alice-secret"] {
            assert!(!hash.contains(secret), "{name}'s PASSWORD holds a secret");
        }
    }

    let alice: i64 = c
        .query_row(
            "SELECT APIUSER FROM USERS WHERE NICKNAME = 'alice'",
            [],
            |r| r.get(0),
        )
        .expect("alice is in sample.db");
    assert_eq!(alice, 0, "alice is an ordinary user");
}

#[tokio::test]
async fn sample_db_is_up_to_date_with_the_migrations() {
    let sample = open_read_only(&sample_db());
    let version: i32 = sample
        .query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{REGENERATE} (no migration history: {e})"));
    assert_eq!(
        version,
        tollgate::store::sqlite::latest_migration(),
        "{REGENERATE} (its latest migration differs from the binary's)"
    );

    let dir = tempfile::tempdir().unwrap();
    let fresh_path = dir.path().join("fresh.db");
    init_demo(dir.path(), &fresh_path);
    let fresh = open_read_only(&fresh_path);
    assert_eq!(
        schema(&sample),
        schema(&fresh),
        "{REGENERATE} (its schema differs from a fresh `tollgate init --demo`)"
    );
}

#[tokio::test]
async fn bare_tollgate_creates_the_demo_database_on_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.env("TOLLGATE_LISTEN", format!("127.0.0.1:{port}"));
    let server = Server::start(cmd, port, "");

    assert!(
        dir.path().join("tollgate.db").is_file(),
        "./tollgate.db was not created; stderr:\n{}",
        server.stderr()
    );
    let (body, access, _) = granted(server.licensed_grant().await, "demo's grant").await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    json_with(server.me(&access).await, 200, "/api/v1/me").await;
}

#[tokio::test]
async fn init_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious.db");
    std::fs::write(&file, b"not yours to overwrite").unwrap();

    let mut cmd = tollgate(dir.path());
    cmd.arg("init").arg(&file).arg("--demo");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "init over an existing file succeeded"
    );
    assert!(
        stderr.contains("precious.db"),
        "the message names the file: {stderr}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not yours to overwrite",
        "the existing file was changed"
    );
}

#[tokio::test]
async fn serve_refuses_a_bad_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);

    let mut cmd = tollgate(dir.path());
    cmd.arg("--db")
        .arg(&db)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--base-path")
        .arg("/a b");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served a bad base path: {stderr}");
    assert!(
        stderr.contains("--base-path"),
        "the message names --base-path: {stderr}"
    );
}

#[tokio::test]
async fn env_twins_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    init_demo(dir.path(), &db);
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.arg("serve")
        .env("TOLLGATE_DB", &db)
        .env("TOLLGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("TOLLGATE_BASE_PATH", "/Jim_Test")
        .env("TOLLGATE_ACCESS_TTL", "77");
    let server = Server::start(cmd, port, "/Jim_Test");

    let (body, _, _) = granted(
        server.licensed_grant().await,
        "POST /Jim_Test/token configured from the environment",
    )
    .await;
    assert_eq!(body["expires_in"], 77, "{body}");
    assert!(
        !dir.path().join("tollgate.db").exists(),
        "TOLLGATE_DB was ignored: ./tollgate.db was created"
    );
}
