//! `--tls-cert PEM --tls-key PEM` (API.md §6): HTTPS through rustls, with a
//! certificate made here by rcgen and a client that trusts only that certificate.
use super::{serve_cmd, LIMIT};
use crate::helpers::{binary as tollgate, free_port, init_demo, Proc};
use reqwest::{Certificate, Client};
use std::net::SocketAddr;
use std::path::Path;

/// A self-signed certificate for `localhost`, written as PEM files into `dir`.
pub(super) fn certificate(dir: &Path) -> Certificate {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap()
}

fn client(port: u16, root: Option<Certificate>) -> Client {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut b = Client::builder()
        .resolve("localhost", addr)
        .tls_built_in_root_certs(false);
    if let Some(root) = root {
        b = b.add_root_certificate(root);
    }
    b.build().unwrap()
}

#[tokio::test]
async fn tls_serves_the_token_endpoint_over_https_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    let root = certificate(dir.path());
    let port = free_port();
    let tls = ["--tls-cert", "cert.pem", "--tls-key", "key.pem"];
    let mut server = Proc::spawn(serve_cmd(dir.path(), &db, "127.0.0.1", port, &tls));
    server.wait_listening(port, LIMIT);
    let base = format!("https://localhost:{port}");

    let https = client(port, Some(root));
    let r = https
        .post(format!("{base}/token"))
        .basic_auth("demo", Some("demo-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("HTTPS grant: {e:?}; stderr:\n{}", server.stderr()));
    assert_eq!(r.status(), 200);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = https
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    let untrusting = client(port, None);
    let refused = untrusting.get(format!("{base}/healthz")).send().await;
    assert!(
        refused.is_err(),
        "a client that does not trust the certificate got through"
    );
    let plain = client(port, None)
        .get(format!("http://localhost:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP was served on the TLS port"
    );
    assert!(server.stop(LIMIT).success(), "stderr:\n{}", server.stderr());
}

/// Runs `serve` with `extra`, which must fail; returns its stderr.
fn refused_start(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    certificate(dir.path());
    std::fs::write(dir.path().join("junk.pem"), "not a PEM file\n").unwrap();
    let mut p = Proc::spawn(serve_cmd(dir.path(), &db, "127.0.0.1", free_port(), extra));
    let status = p.wait_for_exit(LIMIT).expect("serve should have given up");
    assert!(!status.success(), "served with {extra:?}:\n{}", p.stderr());
    p.stderr()
}

#[tokio::test]
async fn tls_flags_go_together_and_a_bad_pem_is_named() {
    let err = refused_start(&["--tls-cert", "cert.pem"]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = refused_start(&["--tls-key", "key.pem"]);
    assert!(err.contains("--tls-cert"), "{err}");
    let err = refused_start(&["--tls-cert", "junk.pem", "--tls-key", "key.pem"]);
    assert!(
        err.contains("junk.pem") && err.contains("certificate"),
        "{err}"
    );
    let err = refused_start(&["--tls-cert", "cert.pem", "--tls-key", "junk.pem"]);
    assert!(
        err.contains("junk.pem") && err.contains("private key"),
        "{err}"
    );
    let err = refused_start(&["--tls-cert", "cert.pem", "--tls-key", "missing.pem"]);
    assert!(err.contains("missing.pem"), "{err}");

    // The environment twins are checked the same way.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tollgate(dir.path());
    cmd.arg("serve")
        .env("TOLLGATE_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("TOLLGATE_TLS_CERT", "cert.pem");
    let mut p = Proc::spawn(cmd);
    let status = p.wait_for_exit(LIMIT).expect("serve should have given up");
    let err = p.stderr();
    assert!(!status.success() && err.contains("--tls-key"), "{err}");
}
