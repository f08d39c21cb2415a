//! Admin commands (API.md §6) run as the built binary against the file a live server uses;
//! the server's behaviour is checked over HTTP right after each.
use crate::helpers::*;
use serde_json::Value;
use std::time::{Duration, Instant};

crate::on_both_engines! {
    async fn user_add_prints_a_secret_that_works_at_once(app) {
        let v = cli_json(
            &app,
            &["user", "add", "bob", "--scopes", "view,all", "--json"],
        );
        assert_eq!(v["client_id"], "bob");
        let secret = s(&v["client_secret"]);
        assert!(secret.len() >= 43);
        assert_eq!(
            app.grant_ok("bob", &secret, None).await["scope"],
            "all view"
        );
        let text = ok(&app, &["user", "add", "carol"]);
        assert!(
            text.starts_with("client_id: carol\nclient_secret: "),
            "{text}"
        );
    }
}

crate::on_both_engines! {
    async fn user_add_takes_the_secret_from_stdin(app) {
        let out = tollgate(
            &app,
            &["user", "add", "svc", "--secret-stdin"],
            Some("chosen-secret\n"),
        );
        assert!(out.status.success());
        assert_eq!(
            app.grant_ok("svc", "chosen-secret", None).await["scope"],
            "view"
        );
    }
}

crate::on_both_engines! {
    async fn user_add_no_api_makes_an_ordinary_user(app) {
        let v = cli_json(&app, &["user", "add", "clerk", "--no-api", "--json"]);
        let rows = cli_json(&app, &["user", "list", "--json"]);
        let clerk = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["nickname"] == "clerk")
            .expect("clerk is listed");
        assert_eq!(clerk["api_user"], false, "{clerk}");
        assert_eq!(clerk["enabled"], true, "{clerk}");
        // Its own secret fails exactly like a wrong one.
        let mut answers = Vec::new();
        for secret in [s(&v["client_secret"]), "wrong-secret".to_owned()] {
            let r = app.grant("clerk", &secret, None).await;
            let challenge = r.headers()["www-authenticate"].clone();
            answers.push((
                challenge,
                assert_oauth_error(r, 401, "invalid_client").await,
            ));
        }
        assert_eq!(answers[0], answers[1]);
    }
}

crate::on_both_engines! {
    async fn user_list_shows_users_and_never_a_hash(app) {
        app.grant_ok("demo", "demo-secret", None).await;
        let text = ok(&app, &["user", "list"]);
        assert!(text.contains("NICKNAME") && text.contains("viewer") && !text.contains("pbkdf2"));
        let rows = cli_json(&app, &["user", "list", "--json"]);
        let demo = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["nickname"] == "demo")
            .unwrap();
        assert_eq!(demo["live_sessions"], 1);
        assert_eq!(demo["scopes"], serde_json::json!(["all", "view"]));
        assert!(!rows.to_string().contains("pbkdf2"));
    }
}

crate::on_both_engines! {
    async fn disable_ends_live_sessions_and_enable_restores_access(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        ok(&app, &["user", "disable", "demo"]);
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
        assert_eq!(app.seats_held(), 0);
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 401);
        let r = app
            .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        assert_eq!(r.status(), 401);
        ok(&app, &["user", "enable", "demo"]);
        app.grant_ok("demo", "demo-secret", None).await;
    }
}

crate::on_both_engines! {
    async fn reset_secret_retires_the_old_secret_at_once(app) {
        app.grant_ok("demo", "demo-secret", Some("view")).await;
        let v = cli_json(&app, &["user", "reset-secret", "demo", "--json"]);
        assert_eq!(
            app.grant("demo", "demo-secret", Some("view"))
                .await
                .status(),
            401
        );
        app.grant_ok("demo", &s(&v["client_secret"]), Some("view"))
            .await;
    }
}

crate::on_both_engines! {
    async fn licences_set_is_honoured_at_once_and_lowering_keeps_held_seats(app) {
        ok(&app, &["licences", "set", "3"]);
        let mut tokens = Vec::new();
        for _ in 0..3 {
            tokens.push(app.grant_ok("demo", "demo-secret", None).await);
        }
        ok(&app, &["licences", "set", "1"]);
        for t in &tokens {
            assert_eq!(app.me(&s(&t["access_token"])).await.status(), 200);
        }
        assert_eq!(app.grant("demo", "demo-secret", None).await.status(), 403);
        app.grant_ok("demo", "demo-secret", Some("view")).await;
        let v = cli_json(&app, &["licences", "show", "--json"]);
        assert_eq!(
            (v["seats"].as_i64(), v["held"].as_i64()),
            (Some(1), Some(3))
        );
        assert_eq!(v["holders"].as_array().unwrap().len(), 3);
        assert!(ok(&app, &["licences", "show"]).contains("held:  3"));
    }
}

