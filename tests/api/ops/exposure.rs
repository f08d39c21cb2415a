//! Listening beyond loopback: RFC 6749 §2.3.1 wants TLS there, and the published demo
//! secrets (API.md §6) must not open a reachable server unless the operator says so.
use super::{serve_cmd, LIMIT};
use crate::helpers::{free_port, init_demo, Proc};
use std::path::Path;

const CLEAR_TEXT_WARNING: &str = "RFC 6749 §2.3.1 requires TLS";

/// `serve --listen 0.0.0.0:PORT EXTRA…` with `envs`, listening; connects only via loopback.
fn serve_everywhere(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Proc {
    let port = free_port();
    let mut cmd = serve_cmd(dir, &dir.join("tollgate.db"), "0.0.0.0", port, extra);
    cmd.envs(envs.iter().copied());
    let mut p = Proc::spawn(cmd);
    p.wait_listening(port, LIMIT);
    p
}

#[tokio::test]
async fn demo_secrets_beyond_loopback_refuse_to_start_without_allow_demo_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);

    let mut refused = Proc::spawn(serve_cmd(dir.path(), &db, "0.0.0.0", free_port(), &[]));
    let status = refused
        .wait_for_exit(LIMIT)
        .expect("it should refuse at once");
    let err = refused.stderr();
    assert!(!status.success(), "{err}");
    for needle in ["demo, viewer", "--allow-demo-credentials", "reset-secret"] {
        assert!(err.contains(needle), "the refusal says {needle:?}:\n{err}");
    }

    let mut allowed = serve_everywhere(dir.path(), &["--allow-demo-credentials"], &[]);
    assert!(
        allowed.stderr().contains(CLEAR_TEXT_WARNING),
        "{}",
        allowed.stderr()
    );
    let status = allowed.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", allowed.stderr());

    let twin = [("TOLLGATE_ALLOW_DEMO_CREDENTIALS", "true")];
    let mut allowed = serve_everywhere(dir.path(), &[], &twin);
    let status = allowed.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", allowed.stderr());
}

#[tokio::test]
async fn beyond_loopback_starts_once_the_demo_secrets_are_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    let fresh = tollgate::crypto::hash_password("a-secret-nobody-published", 1000);
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            r#"UPDATE USERS SET "PASSWORD" = ?1 WHERE NICKNAME IN ('demo', 'viewer', 'ops')"#,
            [&fresh],
        )
        .unwrap();

    let mut plain = serve_everywhere(dir.path(), &[], &[]);
    assert!(
        plain.stderr().contains(CLEAR_TEXT_WARNING),
        "{}",
        plain.stderr()
    );
    let status = plain.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", plain.stderr());

    super::tls::certificate(dir.path());
    let tls = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
    let mut https = serve_everywhere(dir.path(), &tls, &[]);
    let status = https.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", https.stderr());
    assert!(
        !https.stderr().contains(CLEAR_TEXT_WARNING),
        "{}",
        https.stderr()
    );
}

#[tokio::test]
async fn loopback_serves_the_demo_secrets_without_warnings() {
    let (_dir, _db, _port, mut p) = super::serve_demo(&[]);
    let status = p.stop(LIMIT);
    assert!(status.success(), "{status}; stderr:\n{}", p.stderr());
    let err = p.stderr();
    assert!(!err.contains(CLEAR_TEXT_WARNING), "{err}");
}
