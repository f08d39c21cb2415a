//! Admin commands a newcomer reaches for (docs/API.md §6): ending many sessions at
//! once, removing a user, changing a user's scopes, and the command line's own
//! words (help, counts, conflicting files).
use crate::helpers::*;

#[tokio::test]
async fn sessions_revoke_client_ends_that_clients_sessions_and_frees_their_seats() {
    let app = spawn_app().await;
    let a = app.grant_ok("demo", "demo-secret", None).await;
    app.grant_ok("demo", "demo-secret", None).await;
    let view = app.grant_ok("viewer", "viewer-secret", None).await;
    assert_oauth_error(
        app.grant("demo", "demo-secret", None).await,
        403,
        "licence_unavailable",
    )
    .await;

    let text = ok(&app, &["sessions", "revoke", "--client", "demo"]);
    assert_eq!(text.trim(), "2 live sessions of demo revoked");
    assert_eq!(app.me(&s(&a["access_token"])).await.status(), 401);
    assert_eq!(app.me(&s(&view["access_token"])).await.status(), 200);
    app.grant_ok("demo", "demo-secret", None).await;

    let err = fails(&app, &["sessions", "revoke", "--client", "nobody"]);
    assert!(err.contains("no user named \"nobody\""), "{err}");
}

#[tokio::test]
async fn sessions_revoke_all_ends_every_live_session() {
    let app = spawn_app().await;
    let a = app.grant_ok("demo", "demo-secret", None).await;
    let view = app.grant_ok("viewer", "viewer-secret", None).await;
    let text = ok(&app, &["sessions", "revoke", "--all"]);
    assert_eq!(text.trim(), "2 live sessions revoked");
    for t in [&a, &view] {
        assert_eq!(app.me(&s(&t["access_token"])).await.status(), 401);
    }
    assert_eq!(app.seats_held(), 0);
    assert_eq!(
        ok(&app, &["sessions", "revoke", "--all"]).trim(),
        "0 live sessions revoked"
    );

    for wrong in [
        vec!["sessions", "revoke"],
        vec!["sessions", "revoke", "--all", "--client", "demo"],
        vec!["sessions", "revoke", "1", "--all"],
    ] {
        let err = fails(&app, &wrong);
        assert!(err.contains("Usage"), "{wrong:?}: {err}");
    }
}

#[tokio::test]
async fn licence_unavailable_says_how_a_seat_comes_free() {
    let app = spawn_app().await;
    app.grant_ok("demo", "demo-secret", None).await;
    app.grant_ok("demo", "demo-secret", None).await;
    let body = assert_oauth_error(
        app.grant("demo", "demo-secret", None).await,
        403,
        "licence_unavailable",
    )
    .await;
    let text = s(&body["error_description"]);
    assert!(
        text.contains("POST /revoke") && text.contains("tollgate sessions revoke"),
        "{text}"
    );
    app.set_seats(0);
    let body = assert_oauth_error(
        app.grant("demo", "demo-secret", None).await,
        403,
        "licence_unavailable",
    )
    .await;
    assert!(
        s(&body["error_description"]).contains("tollgate licences set"),
        "{body}"
    );
}

#[tokio::test]
async fn user_remove_ends_its_sessions_and_its_secret() {
    let app = spawn_app().await;
    let t = app.grant_ok("demo", "demo-secret", None).await;
    let text = ok(&app, &["user", "remove", "demo"]);
    assert_eq!(text.trim(), "demo: removed; 1 live session ended");
    let r = app.me(&s(&t["access_token"])).await;
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "the access token's session has ended"
    );
    assert_eq!(app.seats_held(), 0);
    assert_oauth_error(
        app.grant("demo", "demo-secret", None).await,
        401,
        "invalid_client",
    )
    .await;
    let r = app
        .refresh("demo", "demo-secret", &s(&t["refresh_token"]), None)
        .await;
    assert_eq!(r.status(), 401);
    assert!(!ok(&app, &["user", "list"]).contains("demo"));

    let err = fails(&app, &["user", "remove", "demo"]);
    assert!(err.contains("no user named \"demo\""), "{err}");
    // The name is free again.
    let v = cli_json(&app, &["user", "add", "demo", "--json"]);
    assert_eq!(
        app.grant_ok("demo", &s(&v["client_secret"]), None).await["scope"],
        "view"
    );
}