crate::on_both_engines! {
    async fn sessions_revoke_frees_the_seat(app) {
        app.set_seats(1);
        let t = app.grant_ok("demo", "demo-secret", None).await;
        let rows = cli_json(&app, &["sessions", "list", "--json"]);
        let id = rows[0]["id"].as_i64().unwrap();
        assert_eq!(rows[0]["seat"], true);
        ok(&app, &["sessions", "revoke", &id.to_string()]);
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
        app.grant_ok("demo", "demo-secret", None).await;
        assert!(fails(&app, &["sessions", "revoke", &id.to_string()]).contains("no live session"));
    }
}

crate::on_both_engines! {
    async fn a_new_licensed_scope_can_be_granted(app) {
        ok(
            &app,
            &[
                "scope",
                "add",
                "reports",
                "--licensed",
                "--description",
                "Reporting",
            ],
        );
        let v = cli_json(
            &app,
            &["user", "add", "rep", "--scopes", "reports", "--json"],
        );
        let t = app.grant_ok("rep", &s(&v["client_secret"]), None).await;
        assert_eq!(t["scope"], "reports");
        let me: Value = app.me(&s(&t["access_token"])).await.json().await.unwrap();
        assert_eq!(me["seat"], true);
        let scopes = cli_json(&app, &["scope", "list", "--json"]);
        assert_eq!(scopes.as_array().unwrap().len(), 4);
    }
}

crate::on_both_engines! {
    async fn mistakes_get_clear_errors_and_a_failing_exit_code(app) {
        assert!(fails(&app, &["user", "disable", "ghost"]).contains("no user named"));
        assert!(fails(&app, &["user", "add", "x", "--scopes", "nope"]).contains("unknown scope"));
        assert!(fails(&app, &["user", "add", "demo"]).contains("exists already"));
        assert!(fails(&app, &["user", "add", "a:b"]).contains("':'"));
        assert!(fails(&app, &["scope", "add", "a\"b"]).contains("scope name"));
        assert!(fails(&app, &["audit", "--since", "soon"]).contains("--since"));
    }
}

