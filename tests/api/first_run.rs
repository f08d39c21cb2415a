//! A newcomer's first minutes with the binary (docs/API.md §6): a mistyped
//! database is refused, an unusable one is warned about, the banner says where to
//! go, serve's flags work without `serve`, and `--listen` and durations take the
//! short forms people type.
use crate::helpers::{
    binary as tollgate, free_port, granted, init_demo, json_with, run_to_end, Server,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (bounded) until the server's banner on stdout contains `needle`; returns it.
async fn banner_with(server: &Server, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.stdout();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in stdout:\n{text}\nstderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn failure(cwd: &Path, args: &[&str]) -> String {
    let mut cmd = tollgate(cwd);
    cmd.args(args);
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

#[tokio::test]
async fn serve_refuses_a_named_database_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    for args in [
        vec!["--db", "typo.db", "serve", "--listen", &port],
        vec!["--db", "typo.db", "--listen", &port],
    ] {
        let stderr = failure(dir.path(), &args);
        assert!(
            stderr.contains("typo.db") && stderr.contains("tollgate init"),
            "{args:?}: the message names the file and how to create one: {stderr}"
        );
    }
    assert!(
        !dir.path().join("typo.db").exists(),
        "a missing database was created"
    );
}

#[tokio::test]
async fn an_empty_database_is_warned_about_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.db");
    let mut cmd = tollgate(dir.path());
    cmd.arg("init").arg(&db);
    assert!(run_to_end(cmd).status.success());

    let server = Server::serve(dir.path(), &db, &[]);
    let banner = banner_with(&server, "tollgate is ready").await;
    // The warnings are logged before the banner is printed.
    let stderr = server.stderr();
    assert!(
        stderr.contains("no enabled API users") && stderr.contains("tollgate user add"),
        "{stderr}"
    );
    assert!(
        stderr.contains("0 licence seats") && stderr.contains("tollgate licences set"),
        "{stderr}"
    );
    assert!(!banner.contains("demo credential"), "{banner}");
}

#[tokio::test]
async fn the_banner_names_the_urls_the_demo_credentials_and_the_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    init_demo(dir.path(), &db);
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.arg("--db")
        .arg(&db)
        .args(["serve", "--listen", &port.to_string()])
        .args(["--base-path", "/Jim_Test", "--access-ttl", "5m"]);
    let server = Server::start(cmd, port, "/Jim_Test");
    let banner = banner_with(&server, "first grant").await;
    let base = format!("http://127.0.0.1:{port}");
    for wanted in [
        format!("POST {base}/Jim_Test/token"),
        format!("{base}/.well-known/oauth-authorization-server/Jim_Test"),
        format!("{base}/Jim_Test/openapi.json"),
        "client_id demo, client_secret demo-secret".to_owned(),
        "client_id viewer, client_secret viewer-secret".to_owned(),
        "2 licence seats".to_owned(),
        "access 5m, refresh (and its seat) 20m".to_owned(),
        "PBKDF2".to_owned(),
    ] {
        assert!(banner.contains(&wanted), "no {wanted:?} in:\n{banner}");
    }
    let log = server.stderr();
    assert!(!log.contains("WARN"), "{log}");
    assert!(
        !log.contains("demo-secret"),
        "the log carries no secret:\n{log}"
    );
}

#[tokio::test]
async fn the_banner_leaves_out_demo_secrets_that_no_longer_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    init_demo(dir.path(), &db);
    let mut cmd = tollgate(dir.path());
    cmd.arg("--db").arg(&db).args(["user", "disable", "viewer"]);
    assert!(run_to_end(cmd).status.success());

    let server = Server::serve(dir.path(), &db, &[]);
    let banner = banner_with(&server, "first grant").await;
    assert!(banner.contains("client_id demo,"), "{banner}");
    assert!(!banner.contains("viewer-secret"), "{banner}");
}

#[tokio::test]
async fn serve_flags_work_without_serve_and_listen_takes_a_bare_port() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    init_demo(dir.path(), &db);
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.arg("--db")
        .arg(&db)
        .args(["--listen", &port.to_string(), "--access-ttl", "5m"])
        .args(["--refresh-ttl", "1h"]);
    let server = Server::start(cmd, port, "");
    let (body, _, _) = granted(server.licensed_grant().await, "grant").await;
    assert_eq!(body["expires_in"], 300, "{body}");
    assert_eq!(body["refresh_token_expires_in"], 3600, "{body}");
}

#[tokio::test]
async fn listen_takes_localhost_and_ttls_still_take_plain_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    init_demo(dir.path(), &db);
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.arg("--db")
        .arg(&db)
        .args(["serve", "--listen", &format!("localhost:{port}")])
        .env("TOLLGATE_ACCESS_TTL", "77");
    let server = Server::start(cmd, port, "");
    let (body, _, _) = granted(server.view_grant().await, "grant").await;
    assert_eq!(body["expires_in"], 77, "{body}");
}

#[tokio::test]
async fn bad_listen_addresses_and_durations_get_examples() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = failure(dir.path(), &["--listen", "nowhere"]);
    assert!(
        stderr.contains("--listen") && stderr.contains("localhost:8080"),
        "{stderr}"
    );
    let stderr = failure(dir.path(), &["serve", "--access-ttl", "5 minutes"]);
    assert!(
        stderr.contains("--access-ttl") && stderr.contains("5m"),
        "{stderr}"
    );
    let stderr = failure(dir.path(), &["--bogus"]);
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert!(
        !dir.path().join("tollgate.db").exists(),
        "a refused start created ./tollgate.db"
    );
}

#[tokio::test]
async fn root_links_the_metadata_and_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    init_demo(dir.path(), &db);
    let server = Server::serve(dir.path(), &db, &["--base-path", "/Jim_Test"]);
    // Server::serve's URLs are relative to the root.
    for path in ["/Jim_Test/", "/Jim_Test"] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        let home = json_with(r, 200, path).await;
        assert_eq!(home["service"], "tollgate", "{home}");
        let links = &home["links"];
        assert_eq!(
            links["metadata"], "/.well-known/oauth-authorization-server/Jim_Test",
            "{home}"
        );
        assert_eq!(links["token_endpoint"], "/Jim_Test/token", "{home}");
        assert_eq!(links["openapi"], "/Jim_Test/openapi.json", "{home}");
    }
    for link in [
        "/.well-known/oauth-authorization-server/Jim_Test",
        "/Jim_Test/openapi.json",
    ] {
        let r = server.client.get(server.url(link)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{link}");
    }
    let r = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 404, "/ is outside the base path");
    let page = server
        .client
        .get(server.url("/Jim_Test/"))
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("href=\"/Jim_Test/openapi.json\""), "{html}");
}
