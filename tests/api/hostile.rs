//! Hostile clients: slow bodies, connection floods, odd credentials.
use crate::helpers::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn server_addr(app: &TestApp) -> SocketAddr {
    let port = app
        .base
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap();
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// A connection from another loopback address, so that the test's own client
/// (127.0.0.1) is a different address to the server. Its local port is taken below
/// the ephemeral range where it can (from `port` on): a flood of ephemeral ports
/// would collide with the free ports other tests pick to bind 0.0.0.0.
async fn connect_from(source: [u8; 4], port: &mut u16, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    let mut bound = false;
    while !bound && *port < 32_000 {
        bound = socket.bind(SocketAddr::from((source, *port))).is_ok();
        *port += 1;
    }
    if !bound {
        socket.bind(SocketAddr::from((source, 0))).unwrap();
    }
    socket.connect(to).await.unwrap()
}

/// Sends a request head that promises an 8,000-byte body, and one byte of it.
async fn start_slow_body(stream: &mut TcpStream, path: &str, content_type: &str) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
         Content-Length: 8000\r\n\r\ng"
    );
    // A refused connection may already be closed: the test reads what it was told.
    let _ = stream.write_all(head.as_bytes()).await;
}

/// Everything the server sends until it closes the connection (or `within` passes).
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_body_that_trickles_is_cut_off_with_408() {
    let app = spawn_app_with(|s| s.body_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(server_addr(&app)).await.unwrap();
    let started = Instant::now();
    start_slow_body(&mut stream, "/token", "application/x-www-form-urlencoded").await;
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closes the connection");
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    assert!(answer
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "cut after {waited:?}"
    );
}

#[tokio::test]
async fn a_product_body_that_trickles_is_cut_off_with_a_408_problem() {
    let app = spawn_app_with(|s| s.body_timeout = Duration::from_secs(1)).await;
    let token = s(&app.grant_ok("demo", "demo-secret", Some("all")).await["access_token"]);
    let mut stream = TcpStream::connect(server_addr(&app)).await.unwrap();
    let head = format!(
        "PUT /api/v1/products/NUT-M6 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 8000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closes the connection");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
}

/// A bounded slow-loris: 200 connections from one address, each trickling a body.
/// The address's first 50 are admitted and cut off at the body timeout; the rest
/// are refused at once; meanwhile another address gets its grants as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_from_one_address_is_bounded_and_others_are_served() {
    const SOCKETS: usize = 200;
    let app = spawn_app_with(|s| {
        s.body_timeout = Duration::from_secs(2);
        s.connections.per_address = 50;
    })
    .await;
    let to = server_addr(&app);
    let started = Instant::now();
    let mut attackers = Vec::with_capacity(SOCKETS);
    let mut port = 20_000;
    for _ in 0..SOCKETS {
        let mut stream = connect_from([127, 0, 0, 2], &mut port, to).await;
        start_slow_body(&mut stream, "/token", "application/x-www-form-urlencoded").await;
        attackers.push(stream);
    }
    let opened_in = started.elapsed();
    // While the admitted ones are held open, a client from another address is served.
    let t = Instant::now();
    app.grant_ok("viewer", "viewer-secret", Some("view")).await;
    let grant_took = t.elapsed();
    let readers: Vec<_> = attackers
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move { read_to_close(&mut s, Duration::from_secs(6)).await })
        })
        .collect();
    let (mut timed_out, mut refused, mut other) = (0, 0, Vec::new());
    for r in readers {
        match r.await.unwrap() {
            Some(a) if a.starts_with("HTTP/1.1 408") => timed_out += 1,
            Some(a) if a.starts_with("HTTP/1.1 503") || a.is_empty() => refused += 1,
            a => other.push(a),
        }
    }
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert!(
        opened_in < Duration::from_millis(1500),
        "opening took {opened_in:?}: too slow for the counts below to hold"
    );
    assert_eq!(
        timed_out, 50,
        "the admitted connections are cut off by the body timeout"
    );
    assert_eq!(refused, SOCKETS - 50, "the rest are refused at once");
    assert!(
        grant_took < Duration::from_secs(1),
        "grant took {grant_took:?}"
    );
    // Every place is free again: the same address may connect and be served.
    let mut again = connect_from([127, 0, 0, 2], &mut port, to).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut again, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Past the total, new connections are refused while a connection already open