#[tokio::test]
async fn a_missing_database_file_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.db");
    let out = binary(dir.path())
        .args(["--db", path.to_str().unwrap(), "user", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tollgate init"));
    assert!(
        !path.exists(),
        "an admin command must not create a database"
    );
}

crate::on_both_engines! {
    async fn a_database_from_a_newer_tollgate_is_refused(app) {
        let future = "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                      VALUES (99, 'future', '', '0')";
        match &app.pg {
            Some(pg) => {
                pg.exec(future);
            }
            None => {
                app.db().execute(future, []).unwrap();
            }
        }
        assert!(fails(&app, &["user", "list"]).contains("newer tollgate"));
    }
}

/// Polls the audit trail (written in batches) until `pred` holds.
async fn audit_until(app: &TestApp, args: &[&str], pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut full = vec!["audit", "--since", "3650d", "--json"];
        full.extend_from_slice(args);
        let rows = cli_json(app, &full).as_array().unwrap().clone();
        if pred(&rows) || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

crate::on_both_engines! {
    async fn the_audit_trail_records_grants_refusals_revocations_and_admin_changes(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        app.grant("demo", "wrong-secret", None).await;
        app.refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        app.refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
            .await;
        ok(&app, &["licences", "set", "4"]);
        let has = |rows: &[Value], event: &str, outcome: &str| {
            rows.iter()
                .any(|r| r["event"] == event && r["outcome"] == outcome)
        };
        let rows = audit_until(&app, &[], |rows| {
            has(rows, "grant.refresh_token", "invalid_grant")
        })
        .await;
        assert!(has(&rows, "grant.client_credentials", "ok"));
        assert!(has(&rows, "grant.client_credentials", "invalid_client"));
        assert!(has(&rows, "grant.refresh_token", "ok"));
        assert!(has(&rows, "licences.set", "ok"));
        let reuse = rows
            .iter()
            .find(|r| r["outcome"] == "invalid_grant")
            .unwrap();
        assert!(s(&reuse["detail"]).contains("already used"));
        assert_eq!(reuse["remote"], "127.0.0.1");
        let text = serde_json::to_string(&rows).unwrap();
        assert!(!text.contains("demo-secret") && !text.contains(&s(&t["refresh_token"])));
        let only_viewer = cli_json(
            &app,
            &["audit", "--since", "3650d", "--client", "viewer", "--json"],
        );
        assert_eq!(only_viewer.as_array().unwrap().len(), 0);
    }
}

crate::on_both_engines! {
    async fn revocations_are_audited(app) {
        let t = app.grant_ok("demo", "demo-secret", None).await;
        app.client
            .post(app.url("/revoke"))
            .basic_auth("demo", Some("demo-secret"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("token={}", s(&t["refresh_token"])))
            .send()
            .await
            .unwrap();
        let rows = audit_until(&app, &["--client", "demo"], |rows| {
            rows.iter().any(|r| r["event"] == "revoke")
        })
        .await;
        let r = rows
            .iter()
            .find(|r| r["event"] == "revoke")
            .expect("revoke row");
        assert!(s(&r["detail"]).contains("session"));
    }
}

#[tokio::test]
async fn old_audit_rows_are_pruned_by_the_sweep() {
    let app = spawn_app_with(|s| s.sweep_interval = Duration::from_millis(100)).await;
    let c = app.db();
    for at in [START - 91 * 86_400, START - 10] {
        c.execute(
            "INSERT INTO audit (at, event, outcome, detail) VALUES (?1, 'test', 'ok', '')",
            [at],
        )
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let count = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM audit WHERE event = 'test'", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    while count(&c) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&c),
        1,
        "the 91-day-old row goes, the recent one stays"
    );
}

/// The sweep deletes in steps of 1,000 rows per write (so that grants are not held
/// up behind it), and goes on until nothing dead is left.
#[tokio::test]
async fn the_sweep_clears_a_backlog_larger_than_one_step_and_keeps_what_lives() {
    let app = spawn_app_with(|s| s.sweep_interval = Duration::from_millis(100)).await;
    let c = app.db();
    // The backlog comes first, as it would: rows are created in id order, and the
    // sweep stops reading at the first row created after its cutoff.
    c.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
         INSERT INTO sessions (user_id, scope, licensed, created_at, expires_at)
             SELECT (SELECT ID FROM USERS WHERE NICKNAME = 'demo'), 'view', 0, {old}, {old} FROM n;
         INSERT INTO access_tokens (hash, session_id, scope, issued_at, expires_at)
             SELECT randomblob(32), id, 'view', {old}, {old} FROM sessions WHERE expires_at = {old};
         INSERT INTO refresh_tokens (hash, session_id, issued_at)
             SELECT randomblob(32), id, {old} FROM sessions WHERE expires_at = {old};
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
         INSERT INTO audit (at, event, outcome, detail) SELECT {ancient}, 'test', 'ok', '' FROM n;",
        old = START - 2 * 3600,
        ancient = START - 91 * 86_400,
    ))
    .unwrap();
    let dead = |c: &rusqlite::Connection| -> i64 {
        c.query_row(
            &format!(
                "SELECT (SELECT count(*) FROM sessions WHERE expires_at = {old})
                      + (SELECT count(*) FROM access_tokens WHERE expires_at = {old})
                      + (SELECT count(*) FROM refresh_tokens WHERE issued_at = {old})
                      + (SELECT count(*) FROM audit WHERE event = 'test')",
                old = START - 2 * 3600
            ),
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(dead(&c), 10_000);
    let live = app.grant_ok("demo", "demo-secret", None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while dead(&c) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead(&c), 0, "every dead row is gone");
    assert_eq!(app.me(&s(&live["access_token"])).await.status(), 200);
    assert_eq!(app.seats_held(), 1);
}

#[tokio::test]
async fn backup_writes_a_consistent_copy_while_serving() {
    let app = spawn_app().await;
    app.grant_ok("demo", "demo-secret", None).await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    ok(&app, &["backup", copy.to_str().unwrap()]);
    let c = rusqlite::Connection::open(&copy).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let users: i64 = c
        .query_row("SELECT count(*) FROM USERS", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 4);
    assert!(fails(&app, &["backup", copy.to_str().unwrap()]).contains("exists"));
}
