//! Spawns the real server on 127.0.0.1:0 with a temporary SQLite file (or a fresh
//! PostgreSQL database: [`spawn_app_on`]) and a manual clock. `child` and `server`
//! start the built binary instead, for the black-box tests.
#![allow(dead_code)]
use reqwest::{Client, Response};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use tempfile::TempDir;
use tollgate::clock::ManualClock;
use tollgate::config::Settings;
use tollgate::startup::Application;
use tollgate::store;

mod child;
mod mounted;
mod postgres;
mod server;
pub use child::*;
pub use mounted::*;
pub use postgres::*;
pub use server::*;

/// The engine a test's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Low iteration count: tests check behaviour, not PBKDF2's cost.
pub const TEST_ITERATIONS: u32 = 1000;
pub const START: i64 = 1_800_000_000;

pub struct TestApp {
    pub base: String,
    pub clock: ManualClock,
    pub client: Client,
    /// The SQLite file, or the PostgreSQL URL (as `--db` takes either).
    pub db_path: PathBuf,
    pub settings: Settings,
    /// The server's own database handle, on SQLite.
    pub store: Option<store::SqliteStore>,
    pub engine: Engine,
    /// The PostgreSQL database, dropped when the last server on it is.
    pub pg: Option<Arc<PgDb>>,
    _dir: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The demo database (API.md §6) with `tweak` applied to the settings.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("tollgate.db");
    let clock = ManualClock::new(START);
    {
        let mut c = store::sqlite::open_migrated(&db_path).expect("create db");
        store::sqlite::demo::seed(&mut c, TEST_ITERATIONS, START).expect("seed");
    }
    start(dir, db_path, clock, None, tweak).await
}

/// The demo database on `engine`, with `tweak` applied to the settings; None when
/// the engine is PostgreSQL and it is unreachable (and not required: see [`PgDb`]).
pub async fn spawn_app_on(
    engine: Engine,
    test: &str,
    tweak: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    match engine {
        Engine::Sqlite => Some(spawn_app_with(tweak).await),
        Engine::Postgres => {
            let db = Arc::new(PgDb::demo(test)?);
            Some(spawn_on_postgres(&db, ManualClock::new(START), tweak).await)
        }
    }
}

/// Another server on the PostgreSQL database `db`, with its own clock.
pub async fn spawn_on_postgres(
    db: &Arc<PgDb>,
    clock: ManualClock,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    start(dir, PathBuf::from(&db.url), clock, Some(db.clone()), tweak).await
}

