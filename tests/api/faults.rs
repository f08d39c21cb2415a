//! Faults around the server: a full disk, a vanished database file, a writer that
//! is stuck or locked out. Clients are told 503 and to come back; readiness says so;
//! the server recovers by itself when the fault goes.
use crate::helpers::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tollgate::store;

async fn readyz(app: &TestApp) -> (u16, Value) {
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A licensed grant that must be refused as temporarily unavailable.
async fn assert_grant_unavailable(app: &TestApp) {
    let r = app.grant("demo", "demo-secret", Some("all")).await;
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    let body = assert_oauth_error(r, 503, "temporarily_unavailable").await;
    assert!(
        !body["error_description"]
            .as_str()
            .unwrap()
            .contains("sqlite"),
        "no internals in the answer: {body}"
    );
}

async fn put_nut(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .put(app.url("/api/v1/products/NUT-M6"))
        .bearer_auth(token)
        .json(&json!({"sku": "NUT-M6", "name": "Hex nut M6", "price_cents": 5, "stock": 9}))
        .send()
        .await
        .unwrap()
}

async fn assert_problem_503(r: reqwest::Response) {
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_stuck_writer_makes_readyz_503_until_it_answers() {
    let app = spawn_app().await;
    assert_eq!(readyz(&app).await.0, 200);
    let stuck = app.sqlite();
    let job = tokio::spawn(async move {
        stuck
            .write(|_| {
                std::thread::sleep(Duration::from_secs(4));
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("did not answer"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    job.await.unwrap().unwrap();
    assert_eq!(readyz(&app).await.0, 200);
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_is_503_not_500() {
    let app = spawn_app().await;
    let token = s(&app.grant_ok("demo", "demo-secret", Some("all")).await["access_token"]);
    let holder = app.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(readyz(&app).await.0, 503);
    // The writer waits out SQLite's busy timeout, then gives up: 503, never 500.
    assert_grant_unavailable(&app).await;
    assert_problem_503(put_nut(&app, &token).await).await;
    holder.execute_batch("ROLLBACK").unwrap();
    app.clock.advance(1200);
    assert_eq!(readyz(&app).await.0, 200);
    app.grant_ok("demo", "demo-secret", Some("all")).await;
}

#[tokio::test]
async fn a_deleted_database_file_refuses_writes_loudly_instead_of_losing_them() {
    let app = spawn_app().await;
    app.grant_ok("viewer", "viewer-secret", Some("view")).await;
    let token = s(&app.grant_ok("demo", "demo-secret", Some("all")).await["access_token"]);
    std::fs::remove_file(&app.db_path).unwrap();
    assert_grant_unavailable(&app).await;
    assert_problem_503(put_nut(&app, &token).await).await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("removed or replaced"),
        "{body}"
    );
    // A file put back at the path is not the one the server has open: still refused.
    std::fs::write(&app.db_path, b"").unwrap();
    assert_grant_unavailable(&app).await;
}

/// A small tmpfs of our own, unmounted when dropped; None where mounting is not
/// allowed (not root). CI sets TOLLGATE_TEST_REQUIRE_TMPFS so that it never skips.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(Self { dir });
        }
        assert!(
            std::env::var_os("TOLLGATE_TEST_REQUIRE_TMPFS").is_none(),
            "TOLLGATE_TEST_REQUIRE_TMPFS is set but a tmpfs cannot be mounted here"
        );
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes zeros until the file system is full; the file that holds them.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..512]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_503_with_readyz_503_and_recovers_by_itself() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("SKIPPED a_full_disk_…: mounting a tmpfs needs root (set TOLLGATE_TEST_REQUIRE_TMPFS to fail instead)");
        return;
    };
    let db = disk.path().join("tollgate.db");
    {
        let mut c = store::sqlite::open_migrated(&db).unwrap();
        store::sqlite::demo::seed(&mut c, TEST_ITERATIONS, START).unwrap();
    }
    let app = spawn_app_with(|s| s.db = db.clone()).await;
    // Nothing written since the server started, so its WAL holds no room to reuse:
    // every write needs space the disk no longer has.
    let filler = disk.fill();
    for _ in 0..3 {
        assert_grant_unavailable(&app).await;
    }
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    // Room again: readiness finds out by itself, and grants go through.
    std::fs::remove_file(filler).unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    app.grant_ok("demo", "demo-secret", Some("all")).await;
}
