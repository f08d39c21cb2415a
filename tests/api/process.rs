//! The real `tollgate` executable as an operator runs it (API.md §1, §2, §6):
//! crash safety of seats and tokens, the committed `sample.db`, first-run
//! behaviour, command-line refusals and the `TOLLGATE_*` environment twins.
use crate::helpers::{binary as tollgate, free_port};
use reqwest::{Client, Response};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const STARTUP_LIMIT: Duration = Duration::from_secs(10);
const REGENERATE: &str = "sample.db is stale: delete it and regenerate it with \
                          `cargo run --release -- init sample.db --demo`";

/// Runs a command that must end by itself, within the startup limit.
pub(crate) fn run_to_end(mut cmd: Command) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    cmd.stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap());
    let mut child = ChildGuard(Some(cmd.spawn().expect("spawn tollgate")));
    let status = child.wait_for_exit(STARTUP_LIMIT);
    let stderr = std::fs::read(&err_path).unwrap();
    let status = status.unwrap_or_else(|| {
        panic!(
            "tollgate did not exit within {STARTUP_LIMIT:?}; stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        )
    });
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr,
    }
}

/// `tollgate init FILE --demo`, which must succeed.
pub(crate) fn init_demo(cwd: &Path, file: &Path) {
    let mut cmd = tollgate(cwd);
    cmd.arg("init").arg(file).arg("--demo");
    let out = run_to_end(cmd);
    assert!(
        out.status.success(),
        "init {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kills (SIGKILL on Unix) and reaps the child when dropped, so no process
/// outlives its test, even a failing one.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already gone")
    }

    /// Polls for the child's exit for at most `limit`.
    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// kill -9 and reap.
    fn kill_9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A running `tollgate` process, its address and a client of its own (a fresh
/// connection pool per process, so nothing is reused across a kill).
pub(crate) struct Server {
    child: ChildGuard,
    base: String,
    pub(crate) client: Client,
    stderr_path: PathBuf,
    stdout_path: PathBuf,
    _logs: TempDir,
}

impl Server {
    /// Spawns `cmd` (which must make the server listen on `port`) and waits,
    /// bounded, until the port answers.
    pub(crate) async fn start(mut cmd: Command, port: u16, base_path: &str) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let stderr_path = logs.path().join("stderr");
        let stdout_path = logs.path().join("stdout");
        cmd.stdout(File::create(&stdout_path).unwrap())
            .stderr(File::create(&stderr_path).unwrap());
        let mut server = Server {
            child: ChildGuard(Some(cmd.spawn().expect("spawn tollgate"))),
            base: format!("http://127.0.0.1:{port}{base_path}"),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            stderr_path,
            stdout_path,
            _logs: logs,
        };
        let deadline = Instant::now() + STARTUP_LIMIT;
        loop {
            // Our child says so once it has bound the port: another process that
            // took the port meanwhile (another test run) is not mistaken for it.
            if server.stderr().contains("tollgate serving")
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return server;
            }
            if let Some(status) = server.child.child().try_wait().unwrap() {
                panic!(
                    "tollgate exited before listening ({status}); stderr:\n{}",
                    server.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "tollgate did not listen on port {port} within {STARTUP_LIMIT:?}; stderr:\n{}",
                    server.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `tollgate --db FILE serve --listen 127.0.0.1:PORT EXTRA…`
    pub(crate) async fn serve(cwd: &Path, db: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let mut cmd = tollgate(cwd);
        cmd.arg("--db")
            .arg(db)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra);
        Server::start(cmd, port, "").await
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the server printed for a person: the start-up banner.
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    fn kill_9(&mut self) {
        self.child.kill_9();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn post_token(&self, form: &[(&str, &str)], user: &str, secret: &str) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.client
            .post(self.url("/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .basic_auth(user, Some(secret))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /token: {e}; stderr:\n{}", self.stderr()))
    }

    /// A licensed grant: demo's default scopes include `all`.
    pub(crate) async fn licensed_grant(&self) -> Response {
        self.post_token(
            &[("grant_type", "client_credentials")],
            "demo",
            "demo-secret",
        )
        .await
    }

    pub(crate) async fn view_grant(&self) -> Response {
        self.post_token(
            &[("grant_type", "client_credentials"), ("scope", "view")],
            "demo",
            "demo-secret",
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            "demo",
            "demo-secret",
        )
        .await
    }

    async fn me(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/api/v1/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/me: {e}; stderr:\n{}", self.stderr()))
    }
}

/// The JSON of a response that must have `status`.
pub(crate) async fn json_with(r: Response, status: u16, what: &str) -> Value {
    let got = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

/// A successful grant's body with its tokens.
pub(crate) async fn granted(r: Response, what: &str) -> (Value, String, String) {
    let body = json_with(r, 200, what).await;
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    (body, access, refresh)
}

/// A 403 licence_unavailable with a whole-seconds Retry-After of at least 1; returns it.
async fn assert_licence_unavailable(r: Response, what: &str) -> u64 {
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json_with(r, 403, what).await;
    assert_eq!(body["error"], "licence_unavailable", "{what}: {body}");
    let retry_after = retry_after.unwrap_or_else(|| panic!("{what}: no Retry-After"));
    let secs: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {retry_after:?} is not whole seconds"));
    assert!(secs >= 1, "{what}: Retry-After {secs}");
    secs
}

fn sample_db() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample.db")
}

fn open_read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", path.display()))
}

/// Every schema object but refinery's bookkeeping, as (type, name, sql), by name.
fn schema(c: &Connection) -> Vec<(String, String, Option<String>)> {
    let mut st = c
        .prepare(
            "SELECT type, name, sql FROM sqlite_master \
             WHERE name NOT LIKE 'refinery%' ORDER BY name",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn seats_and_tokens_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db); // 2 seats out of the box

    let mut first = Server::serve(dir.path(), &db, &[]).await;
    let (body_a, access_a, refresh_a) = granted(first.licensed_grant().await, "grant A").await;
    let (_, access_b, refresh_b) = granted(first.licensed_grant().await, "grant B").await;
    let scope = body_a["scope"].as_str().unwrap_or_default();
    assert!(
        scope.split(' ').any(|s| s == "all"),
        "demo's default grant is licensed: {body_a}"
    );
    assert_licence_unavailable(first.licensed_grant().await, "third grant before the crash").await;

    first.kill_9();
    drop(first);

    let second = Server::serve(dir.path(), &db, &[]).await;
    assert_licence_unavailable(
        second.licensed_grant().await,
        "third grant after kill -9: both seats are still held",
    )
    .await;
    for (name, access) in [("A", &access_a), ("B", &access_b)] {
        let me = json_with(
            second.me(access).await,
            200,
            &format!("access token {name} after kill -9"),
        )
        .await;
        assert_eq!(me["client_id"], "demo", "{me}");
        assert_eq!(me["seat"], true, "{me}");
    }
    for (name, refresh) in [("A", &refresh_a), ("B", &refresh_b)] {
        granted(
            second.refresh(refresh).await,
            &format!("refresh token {name} after kill -9"),
        )
        .await;
    }
    assert_licence_unavailable(
        second.licensed_grant().await,
        "refreshing keeps each session's seat without taking another",
    )
    .await;
    let (view, _, _) = granted(second.view_grant().await, "view grant with every seat held").await;
    assert_eq!(view["scope"], "view", "{view}");
}

#[tokio::test]
async fn expired_seats_are_free_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    let ttls = ["--refresh-ttl", "2", "--access-ttl", "1"];

    let mut first = Server::serve(dir.path(), &db, &ttls).await;
    let (a, _, _) = granted(first.licensed_grant().await, "grant A").await;
    assert_eq!(a["refresh_token_expires_in"], 2, "{a}");
    granted(first.licensed_grant().await, "grant B").await;
    let last_grant = Instant::now();
    let retry = assert_licence_unavailable(first.licensed_grant().await, "third grant").await;
    assert!(
        retry <= 2,
        "a seat frees within the refresh TTL: Retry-After {retry}"
    );
    first.kill_9();
    drop(first);

    // The binary runs on the real clock: let both 2-second sessions lapse.
    let lapse = Duration::from_millis(3100);
    if let Some(rest) = lapse.checked_sub(last_grant.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    let second = Server::serve(dir.path(), &db, &ttls).await;
    granted(
        second.licensed_grant().await,
        "licensed grant after the held seats expired",
    )
    .await;
}

#[tokio::test]
async fn sample_db_answers_the_seed_query_verbatim() {
    let c = open_read_only(&sample_db());
    let mut st = c
        .prepare(r#"SELECT NICKNAME, "PASSWORD" FROM USERS WHERE APIUSER = 1;"#)
        .expect("the §1 query runs on sample.db");
    let mut rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["demo", "viewer"], "API users in sample.db");
    for (name, hash) in &rows {
        assert!(
            hash.starts_with("$pbkdf2-sha256$i=600000$"),
            "{name}'s PASSWORD is not a default-cost PBKDF2 hash: {hash}"
        );
        let parts: Vec<&str> = hash.split('$').collect();
        assert_eq!(
            parts.len(),
            5,
            "{name}: $pbkdf2-sha256$i=N$salt$hash: {hash}"
        );
        assert!(
            !parts[3].is_empty() && !parts[4].is_empty(),
            "{name}: {hash}"
        );
        for secret in ["demo-secret", "viewer-secret", "alice-secret"] {
            assert!(!hash.contains(secret), "{name}'s PASSWORD holds a secret");
        }
    }

    let alice: i64 = c
        .query_row(
            "SELECT APIUSER FROM USERS WHERE NICKNAME = 'alice'",
            [],
            |r| r.get(0),
        )
        .expect("alice is in sample.db");
    assert_eq!(alice, 0, "alice is an ordinary user");
}

#[tokio::test]
async fn sample_db_is_up_to_date_with_the_migrations() {
    let sample = open_read_only(&sample_db());
    let version: i32 = sample
        .query_row(
            "SELECT MAX(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("{REGENERATE} (no migration history: {e})"));
    assert_eq!(
        version,
        tollgate::store::latest_migration(),
        "{REGENERATE} (its latest migration differs from the binary's)"
    );

    let dir = tempfile::tempdir().unwrap();
    let fresh_path = dir.path().join("fresh.db");
    init_demo(dir.path(), &fresh_path);
    let fresh = open_read_only(&fresh_path);
    assert_eq!(
        schema(&sample),
        schema(&fresh),
        "{REGENERATE} (its schema differs from a fresh `tollgate init --demo`)"
    );
}

#[tokio::test]
async fn bare_tollgate_creates_the_demo_database_on_first_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.env("TOLLGATE_LISTEN", format!("127.0.0.1:{port}"));
    let server = Server::start(cmd, port, "").await;

    assert!(
        dir.path().join("tollgate.db").is_file(),
        "./tollgate.db was not created; stderr:\n{}",
        server.stderr()
    );
    let (body, access, _) = granted(server.licensed_grant().await, "demo's grant").await;
    assert_eq!(body["token_type"], "Bearer", "{body}");
    json_with(server.me(&access).await, 200, "/api/v1/me").await;
}

#[tokio::test]
async fn init_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("precious.db");
    std::fs::write(&file, b"not yours to overwrite").unwrap();

    let mut cmd = tollgate(dir.path());
    cmd.arg("init").arg(&file).arg("--demo");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "init over an existing file succeeded"
    );
    assert!(
        stderr.contains("precious.db"),
        "the message names the file: {stderr}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not yours to overwrite",
        "the existing file was changed"
    );
}

#[tokio::test]
async fn serve_refuses_a_bad_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);

    let mut cmd = tollgate(dir.path());
    cmd.arg("--db")
        .arg(&db)
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_port()))
        .arg("--base-path")
        .arg("/a b");
    let out = run_to_end(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "served a bad base path: {stderr}");
    assert!(
        stderr.contains("--base-path"),
        "the message names --base-path: {stderr}"
    );
}

#[tokio::test]
async fn env_twins_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("env.db");
    init_demo(dir.path(), &db);
    let port = free_port();
    let mut cmd = tollgate(dir.path());
    cmd.arg("serve")
        .env("TOLLGATE_DB", &db)
        .env("TOLLGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("TOLLGATE_BASE_PATH", "/Jim_Test")
        .env("TOLLGATE_ACCESS_TTL", "77");
    let server = Server::start(cmd, port, "/Jim_Test").await;

    let (body, _, _) = granted(
        server.licensed_grant().await,
        "POST /Jim_Test/token configured from the environment",
    )
    .await;
    assert_eq!(body["expires_in"], 77, "{body}");
    assert!(
        !dir.path().join("tollgate.db").exists(),
        "TOLLGATE_DB was ignored: ./tollgate.db was created"
    );
}