async fn start(
    dir: TempDir,
    db_path: PathBuf,
    clock: ManualClock,
    pg: Option<Arc<PgDb>>,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::for_db(&db_path);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.workers = 1;
    settings.pbkdf2_iterations = TEST_ITERATIONS;
    tweak(&mut settings);
    let app = Application::build(settings.clone(), Arc::new(clock.clone()))
        .await
        .expect("build app");
    let base = format!("http://127.0.0.1:{}{}", app.port(), settings.base_path);
    let store = app.sqlite_engine();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        clock,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db_path,
        settings,
        store,
        engine: if pg.is_some() {
            Engine::Postgres
        } else {
            Engine::Sqlite
        },
        pg,
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A direct connection to the server's database, as an admin command would have.
    pub fn db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(&self.db_path).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        c
    }

    /// The server's SQLite engine (tests that hold its writer up).
    pub fn sqlite(&self) -> store::SqliteStore {
        self.store.clone().expect("a server on SQLite")
    }

    pub fn set_seats(&self, n: i64) {
        match &self.pg {
            Some(pg) => {
                pg.exec(&format!("UPDATE licence SET seats = {n}"));
            }
            None => {
                self.db()
                    .execute("UPDATE licence SET seats = ?1", [n])
                    .unwrap();
            }
        }
    }

    /// POST /token with a raw form body and optional Basic credentials.
    pub async fn post_token(&self, body: &str, basic: Option<(&str, &str)>) -> Response {
        let mut rb = self
            .client
            .post(self.url("/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some((u, p)) = basic {
            rb = rb.basic_auth(u, Some(p));
        }
        rb.send().await.expect("request")
    }

    /// client_credentials with Basic auth; `scope` None leaves it out.
    pub async fn grant(&self, user: &str, secret: &str, scope: Option<&str>) -> Response {
        let body = match scope {
            Some(s) => format!(
                "grant_type=client_credentials&scope={}",
                s.replace(' ', "+")
            ),
            None => "grant_type=client_credentials".to_owned(),
        };
        self.post_token(&body, Some((user, secret))).await
    }

    /// A grant that must succeed; returns the token response.
    pub async fn grant_ok(&self, user: &str, secret: &str, scope: Option<&str>) -> Value {
        let r = self.grant(user, secret, scope).await;
        assert_eq!(r.status(), 200, "grant for {user} failed");
        r.json().await.unwrap()
    }

    pub async fn refresh(
        &self,
        user: &str,
        secret: &str,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Response {
        let mut body = format!("grant_type=refresh_token&refresh_token={refresh_token}");
        if let Some(s) = scope {
            body.push_str(&format!("&scope={}", s.replace(' ', "+")));
        }
        self.post_token(&body, Some((user, secret))).await
    }

    pub async fn get_with(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// GET /api/v1/me with the token; the JSON on 200.
    pub async fn me(&self, token: &str) -> Response {
        self.get_with("/api/v1/me", token).await
    }

    pub fn seats_held(&self) -> i64 {
        if let Some(pg) = &self.pg {
            return pg.number(&format!(
                "SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > {}",
                self.clock_now()
            ));
        }
        self.db()
            .query_row(
                "SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > ?1",
                [self.clock_now()],
                |r| r.get(0),
            )
            .unwrap()
    }

    pub fn clock_now(&self) -> i64 {
        use tollgate::clock::Clock;
        self.clock.now()
    }
}

/// Asserts an OAuth error response: status, `error` code, no-store; returns the body.
pub async fn assert_oauth_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status, "status for {code}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: Value = r.json().await.expect("JSON error body");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string());
    body
}

pub fn s(v: &Value) -> String {
    v.as_str().expect("string").to_owned()
}

/// Runs the built binary on the app's database, as an administrator would while it serves.
pub fn tollgate(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = binary(Path::new("."))
        .args(args)
        .env("TOLLGATE_DB", &app.db_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tollgate");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Runs a command that must succeed; returns its stdout.
pub fn ok(app: &TestApp, args: &[&str]) -> String {
    let out = tollgate(app, args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
pub fn fails(app: &TestApp, args: &[&str]) -> String {
    let out = tollgate(app, args, None);
    assert!(
        !out.status.success(),
        "{args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A command's `--json` output.
pub fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    serde_json::from_str(&ok(app, args)).expect("JSON output")
}

/// Runs each test on both engines: `NAME::sqlite` and `NAME::postgres` (which says
/// it was skipped, and passes, when PostgreSQL is unreachable and not required).
/// The body sees the demo server as `app`; `settings = F;` first applies `F` to
/// every server's settings.
#[macro_export]
macro_rules! on_both_engines {
    (settings = $tweak:expr; $($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::helpers::{spawn_app_on, Engine, TestApp};

            async fn run($app: TestApp) $body

            #[tokio::test]
            async fn sqlite() {
                run(spawn_app_on(Engine::Sqlite, "", $tweak).await.unwrap()).await
            }

            #[tokio::test]
            async fn postgres() {
                let test = module_path!();
                if let Some(app) = spawn_app_on(Engine::Postgres, test, $tweak).await {
                    run(app).await
                }
            }
        }
    )*};
    ($($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block)*) => {
        $crate::on_both_engines! {
            settings = |_| {};
            $($(#[$meta])* async fn $name($app) $body)*
        }
    };
}