#[tokio::test]
async fn user_set_scopes_changes_what_the_next_grant_may_have() {
    let app = spawn_app().await;
    assert_oauth_error(
        app.grant("viewer", "viewer-secret", Some("all")).await,
        400,
        "invalid_scope",
    )
    .await;
    let text = ok(
        &app,
        &["user", "set-scopes", "viewer", "--scopes", "view,all"],
    );
    assert_eq!(text.trim(), "viewer: scopes view all");
    assert_eq!(
        app.grant_ok("viewer", "viewer-secret", None).await["scope"],
        "all view"
    );
    ok(&app, &["user", "set-scopes", "viewer", "--scopes", "view"]);
    assert_oauth_error(
        app.grant("viewer", "viewer-secret", Some("all")).await,
        400,
        "invalid_scope",
    )
    .await;

    let err = fails(
        &app,
        &["user", "set-scopes", "viewer", "--scopes", "view,root"],
    );
    assert!(err.contains("unknown scope \"root\""), "{err}");
    let err = fails(&app, &["user", "set-scopes", "nobody", "--scopes", "view"]);
    assert!(err.contains("no user named"), "{err}");
    let err = fails(&app, &["user", "set-scopes", "viewer"]);
    assert!(err.contains("--scopes"), "{err}");
}

#[tokio::test]
async fn counts_of_one_are_singular() {
    let app = spawn_app().await;
    let text = ok(
        &app,
        &[
            "query",
            "add",
            "by_sku",
            "--sql",
            "SELECT sku FROM products WHERE sku = ?1",
        ],
    );
    assert!(text.contains("1 parameter,"), "{text}");
    let err = fails(&app, &["query", "run", "by_sku"]);
    assert!(err.contains("takes 1 parameter;"), "{err}");
    app.grant_ok("viewer", "viewer-secret", None).await;
    let text = ok(&app, &["user", "disable", "viewer"]);
    assert!(text.contains("1 live session ended"), "{text}");
}

#[tokio::test]
async fn help_names_every_argument_and_each_default_once() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let mut cmd = binary(dir.path());
        cmd.args(args).arg("--help");
        let out = run_to_end(cmd);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let audit = help(&["audit"]);
    assert_eq!(audit.matches("default: 1d").count(), 1, "{audit}");
    for (args, arg) in [
        (vec!["user", "add"], "<NAME>"),
        (vec!["user", "remove"], "<NAME>"),
        (vec!["user", "set-scopes"], "<NAME>"),
        (vec!["sessions", "revoke"], "[ID]"),
        (vec!["licences", "set"], "<SEATS>"),
        (vec!["user", "list"], "--json"),
        (vec!["sessions", "list"], "--json"),
    ] {
        let text = help(&args);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(arg))
            .unwrap_or_else(|| panic!("{args:?}: no {arg} in\n{text}"));
        assert!(
            line.trim_start().len() > arg.len() + 2,
            "{args:?}: {arg} has no help text: {line:?}"
        );
    }
    let top = help(&[]);
    assert!(
        top.contains("tollgate serve --listen"),
        "serve's flags work without `serve`: {top}"
    );
}

#[tokio::test]
async fn init_refuses_two_different_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary(dir.path());
    cmd.args(["init", "--db", "a.db", "b.db"]);
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a.db") && stderr.contains("b.db"),
        "{stderr}"
    );
    assert!(!dir.path().join("a.db").exists() && !dir.path().join("b.db").exists());

    // The same file twice, or TOLLGATE_DB naming another, is no conflict.
    let mut cmd = binary(dir.path());
    cmd.args(["init", "--db", "c.db", "c.db"]);
    assert!(run_to_end(cmd).status.success());
    let mut cmd = binary(dir.path());
    cmd.args(["init", "d.db"])
        .env("TOLLGATE_DB", "elsewhere.db");
    assert!(run_to_end(cmd).status.success());
    assert!(dir.path().join("d.db").exists());
}

/// A command's change is in the database file itself when the command exits (not
/// only in its WAL), so copying the file alone keeps it.
#[tokio::test]
async fn a_commands_change_is_in_the_file_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary(dir.path());
    cmd.args(["init", "--demo", "t.db"]);
    assert!(run_to_end(cmd).status.success());
    let mut cmd = binary(dir.path());
    cmd.args([
        "--db",
        "t.db",
        "scope",
        "add",
        "reports",
        "--description",
        "r",
    ]);
    let out = run_to_end(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(dir.path().join("t.db"), dir.path().join("copy.db")).unwrap();
    let c = rusqlite::Connection::open(dir.path().join("copy.db")).unwrap();
    let (scopes, audited): (i64, i64) = c
        .query_row(
            "SELECT (SELECT count(*) FROM scopes WHERE name = 'reports'),
                    (SELECT count(*) FROM audit WHERE event = 'scope.add')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((scopes, audited), (1, 1));
}
