//! Graceful shutdown: SIGTERM stops accepting, lets the requests in flight
//! finish, checkpoints the WAL and exits 0, leaving an intact database.
use super::{serve_cmd, LIMIT};
use crate::helpers::{binary, free_port, init_demo_by, Proc};
use base64::Engine;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Demo secrets hashed at this cost take tens of milliseconds each to verify, so a
/// burst of wrong-secret requests (always verified) is still running at SIGTERM.
const SLOW_ITERATIONS: &str = "200000";
const WRONG: usize = 16;
const RIGHT: usize = 8;

/// One `POST /token` on its own connection, written in full before returning.
fn send(port: u16, user_pass: &str, scope: &str) -> TcpStream {
    let body = format!("grant_type=client_credentials&scope={scope}");
    let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// The status line of the whole response, and when it was complete.
fn finish(mut s: TcpStream) -> (String, Instant) {
    let mut response = String::new();
    let read = s.read_to_string(&mut response);
    let done = Instant::now();
    match read {
        Ok(_) => (response.lines().next().unwrap_or("").to_owned(), done),
        Err(e) => (format!("read failed: {e}"), done),
    }
}

#[test]
fn sigterm_during_a_burst_finishes_in_flight_requests_and_exits_0_with_an_intact_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    let mut init = binary(dir.path());
    init.env("TOLLGATE_PBKDF2_ITERATIONS", SLOW_ITERATIONS);
    init_demo_by(init, &db);
    let port = free_port();
    // Neither throttling nor the PBKDF2 queue may cut the burst short here.
    let extra = ["--throttle-failures", "100", "--pbkdf2-queue-ms", "30000"];
    let mut server = Proc::spawn(serve_cmd(dir.path(), &db, "127.0.0.1", port, &extra));
    server.wait_listening(port, LIMIT);

    // Writes (view sessions) and slow verifications, all on the wire before SIGTERM.
    let (tx, rx) = mpsc::channel();
    let mut readers = Vec::new();
    for i in 0..WRONG + RIGHT {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let stream = if i < RIGHT {
                send(port, "demo:demo-secret", "view")
            } else {
                send(port, &format!("demo:wrong-{i}"), "view")
            };
            tx.send(()).unwrap();
            finish(stream)
        }));
    }
    for _ in 0..WRONG + RIGHT {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("request sent");
    }
    std::thread::sleep(Duration::from_millis(250));
    let term = Instant::now();
    server.sigterm();

    let results: Vec<(String, Instant)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let status = server
        .wait_for_exit(LIMIT)
        .unwrap_or_else(|| panic!("no exit after SIGTERM; stderr:\n{}", server.stderr()));
    let stderr = server.stderr();
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");

    let ok = results
        .iter()
        .filter(|r| r.0.starts_with("HTTP/1.1 200"))
        .count();
    let refused = results
        .iter()
        .filter(|r| r.0.starts_with("HTTP/1.1 401"))
        .count();
    assert_eq!((ok, refused), (RIGHT, WRONG), "{results:?}\n{stderr}");
    let after = results.iter().filter(|r| r.1 > term).count();
    assert!(
        after > 0,
        "the burst was over before SIGTERM: the test proves nothing"
    );

    let wal = dir.path().join("tollgate.db-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_len, 0, "the WAL was checkpointed at shutdown");
    let c = rusqlite::Connection::open(&db).unwrap();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let sessions: i64 = c
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sessions, RIGHT as i64, "every answered grant was committed");
}
