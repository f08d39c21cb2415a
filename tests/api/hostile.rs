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
/// (127.0.0.1) is a different address to the server.
async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
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
    for _ in 0..SOCKETS {
        let mut stream = connect_from([127, 0, 0, 2], to).await;
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
    let mut again = connect_from([127, 0, 0, 2], to).await;
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
    let mut kept = connect_from([127, 0, 0, 3], to).await;
    let get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    kept.write_all(get).await.unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let mut flood = Vec::new();
    for i in 0..30u8 {
        let mut s = connect_from([127, 0, 1, i], to).await;
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

/// `tollgate serve --db FILE` on a free port, which must exit within 10 s; its stderr.
fn serve_refuses(db: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = binary(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("serve --db {} kept running", db.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
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
        let c = tollgate::store::open_migrated(&db).unwrap();
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