/// keeps being served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_total_new_connections_are_refused_and_open_ones_served() {
    let app = spawn_app_with(|s| {
        s.body_timeout = Duration::from_secs(3);
        s.connections.total = 20;
    })
    .await;
    let to = server_addr(&app);
    let mut port = 21_000;
    let mut kept = connect_from([127, 0, 0, 3], &mut port, to).await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    kept.write_all(get).await.unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let mut flood = Vec::new();
    for i in 0..30u8 {
        let mut s = connect_from([127, 0, 1, i], &mut port, to).await;
        start_slow_body(&mut s, "/token", "application/x-www-form-urlencoded").await;
        flood.push(s);
    }
    // 19 places were left: the other 11 are told 503 and closed at once.
    let mut refused = 0;
    for s in flood.iter_mut() {
        let mut b = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(300), s.read(&mut b)).await {
            if b[..n].starts_with(b"HTTP/1.1 503") || n == 0 {
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 11);
    kept.write_all(get).await.unwrap();
    let n = kept.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "the open connection is still served"
    );
}

/// `tollgate serve --db FILE` on a free port, which must exit by itself within the
/// startup limit; its stderr.
fn serve_refuses(db: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary(dir.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db);
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    String::from_utf8(out.stderr).unwrap()
}

/// Bytes 18 and 19 of an SQLite header: 1 for a rollback journal, 2 for WAL.
fn journal_bytes(path: &std::path::Path) -> [u8; 2] {
    let b = std::fs::read(path).unwrap();
    [b[18], b[19]]
}

#[test]
fn another_programs_database_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orders.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER); INSERT INTO orders VALUES (1, 5);")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let err = serve_refuses(&db);
    assert!(
        err.contains("not a tollgate database") && err.contains("orders"),
        "{err}"
    );
    assert!(err.contains("orders.db"), "names the file: {err}");
    let out = binary(dir.path())
        .args(["user", "list", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a tollgate database"));
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file changed");
}

#[test]
fn a_database_from_a_newer_tollgate_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("newer.db");
    {
        let c = tollgate::store::sqlite::open_migrated(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode = DELETE;").unwrap();
        c.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (999, 'future', '2030-01-01', '0')",
            [],
        )
        .unwrap();
    }
    assert_eq!(
        journal_bytes(&db),
        [1, 1],
        "set up in rollback-journal mode"
    );
    let before = std::fs::read(&db).unwrap();
    let err = serve_refuses(&db);
    assert!(
        err.contains("schema version 999") && err.contains("newer tollgate"),
        "{err}"
    );
    assert_eq!(journal_bytes(&db), [1, 1], "the header was switched to WAL");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file changed");
}

#[test]
fn an_empty_database_file_is_made_a_tollgate_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("empty.db");
    std::fs::write(&db, b"").unwrap();
    let out = binary(dir.path())
        .args(["licences", "show", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

crate::on_both_engines! {
    async fn a_secret_with_a_control_character_is_refused(app) {
        for secret in ["demo-secret\0", "demo-secret\n", "\tdemo-secret"] {
            let r = app.grant("demo", secret, Some("view")).await;
            assert_oauth_error(r, 401, "invalid_client").await;
        }
        let r = app
            .post_token(
                "grant_type=client_credentials&scope=view&client_id=demo&client_secret=demo-secret%00",
                None,
            )
            .await;
        assert_oauth_error(r, 401, "invalid_client").await;
        app.grant_ok("demo", "demo-secret", Some("view")).await;
    }
}

#[tokio::test]
async fn two_authorization_headers_are_invalid_request() {
    let app = spawn_app().await;
    let basic = |u: &str, p: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let r = app
        .client
        .post(app.url("/token"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", basic("viewer", "viewer-secret"))
        .header("Authorization", basic("demo", "wrong"))
        .body("grant_type=client_credentials&scope=view")
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, 400, "invalid_request").await;
    let token = s(&app.grant_ok("viewer", "viewer-secret", Some("view")).await["access_token"]);
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Authorization", "Bearer another")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_request\""));
}

/// Stored secrets hashed with 1,000 iterations, a server set to 2,000,000: an unknown
/// client must cost what a known one costs, not the server's setting.
#[tokio::test]
async fn an_unknown_client_costs_what_a_stored_secret_costs() {
    let app = spawn_app_with(|s| s.pbkdf2_iterations = 2_000_000).await;
    let timed = |user: &'static str| {
        let app = &app;
        async move {
            let started = Instant::now();
            let r = app.grant(user, "a-wrong-secret", Some("view")).await;
            assert_eq!(r.status(), 401);
            started.elapsed()
        }
    };
    let known = timed("demo").await;
    let unknown = timed("nobody").await;
    assert!(
        unknown < Duration::from_millis(300) && known < Duration::from_millis(300),
        "known {known:?}, unknown {unknown:?}"
    );
}

