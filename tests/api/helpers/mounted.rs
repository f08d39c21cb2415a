//! API.md §12: one server with several mounts, each seen by the tests as a
//! [`TestApp`] whose base URL is the mount's (its own database, the one clock).
use super::{Engine, PgDb, TestApp, START, TEST_ITERATIONS};
use reqwest::Client;
use std::path::PathBuf;
use std::sync::Arc;
use tollgate::clock::ManualClock;
use tollgate::config::Settings;
use tollgate::mounts::Mount;
use tollgate::startup::Application;
use tollgate::store;

/// The demo database under each `(path, engine)` of `mounts`, served by one server;
/// None when a mount is on PostgreSQL and it is unreachable (and not required).
pub async fn spawn_mounts(test: &str, mounts: &[(&str, Engine)]) -> Option<Vec<TestApp>> {
    spawn_mounts_with(test, mounts, |_| {}).await
}

/// [`spawn_mounts`] with `tweak` applied to the server's settings.
pub async fn spawn_mounts_with(
    test: &str,
    mounts: &[(&str, Engine)],
    tweak: impl FnOnce(&mut Settings),
) -> Option<Vec<TestApp>> {
    let clock = ManualClock::new(START);
    let mut parts = Vec::new();
    for (path, engine) in mounts {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db_path, pg) = match engine {
            Engine::Sqlite => {
                let db_path = dir.path().join("tollgate.db");
                let mut c = store::sqlite::open_migrated(&db_path).expect("create db");
                store::sqlite::demo::seed(&mut c, TEST_ITERATIONS, START).expect("seed");
                (db_path, None)
            }
            Engine::Postgres => {
                let db = Arc::new(PgDb::demo(test)?);
                (PathBuf::from(&db.url), Some(db))
            }
        };
        let mount = Mount {
            path: (*path).to_owned(),
            db: db_path.clone(),
        };
        parts.push((dir, db_path, pg, mount));
    }
    let mut settings = Settings::for_db("unused.db");
    settings.mounts = parts.iter().map(|p| p.3.clone()).collect();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.workers = 1;
    settings.pbkdf2_iterations = TEST_ITERATIONS;
    tweak(&mut settings);
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .expect("build app");
    let origin = format!("http://127.0.0.1:{}", app.port());
    let served = app.mounts();
    tokio::spawn(app.run_until_stopped());
    let apps = parts
        .into_iter()
        .zip(served)
        .map(|((dir, db_path, pg, mount), (settings, _))| TestApp {
            base: format!("{origin}{}", mount.path),
            clock: clock.clone(),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            db_path,
            settings,
            store: None,
            engine: if pg.is_some() {
                Engine::Postgres
            } else {
                Engine::Sqlite
            },
            pg,
            _dir: dir,
        })
        .collect();
    Some(apps)
}

impl TestApp {
    /// The server's origin, without the mount's path.
    pub fn origin(&self) -> String {
        self.base
            .strip_suffix(&self.settings.base_path)
            .unwrap_or(&self.base)
            .to_owned()
    }
}

/// Each test body runs on two mounts of one server, `/Jim_Test` and `/Jim_Live`:
/// both SQLite, then the second on PostgreSQL.
#[macro_export]
macro_rules! on_two_mounts {
    ($($(#[$meta:meta])* async fn $name:ident($a:ident, $b:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::helpers::{spawn_mounts, Engine, TestApp};

            async fn run($a: TestApp, $b: TestApp) $body

            async fn both(engines: [Engine; 2]) {
                let test = module_path!();
                let mounts = [("/Jim_Test", engines[0]), ("/Jim_Live", engines[1])];
                if let Some(apps) = spawn_mounts(test, &mounts).await {
                    let [a, b]: [TestApp; 2] = apps.try_into().ok().unwrap();
                    run(a, b).await
                }
            }

            #[tokio::test]
            async fn sqlite_and_sqlite() {
                both([Engine::Sqlite, Engine::Sqlite]).await
            }

            #[tokio::test]
            async fn sqlite_and_postgres() {
                both([Engine::Sqlite, Engine::Postgres]).await
            }
        }
    )*};
}
