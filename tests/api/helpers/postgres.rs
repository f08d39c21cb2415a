//! A fresh PostgreSQL database per test, on the server CI and developers run
//! (`TOLLGATE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped when the test ends. Without a reachable server the PostgreSQL half of the
//! suite is skipped, and says so, unless `TOLLGATE_TEST_REQUIRE_POSTGRES=1`: then it fails.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// One throw-away database: `url` reaches it.
pub struct PgDb {
    pub url: String,
    name: String,
    admin: String,
}

pub fn admin_url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn required() -> bool {
    std::env::var("TOLLGATE_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Runs `sql` (simple protocol) on `url`, on a thread and runtime of its own, so that
/// sync helpers and `Drop` can call it from inside a test's runtime.
pub fn pg_exec(url: &str, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
            config.connect_timeout(Duration::from_secs(3));
            let (client, conn) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            tokio::spawn(conn);
            let msgs = client
                .simple_query(&sql)
                .await
                .map_err(|e| format!("{sql}: {e}"))?;
            Ok(msgs
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    _ => None,
                })
                .collect())
        })
    })
    .join()
    .unwrap()
}

impl PgDb {
    /// A new, empty database; None (after saying so) when PostgreSQL is unreachable
    /// and not required.
    pub fn create(test: &str) -> Option<PgDb> {
        static N: AtomicU64 = AtomicU64::new(0);
        let admin = admin_url();
        let name = format!(
            "tollgate_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        if let Err(e) = pg_exec(&admin, &format!("CREATE DATABASE {name}")) {
            if required() {
                panic!(
                    "{test}: PostgreSQL is required (TOLLGATE_TEST_REQUIRE_POSTGRES=1) but: {e}"
                );
            }
            // Straight to the process's stderr, past the test harness's capture: a
            // skipped half must be seen even when the test passes.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the PostgreSQL half of {test}: PostgreSQL is unreachable ({e}); \
                 set TOLLGATE_TEST_POSTGRES_URL, or TOLLGATE_TEST_REQUIRE_POSTGRES=1 to fail instead"
            );
            return None;
        }
        let (base, _) = admin.rsplit_once('/').expect("a URL with a database name");
        Some(PgDb {
            url: format!("{base}/{name}"),
            name,
            admin,
        })
    }

    /// A new database with tollgate's schema and the demo data (API.md §6).
    pub fn demo(test: &str) -> Option<PgDb> {
        let db = Self::create(test)?;
        let out = super::child::binary(std::path::Path::new("."))
            .args(["init", &db.url, "--demo"])
            .output()
            .expect("run tollgate init");
        assert!(
            out.status.success(),
            "tollgate init {}: {}",
            db.url,
            String::from_utf8_lossy(&out.stderr)
        );
        Some(db)
    }

    /// Runs SQL on this database; its rows as text.
    pub fn exec(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        pg_exec(&self.url, sql).unwrap()
    }

    /// One number from a query.
    pub fn number(&self, sql: &str) -> i64 {
        self.exec(sql)[0][0].as_deref().unwrap().parse().unwrap()
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = pg_exec(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}
