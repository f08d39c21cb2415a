//! API.md §12: several databases in one process. Two mounts of one server,
//! `/Jim_Test` and `/Jim_Live` (SQLite and SQLite, then SQLite and PostgreSQL), each
//! a world of its own; and the start-up refusals, on the built binary.
use crate::helpers::*;
use crate::ops::metrics::{find, parse_exposition, Sample};
use reqwest::Response;
use serde_json::Value;

async fn form(app: &TestApp, path: &str, body: &str, who: (&str, &str)) -> Response {
    app.client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .basic_auth(who.0, Some(who.1))
        .send()
        .await
        .unwrap()
}

async fn scrape(app: &TestApp, url: String) -> Vec<Sample> {
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    parse_exposition(&r.text().await.unwrap())
}

fn of_mount(samples: &[Sample], name: &str, mount: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let theirs: Vec<Sample> = samples
        .iter()
        .filter(|s| s.labels.get("mount").map(String::as_str) == Some(mount))
        .cloned()
        .collect();
    find(&theirs, name, labels)
}

const DEMO: (&str, &str) = ("demo", "demo-secret");

/// The clients of the grants in a mount's audit trail (written in batches by its
/// own flush), polled until `client` shows or 5 s pass.
async fn audited_clients(app: &TestApp, client: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rows = cli_json(app, &["audit", "--since", "3650d", "--json"]);
        let clients: Vec<String> = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["event"] == "grant.client_credentials")
            .map(|r| s(&r["client_id"]))
            .collect();
        if clients.iter().any(|c| c == client) || std::time::Instant::now() > deadline {
            return clients;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

crate::on_two_mounts! {
    async fn a_token_of_one_mount_is_unknown_at_the_other(a, b) {
        let t = a.grant_ok("demo", "demo-secret", Some("view")).await;
        let access = s(&t["access_token"]);
        assert_eq!(a.me(&access).await.status(), 200);
        assert_eq!(b.me(&access).await.status(), 401);
        let seen: Value = form(&b, "/introspect", &format!("token={access}"), DEMO)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(seen["active"], false, "{seen}");
    }

    async fn a_refresh_token_of_one_mount_is_invalid_grant_at_the_other(a, b) {
        let t = a.grant_ok("demo", "demo-secret", None).await;
        let refresh = s(&t["refresh_token"]);
        let r = b.refresh("demo", "demo-secret", &refresh, None).await;
        assert_oauth_error(r, 400, "invalid_grant").await;
        let r = a.refresh("demo", "demo-secret", &refresh, None).await;
        assert_eq!(r.status(), 200);
    }

    async fn one_client_id_has_a_secret_per_mount(a, b) {
        let made = cli_json(&b, &["user", "reset-secret", "demo", "--json"]);
        let secret = s(&made["client_secret"]);
        b.grant_ok("demo", &secret, Some("view")).await;
        let r = b.grant("demo", "demo-secret", Some("view")).await;
        assert_oauth_error(r, 401, "invalid_client").await;
        a.grant_ok("demo", "demo-secret", Some("view")).await;
        let r = a.grant("demo", &secret, Some("view")).await;
        assert_oauth_error(r, 401, "invalid_client").await;
    }

    async fn one_mounts_seats_never_count_against_another(a, b) {
        a.set_seats(1);
        a.grant_ok("demo", "demo-secret", None).await;
        let r = a.grant("demo", "demo-secret", None).await;
        assert_oauth_error(r, 403, "licence_unavailable").await;
        b.grant_ok("demo", "demo-secret", None).await;
        b.grant_ok("demo", "demo-secret", None).await;
        assert_eq!((a.seats_held(), b.seats_held()), (1, 2));
    }

    async fn an_admin_change_is_seen_at_once_by_its_mount_only(a, b) {
        a.grant_ok("viewer", "viewer-secret", Some("view")).await;
        ok(&a, &["user", "disable", "viewer"]);
        let r = a.grant("viewer", "viewer-secret", Some("view")).await;
        assert_oauth_error(r, 401, "invalid_client").await;
        b.grant_ok("viewer", "viewer-secret", Some("view")).await;
    }

    async fn revocation_at_one_mount_leaves_the_other_alone(a, b) {
        let ta = a.grant_ok("demo", "demo-secret", None).await;
        let tb = b.grant_ok("demo", "demo-secret", None).await;
        // Each mount's token presented at the other's /revoke: unknown there, 200, kept.
        let r = form(&b, "/revoke", &format!("token={}", s(&ta["refresh_token"])), DEMO).await;
        assert_eq!(r.status(), 200);
        assert_eq!(a.me(&s(&ta["access_token"])).await.status(), 200);
        let r = form(&a, "/revoke", &format!("token={}", s(&ta["refresh_token"])), DEMO).await;
        assert_eq!(r.status(), 200);
        assert_eq!(a.me(&s(&ta["access_token"])).await.status(), 401);
        assert_eq!(b.me(&s(&tb["access_token"])).await.status(), 200);
        assert_eq!((a.seats_held(), b.seats_held()), (0, 1));
    }

    async fn each_mount_keeps_its_own_audit_trail(a, b) {
        a.grant_ok("demo", "demo-secret", Some("view")).await;
        b.grant_ok("viewer", "viewer-secret", Some("view")).await;
        assert_eq!(audited_clients(&b, "viewer").await, ["viewer"]);
        assert_eq!(audited_clients(&a, "demo").await, ["demo"]);
    }

    async fn metrics_carry_each_mounts_label(a, b) {
        a.set_seats(3);
        a.grant_ok("demo", "demo-secret", None).await;
        assert_eq!(a.grant("nobody", "x", None).await.status(), 401);
        let m = scrape(&a, format!("{}/metrics", a.origin())).await;
        let held = "tollgate_seats_held";
        assert_eq!(of_mount(&m, held, "/Jim_Test", &[]), Some(1.0));
        assert_eq!(of_mount(&m, held, "/Jim_Live", &[]), Some(0.0));
        assert_eq!(of_mount(&m, "tollgate_seats_total", "/Jim_Test", &[]), Some(3.0));
        assert_eq!(of_mount(&m, "tollgate_seats_total", "/Jim_Live", &[]), Some(2.0));
        let ok = [("grant_type", "client_credentials"), ("outcome", "ok")];
        assert_eq!(of_mount(&m, "tollgate_grants_total", "/Jim_Test", &ok), Some(1.0));
        assert_eq!(of_mount(&m, "tollgate_grants_total", "/Jim_Live", &ok), None);
        let route = [("route", "/Jim_Test/token"), ("status", "401")];
        assert_eq!(of_mount(&m, "tollgate_http_requests_total", "/Jim_Test", &route), Some(1.0));
        let per_name = |n: &str| m.iter().filter(|s| s.name == n).count();
        assert_eq!(per_name("tollgate_pbkdf2_computations"), 1);
        // A mount's own /metrics is its series alone.
        let mine = scrape(&b, b.url("/metrics")).await;
        assert!(mine.iter().all(|s| s.labels.get("mount").is_none_or(|m| m == "/Jim_Live")));
        assert_eq!(of_mount(&mine, held, "/Jim_Live", &[]), Some(0.0));
    }

    async fn readyz_is_503_naming_the_mount_whose_database_is_unavailable(a, b) {
        let holder = a.db();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let r = a.client.get(format!("{}/readyz", a.origin())).send().await.unwrap();
        assert_eq!(r.status(), 503);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["unavailable"], serde_json::json!([format!("mount /Jim_Test ({})", a.db_path.display())]), "{body}");
        assert!(s(&body["detail"]).starts_with("mount /Jim_Test"), "{body}");
        assert_eq!(b.client.get(b.url("/readyz")).send().await.unwrap().status(), 200);
        holder.execute_batch("ROLLBACK").unwrap();
        let r = a.client.get(format!("{}/readyz", a.origin())).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    async fn each_mount_has_its_metadata_console_and_readiness(a, b) {
        for app in [&a, &b] {
            let path = app.settings.base_path.clone();
            let url = format!("{}/.well-known/oauth-authorization-server{path}", app.origin());
            let meta: Value = app.client.get(url).send().await.unwrap().json().await.unwrap();
            assert!(s(&meta["issuer"]).ends_with(&path), "{meta}");
            assert_eq!(s(&meta["token_endpoint"]), format!("{}/token", s(&meta["issuer"])));
            let console = app.client.get(app.url("/console/")).send().await.unwrap();
            assert_eq!(console.status(), 200);
        }
        for probe in ["/healthz", "/readyz"] {
            let r = a.client.get(format!("{}{probe}", a.origin())).send().await.unwrap();
            assert_eq!(r.status(), 200, "{probe}");
        }
        for unknown in ["/Jim_Other/token", "/token", "/", "/.well-known/oauth-authorization-server"] {
            let r = a.client.get(format!("{}{unknown}", a.origin())).send().await.unwrap();
            assert_eq!(r.status(), 404, "{unknown}");
        }
    }
}

/// `tollgate serve --listen 127.0.0.1:PORT ARGS…` in a fresh directory holding
/// `test.db` and `live.db` (demo data), not yet started.
fn serve_two(args: &[&str], port: u16) -> (tempfile::TempDir, std::process::Command) {
    let dir = tempfile::tempdir().unwrap();
    for f in ["test.db", "live.db"] {
        init_demo(dir.path(), &dir.path().join(f));
    }
    let mut cmd = binary(dir.path());
    cmd.arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(args);
    (dir, cmd)
}

#[tokio::test]
async fn the_binary_serves_tollgate_mounts_lists_each_in_its_banner_and_closes_each() {
    let port = free_port();
    let (dir, mut cmd) = serve_two(&[], port);
    cmd.env("TOLLGATE_MOUNTS", "/Jim_Test=test.db,/Jim_Live=live.db");
    let mut p = Proc::spawn(cmd);
    p.wait_listening(port, std::time::Duration::from_secs(20));
    let client = reqwest::Client::new();
    for mount in ["/Jim_Test", "/Jim_Live"] {
        let r = client
            .post(format!("http://127.0.0.1:{port}{mount}/token"))
            .basic_auth("demo", Some("demo-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "view")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{mount}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !p.stdout().contains("/Jim_Live/token") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let banner = p.stdout();
    for mount in ["/Jim_Test", "/Jim_Live"] {
        let line = format!("POST http://127.0.0.1:{port}{mount}/token");
        assert!(banner.contains(&line), "{line} not in:\n{banner}");
    }
    // SIGTERM: every mount's store is closed, its WAL checkpointed into the file.
    assert!(p.stop(std::time::Duration::from_secs(20)).success());
    for db in ["test.db", "live.db"] {
        let wal = dir.path().join(format!("{db}-wal"));
        let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(len, 0, "{db}: the WAL was checkpointed at shutdown");
    }
}

/// `serve_two(args)`, which must refuse to start. Returns its stderr.
fn refused(args: &[&str]) -> String {
    let (_dir, cmd) = serve_two(args, free_port());
    let out = run_to_end(cmd);
    assert!(!out.status.success(), "{args:?} started");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_mount_whose_database_is_missing_stops_the_start_naming_it() {
    let e = refused(&[
        "--mount",
        "/Jim_Test=test.db",
        "--mount",
        "/Jim_Live=gone.db",
    ]);
    assert!(e.contains("/Jim_Live") && e.contains("gone.db"), "{e}");
}

#[test]
fn an_unreachable_postgres_mount_stops_the_start_naming_it() {
    let url = "postgres://tollgate@127.0.0.1:1/nowhere";
    let e = refused(&[
        "--mount",
        "/Jim_Test=test.db",
        "--mount",
        &format!("/Jim_Live={url}"),
    ]);
    assert!(
        e.contains("mount /Jim_Live") && e.contains("unreachable"),
        "{e}"
    );
}

#[test]
fn mount_and_db_together_are_refused() {
    let e = refused(&["--db", "test.db", "--mount", "/Jim_Live=live.db"]);
    assert!(e.contains("--mount and --db"), "{e}");
}

#[test]
fn two_mounts_on_one_path_or_one_database_are_refused() {
    let e = refused(&[
        "--mount",
        "/Jim_Test=test.db",
        "--mount",
        "/Jim_Test=live.db",
    ]);
    assert!(e.contains("one path"), "{e}");
    let e = refused(&[
        "--mount",
        "/Jim_Test=test.db",
        "--mount",
        "/Jim_Live=./test.db",
    ]);
    assert!(
        e.contains("/Jim_Test") && e.contains("/Jim_Live") && e.contains("one mount"),
        "{e}"
    );
    let e = refused(&["--mount", "Jim_Test"]);
    assert!(e.contains("PATH=DB"), "{e}");
    let e = refused(&["--mount", "/Jim_Test=test.db", "--base-path", "/Jim_Live"]);
    assert!(e.contains("--mount and --base-path"), "{e}");
}

/// API.md §10 and §12: each mount signs with its own key under its own issuer, so a
/// JWT access token of one mount is refused at the other.
#[tokio::test]
async fn a_jwt_of_one_mount_is_refused_at_the_other_and_each_has_its_keys() {
    let mounts = [("/Jim_Test", Engine::Sqlite), ("/Jim_Live", Engine::Sqlite)];
    let jwt = |s: &mut tollgate::config::Settings| {
        s.access_token_format = tollgate::config::AccessTokenFormat::Jwt
    };
    let apps = spawn_mounts_with("jwt_mounts", &mounts, jwt).await.unwrap();
    let [a, b]: [TestApp; 2] = apps.try_into().ok().unwrap();
    let access = s(&a.grant_ok("demo", "demo-secret", Some("view")).await["access_token"]);
    assert_eq!(access.split('.').count(), 3, "a JWT: {access}");
    assert_eq!(a.me(&access).await.status(), 200);
    assert_eq!(b.me(&access).await.status(), 401);
    let mut kids = Vec::new();
    for app in [&a, &b] {
        let path = &app.settings.base_path;
        let url = format!(
            "{}/.well-known/oauth-authorization-server{path}",
            app.origin()
        );
        let meta: Value = app
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwks_uri = s(&meta["jwks_uri"]);
        assert!(
            jwks_uri.ends_with(&format!("{path}/.well-known/jwks.json")),
            "{meta}"
        );
        let jwks: Value = app
            .client
            .get(&jwks_uri)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        kids.push(s(&jwks["keys"][0]["kid"]));
    }
    assert_ne!(kids[0], kids[1], "one key per mount");
}
