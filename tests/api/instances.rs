//! Several servers on one PostgreSQL database (API.md §9): seats exact across
//! instances, an administrator's change honoured by every instance at its next
//! request, a refresh token usable once at any instance. Each test makes a fresh
//! database and drops it; without PostgreSQL they say they were skipped (and fail
//! instead when `TOLLGATE_TEST_REQUIRE_POSTGRES=1`).
use crate::helpers::*;
use std::sync::Arc;
use tollgate::clock::ManualClock;

/// `n` servers on one fresh demo database, every clock at [`START`].
async fn instances(test: &str, n: usize) -> Option<Vec<TestApp>> {
    let db = Arc::new(PgDb::demo(test)?);
    let mut apps = Vec::new();
    for _ in 0..n {
        apps.push(spawn_on_postgres(&db, ManualClock::new(START), |_| {}).await);
    }
    Some(apps)
}

async fn licensed_grant(app: &TestApp) -> u16 {
    app.client
        .post(app.url("/token"))
        .basic_auth("demo", Some("demo-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=all")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_exact_across_three_instances() {
    let Some(apps) = instances("instances::seats_are_exact_across_three_instances", 3).await else {
        return;
    };
    apps[0].set_seats(5);
    let apps = Arc::new(apps);
    // 15 simultaneous licensed grants, five at each instance.
    let barrier = Arc::new(tokio::sync::Barrier::new(15));
    let tasks: Vec<_> = (0..15)
        .map(|i| {
            let (apps, barrier) = (apps.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                licensed_grant(&apps[i % 3]).await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((ok, refused), (5, 10), "{statuses:?}");
    assert_eq!(apps[1].seats_held(), 5);
    // And still none free at any instance.
    for app in apps.iter() {
        assert_eq!(licensed_grant(app).await, 403);
    }
}

#[tokio::test]
async fn admin_changes_through_the_cli_hold_at_every_instance() {
    let Some(apps) = instances("instances::a_user_disabled_by_the_cli", 2).await else {
        return;
    };
    let (a, b) = (&apps[0], &apps[1]);
    let t = a.grant_ok("demo", "demo-secret", Some("view")).await;
    let access = s(&t["access_token"]);
    // B has verified demo's secret and seen the token: nothing of that may outlive the change.
    b.grant_ok("demo", "demo-secret", Some("view")).await;
    assert_eq!(b.me(&access).await.status(), 200);
    ok(a, &["user", "disable", "demo"]);
    assert_eq!(b.me(&access).await.status(), 401);
    let r = b.grant("demo", "demo-secret", Some("view")).await;
    assert_oauth_error(r, 401, "invalid_client").await;
    // A new secret through the CLI: B's verified record of the old one is worthless.
    ok(a, &["user", "enable", "demo"]);
    b.grant_ok("demo", "demo-secret", Some("view")).await;
    let out = ok(a, &["user", "reset-secret", "demo", "--json"]);
    let secret = s(&serde_json::from_str::<serde_json::Value>(&out).unwrap()["client_secret"]);
    let r = b.grant("demo", "demo-secret", Some("view")).await;
    assert_oauth_error(r, 401, "invalid_client").await;
    b.grant_ok("demo", &secret, Some("view")).await;
    let t = b.grant_ok("demo", &secret, None).await;
    // A new seat count through the CLI holds at the next grant too.
    assert_eq!(b.me(&s(&t["access_token"])).await.status(), 200);
    ok(a, &["sessions", "revoke", "--all"]);
    assert_eq!(b.me(&s(&t["access_token"])).await.status(), 401);
    ok(a, &["licences", "set", "0"]);
    let r = b.grant("demo", &secret, Some("all")).await;
    assert_oauth_error(r, 403, "licence_unavailable").await;
    ok(a, &["licences", "set", "1"]);
    b.grant_ok("demo", &secret, Some("all")).await;
}

#[tokio::test]
async fn a_change_through_one_instance_holds_at_another() {
    let Some(apps) = instances("instances::a_change_through_one_instance", 2).await else {
        return;
    };
    let (a, b) = (&apps[0], &apps[1]);
    let t = b.grant_ok("demo", "demo-secret", None).await;
    // Revoked at A: the refresh token's session ends, at B too.
    let r = a
        .client
        .post(a.url("/revoke"))
        .basic_auth("demo", Some("demo-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={}", s(&t["refresh_token"])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(b.me(&s(&t["access_token"])).await.status(), 401);
    assert_eq!(b.seats_held(), 0);
}

#[tokio::test]
async fn a_refresh_token_reused_at_another_instance_revokes_the_session() {
    let Some(apps) = instances("instances::a_refresh_token_reused", 3).await else {
        return;
    };
    let t = apps[0].grant_ok("demo", "demo-secret", None).await;
    let first = s(&t["refresh_token"]);
    let r = apps[1].refresh("demo", "demo-secret", &first, None).await;
    assert_eq!(r.status(), 200);
    let rotated: serde_json::Value = r.json().await.unwrap();
    assert_eq!(apps[0].me(&s(&rotated["access_token"])).await.status(), 200);
    // The exchanged token again, at a third instance: reuse, and the session ends everywhere.
    let r = apps[2].refresh("demo", "demo-secret", &first, None).await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    assert_eq!(apps[0].me(&s(&rotated["access_token"])).await.status(), 401);
    let r = apps[1]
        .refresh("demo", "demo-secret", &s(&rotated["refresh_token"]), None)
        .await;
    assert_oauth_error(r, 400, "invalid_grant").await;
    assert_eq!(apps[0].seats_held(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_token_presented_at_three_instances_at_once_rotates_once() {
    let Some(apps) = instances("instances::one_refresh_token_at_once", 3).await else {
        return;
    };
    let t = apps[0].grant_ok("demo", "demo-secret", Some("view")).await;
    let token = s(&t["refresh_token"]);
    let apps = Arc::new(apps);
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (apps, token) = (apps.clone(), token.clone());
            tokio::spawn(async move {
                apps[i]
                    .refresh("demo", "demo-secret", &token, None)
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 400, 400]);
}

#[tokio::test]
async fn the_seed_query_answers_verbatim_and_the_commands_work_on_a_url() {
    let Some(apps) = instances("instances::the_seed_query_answers_verbatim", 1).await else {
        return;
    };
    let app = &apps[0];
    let pg = app.pg.as_ref().unwrap();
    let rows = pg.exec(r#"SELECT NICKNAME, "PASSWORD" FROM USERS WHERE APIUSER = 1 ORDER BY 1;"#);
    let names: Vec<_> = rows.iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(names, ["demo", "ops", "viewer"]);
    assert!(rows[0][1]
        .as_deref()
        .unwrap()
        .starts_with("$pbkdf2-sha256$"));
    // init refuses a database that already holds tollgate's schema.
    let err = fails(app, &["init", &pg.url]);
    assert!(err.contains("already holds a tollgate database"), "{err}");
    assert!(!err.contains("PASSWORD"));
    // Admin commands on the URL.
    let out = ok(
        app,
        &["user", "add", "erp", "--scopes", "view,all", "--json"],
    );
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let secret = s(&created["client_secret"]);
    assert_eq!(
        app.grant_ok("erp", &secret, Some("view")).await["scope"],
        "view"
    );
    let users = cli_json(app, &["user", "list", "--json"]);
    assert_eq!(users.as_array().unwrap().len(), 5);
    let sessions = cli_json(app, &["sessions", "list", "--json"]);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    // What this engine does not do yet says so.
    let err = fails(app, &["backup", "copy.db"]);
    assert!(err.contains("pg_dump"), "{err}");
    // GetData runs here too (API.md §7, §9): a query added through the CLI answers
    // over HTTP.
    ok(
        app,
        &[
            "query",
            "add",
            "q",
            "--sql",
            "SELECT sku FROM products ORDER BY sku",
        ],
    );
    let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
    let r = app
        .get_with(
            "/api/v1/custom/getdata?queryname=low-stock&qp1=10",
            &s(&t["access_token"]),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .get_with("/api/v1/custom/q", &s(&t["access_token"]))
        .await;
    assert_eq!(r.status(), 200);
}

/// The sweep deletes what died before the grace period and keeps the rest; audit
/// records queued at one instance are written in one batch, in order.
#[tokio::test]
async fn the_sweep_and_the_audit_trail_on_postgres() {
    use tollgate::store::postgres::{Options, PostgresStore};
    use tollgate::store::{AuditRecord, Store};
    let Some(apps) = instances("instances::the_sweep_and_the_audit_trail", 1).await else {
        return;
    };
    let app = &apps[0];
    let pg = app.pg.as_ref().unwrap();
    let dead = app.grant_ok("demo", "demo-secret", Some("view")).await;
    app.clock.advance(5_000);
    let live = app.grant_ok("demo", "demo-secret", Some("view")).await;
    let clock = ManualClock::new(START + 5_000);
    let store = PostgresStore::open(&pg.url, Arc::new(clock), &Options::command())
        .await
        .unwrap();
    // The first session expired at START + 1200, more than 100 s ago: it goes with its
    // two tokens; the second, alive, stays.
    let (deleted, more) = store.sweep_step(100, 365 * 86_400).await.unwrap();
    assert_eq!((deleted, more), (3, false));
    assert_eq!(pg.number("SELECT count(*) FROM sessions"), 1);
    assert_eq!(pg.number("SELECT count(*) FROM access_tokens"), 1);
    assert_eq!(pg.number("SELECT count(*) FROM refresh_tokens"), 1);
    assert_eq!(app.me(&s(&live["access_token"])).await.status(), 200);
    assert_eq!(app.me(&s(&dead["access_token"])).await.status(), 401);

    for at in 0..2_500 {
        store.audit(AuditRecord {
            at,
            event: "grant.client_credentials".into(),
            outcome: "ok".into(),
            client_id: Some("demo".into()),
            remote: (at % 2 == 0).then(|| "127.0.0.1".into()),
            detail: String::new(),
        });
    }
    store.flush_audit().await.unwrap();
    let trail = store.audit_trail(0, Some("demo".into())).await.unwrap();
    let ats: Vec<i64> = trail
        .iter()
        .map(|r| r.at)
        .filter(|at| *at < 2_500)
        .collect();
    assert_eq!(ats, (0..2_500).collect::<Vec<_>>());
    assert_eq!(trail[1].remote, None);
    assert!(store
        .check_ready(std::time::Duration::from_secs(1))
        .await
        .is_ok());
}

/// PostgreSQL ends the server's connections (an administrator, a failover): a
/// request on a dead connection is told to come back (503), never a 500, and the
/// pool replaces the connections by itself.
#[tokio::test]
async fn connections_ended_by_postgresql_are_replaced() {
    let Some(apps) = instances("instances::connections_ended_by_postgresql", 1).await else {
        return;
    };
    let app = &apps[0];
    let pg = app.pg.as_ref().unwrap();
    let t = app.grant_ok("demo", "demo-secret", Some("view")).await;
    let access = s(&t["access_token"]);
    assert_eq!(app.me(&access).await.status(), 200);
    let ended = pg.number(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND application_name = 'tollgate') t",
    );
    assert!(ended >= 1, "the server held no connection");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            app.grant("demo", "demo-secret", Some("view"))
                .await
                .status()
                .as_u16(),
        );
        statuses.push(app.me(&access).await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert_eq!(statuses[statuses.len() - 2..], [200, 200], "{statuses:?}");
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