/// The audit rows of failed grants: (client_id, outcome, detail), oldest first.
async fn failed_grant_rows(app: &TestApp, want: usize) -> Vec<(Option<String>, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows: Vec<(Option<String>, String, String)> = {
            let c = app.db();
            let mut st = c
                .prepare(
                    "SELECT client_id, outcome, detail FROM audit \
                     WHERE event = 'grant.client_credentials' AND outcome <> 'ok' ORDER BY id",
                )
                .unwrap();
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            rows
        };
        if rows.len() >= want || Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failed_sign_in_is_audited_with_the_client_it_named_and_why() {
    let app = spawn_app().await;
    ok(&app, &["user", "disable", "viewer"]);
    let attempts = [
        ("demo", "a-wrong-secret", "wrong secret"),
        ("nobody", "x", "unknown client"),
        ("alice", "alice-secret", "not an API user"),
        ("viewer", "viewer-secret", "disabled user"),
    ];
    let mut bodies = Vec::new();
    for (user, secret, _) in attempts {
        let r = app.grant(user, secret, Some("view")).await;
        bodies.push(assert_oauth_error(r, 401, "invalid_client").await);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every failure answers alike: {bodies:?}"
    );
    let rows = failed_grant_rows(&app, attempts.len()).await;
    assert_eq!(rows.len(), attempts.len(), "{rows:?}");
    for ((user, _, reason), (client, outcome, detail)) in attempts.iter().zip(&rows) {
        assert_eq!(client.as_deref(), Some(*user));
        assert_eq!(outcome, "invalid_client");
        assert!(detail.contains(reason), "{user}: {detail}");
    }
}

crate::on_both_engines! {
    async fn a_secret_given_on_stdin_is_not_echoed_and_control_characters_are_refused(app) {
        for args in [
            &["user", "reset-secret", "demo", "--secret-stdin"][..],
            &["user", "add", "svc", "--secret-stdin"][..],
        ] {
            let out = tollgate(&app, args, Some("chosen-secret-1\n"));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{args:?}");
            assert!(
                !stdout.contains("chosen-secret-1"),
                "{args:?} echoed: {stdout}"
            );
            let mut json_args = args.to_vec();
            json_args.push("--json");
            if args[1] == "add" {
                json_args[2] = "svc2";
            }
            let out = tollgate(&app, &json_args, Some("chosen-secret-1\n"));
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(v.get("client_secret").is_none(), "{v}");
        }
        app.grant_ok("demo", "chosen-secret-1", Some("view")).await;
        // Made by tollgate: shown once, as before.
        let made = cli_json(&app, &["user", "reset-secret", "demo", "--json"]);
        assert!(made["client_secret"].is_string());
        for bad in ["with\0nul\n", "tab\there\n"] {
            let out = tollgate(
                &app,
                &["user", "reset-secret", "demo", "--secret-stdin"],
                Some(bad),
            );
            assert!(!out.status.success());
            assert!(String::from_utf8_lossy(&out.stderr).contains("control characters"));
        }
    }
}
