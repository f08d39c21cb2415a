//! The PostgreSQL engine: several tollgate processes on one database (API.md §9).
//!
//! A bounded pool of native async connections (deadpool-postgres over
//! tokio-postgres); each operation of the store's surface (surface.rs) is one
//! statement or one transaction on a connection from it. Nothing is cached in the
//! process: every grant locks the licence row and re-reads its client's record in its
//! own transaction, so a change made by another instance or by the CLI holds at the
//! next request. The grants are the exception to one operation, one transaction:
//! those waiting at the same moment share one (batch.rs). Audit records wait in a
//! queue and are written in batches.
mod alone;
mod audit;
mod batch;
mod driver;
mod getdata;
mod keys;
mod products;
mod queries;
mod rows;
mod scripts;
mod sessions;
mod shared;
mod surface;
mod users;

use crate::clock::SharedClock;
use crate::store::audit_queue::AuditQueue;
use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("sql/postgres");
}

/// Whether `db` (the `--db` value) names a PostgreSQL database rather than a file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL with its password, if any, replaced by `***`: for logs and banners.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(split) => split,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The connections' start-up `options`: the URL's own if it gives any (else quiet
/// notices: the migrations' "already exists, skipping" are not news), with the
/// statement time limit unless the URL sets one.
fn startup_options(given: Option<&str>, statement_timeout: Option<Duration>) -> String {
    let mut startup = given.unwrap_or("-c client_min_messages=warning").to_owned();
    if let Some(limit) = statement_timeout {
        if !startup.contains("statement_timeout") {
            startup.push_str(&format!(" -c statement_timeout={}", limit.as_millis()));
        }
    }
    startup.trim().to_owned()
}

/// The grant batches' connections: as the others, but their statements are planned
/// once. A statement whose parameter is an array (`id = ANY($1)`) would otherwise be
/// planned again at every run, which cost more than running it.
fn batch_config(config: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut batch = config.clone();
    let given = config.get_options().unwrap_or_default();
    if !given.contains("plan_cache_mode") {
        batch.options(format!("{given} -c plan_cache_mode=force_generic_plan").trim());
    }
    batch
}

/// How a [`PostgresStore`] opens.
#[derive(Debug, Clone)]
pub struct Options {
    /// Connections in the pool at most.
    pub connections: usize,
    /// Threads whose one-statement reads share a connection of their own (the HTTP
    /// workers; shared.rs), beside the pool's.
    pub readers: usize,
    /// How long a request waits for a connection (or for one to be made) before it
    /// is refused as unavailable: a slow or absent database cannot pile up waiters.
    pub wait: Duration,
    /// Run the migrations not yet applied (the server, `init`).
    pub migrate: bool,
    /// Make the schema in a database without one (`init`); otherwise such a database
    /// is refused, so that a mistyped name does not serve a new, empty one.
    pub create: bool,
    /// The longest a statement may run (PostgreSQL's `statement_timeout` for the
    /// connections of the pool; migrations are exempt). A statement that waits on a
    /// lock or a slow server is cancelled and its request answered 503: a request
    /// holding a connection cannot wait without bound, so neither can those queued
    /// behind it.
    pub statement_timeout: Option<Duration>,
    /// GetData's time limit (`--query-time-limit-ms`): each query's `statement_timeout`.
    pub query_time_limit: Duration,
}

impl Options {
    /// An admin command's: two connections, migrations left to `init` and the server.
    pub fn command() -> Self {
        Self {
            connections: 2,
            readers: 1,
            wait: Duration::from_secs(5),
            migrate: false,
            create: false,
            statement_timeout: None,
            query_time_limit: Duration::from_secs(2),
        }
    }

    /// The server's with `workers` HTTP workers: four pooled connections per worker
    /// and one each that its reads share; a request waits up to two seconds for a
    /// connection and a statement runs up to three: a request is answered within
    /// about five seconds however slow the database.
    pub fn server(workers: usize) -> Self {
        Self {
            connections: workers.max(1) * 4,
            readers: workers.max(1),
            wait: Duration::from_secs(2),
            migrate: true,
            create: false,
            statement_timeout: Some(Duration::from_secs(3)),
            query_time_limit: Duration::from_secs(2),
        }
    }
}

/// The PostgreSQL engine's handle; cloning is cheap.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The HTTP workers' shared connections for one-statement reads (shared.rs).
    shared: Arc<shared::Shared>,
    /// The grant batches' own connections, driven by the thread that runs the
    /// batches (driver.rs); the requests' are driven by their HTTP workers.
    batch_pool: Pool,
    config: tokio_postgres::Config,
    clock: SharedClock,
    audit: Arc<AuditQueue>,
    query_time_limit: Duration,
    batch: Arc<batch::Batcher>,
    /// How long a request may wait for a connection ([`Options::wait`]).
    wait: Duration,
}

fn manager_config() -> ManagerConfig {
    ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    }
}

/// A pool of `size` connections at most, each waited for (and made) within `wait`.
fn build_pool(manager: Manager, size: usize, wait: Duration) -> Result<Pool, StoreError> {
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .build()
        .map_err(|e| StoreError::Invalid(format!("connection pool: {e}")))
}

/// Audit records per INSERT.
const AUDIT_BATCH: usize = 1_000;
/// Rows one sweep step deletes at most, per table.
const SWEEP_STEP: i64 = 1_000;
/// Key of the advisory lock that keeps instances starting together from migrating at once.
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465; // "tollgate"

impl PostgresStore {
    /// Connects (bounded by `options.wait`) and migrates if asked to.
    pub async fn open(
        url: &str,
        clock: SharedClock,
        options: &Options,
    ) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", redacted(url))))?;
        config.connect_timeout(options.wait);
        let startup = startup_options(config.get_options(), options.statement_timeout);
        config.options(&startup);
        if config.get_application_name().is_none() {
            config.application_name("tollgate");
        }
        let pool = build_pool(
            Manager::from_config(config.clone(), NoTls, manager_config()),
            options.connections.max(1),
            options.wait,
        )?;
        let shared = shared::Shared::new(
            build_pool(
                Manager::from_config(config.clone(), NoTls, manager_config()),
                options.readers.max(1),
                options.wait,
            )?,
            options.wait,
            // As long as a pooled read may take: its wait, then its statement.
            options.wait + options.statement_timeout.unwrap_or(options.wait),
        );
        let batch_pool = build_pool(
            Manager::from_connect(batch_config(&config), driver::OnDriver, manager_config()),
            batch::CONNECTIONS,
            options.wait,
        )?;
        let store = Self {
            pool,
            shared: Arc::new(shared),
            batch_pool,
            config,
            clock,
            audit: Arc::new(AuditQueue::default()),
            query_time_limit: options.query_time_limit,
            batch: Arc::default(),
            wait: options.wait,
        };
        if !options.create {
            store.check_schema().await?;
        }
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Runs the migrations not yet applied, one instance at a time.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.pool.get().await?;
        // Waiting for another instance's migration, or a long one, is not a slow request.
        c.batch_execute("SET statement_timeout = 0").await?;
        c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let client: &mut tokio_postgres::Client = &mut c;
        let result = embedded::migrations::runner().run_async(client).await;
        c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        c.batch_execute("RESET statement_timeout").await?;
        // refinery's message stops at "db error": the database's own words (what a
        // failed migration asks an administrator to do) are further down the chain.
        result.map_err(|e| {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let s_text = s.to_string();
                if !why.contains(&s_text) {
                    why.push_str(": ");
                    why.push_str(&s_text);
                }
                source = s.source();
            }
            StoreError::Invalid(format!("migration: {why}"))
        })?;
        Ok(())
    }

    /// Whether the database holds tollgate's schema.
    pub async fn has_schema(&self) -> Result<bool, StoreError> {
        let c = self.pool.get().await?;
        let found: Option<String> = c
            .query_one("SELECT to_regclass('licence')::text", &[])
            .await?
            .get(0);
        Ok(found.is_some())
    }

    /// A database without tollgate's schema is refused (`tollgate init URL` makes
    /// it), and so is one a newer tollgate has migrated.
    async fn check_schema(&self) -> Result<(), StoreError> {
        if !self.has_schema().await? {
            return Err(StoreError::Invalid(
                "this PostgreSQL database has no tollgate schema; create it with `tollgate init URL`"
                    .into(),
            ));
        }
        let c = self.pool.get().await?;
        let applied: Option<i32> = c
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])
            .await?
            .get(0);
        let known = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0);
        match applied.filter(|v| i64::from(*v) > i64::from(known)) {
            Some(v) => Err(StoreError::Invalid(format!(
                "this database has schema version {v}, written by a newer tollgate; this binary \
                 knows up to {known}: run the newer binary"
            ))),
            None => Ok(()),
        }
    }

    /// Adds the demo users, seats, products and queries (API.md §6).
    pub async fn seed(&self, iterations: u32, now: i64) -> Result<(), StoreError> {
        use crate::store::demo::{DEMO_QUERIES, DEMO_SEATS, DEMO_USERS, PRODUCTS};
        use crate::store::script::DEMO_SCRIPTS;
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        for (name, secret, api_user, scopes) in DEMO_USERS {
            let hash = crate::crypto::hash_password(secret, iterations);
            let id: i64 = tx
                .query_one(
                    r#"INSERT INTO users (nickname, "PASSWORD", apiuser, enabled, created_at)
                       VALUES ($1, $2, $3, 1, $4) RETURNING id"#,
                    &[name, &hash, &i32::from(*api_user), &now],
                )
                .await?
                .get(0);
            for s in *scopes {
                tx.execute(
                    "INSERT INTO user_scopes (user_id, scope) VALUES ($1, $2)",
                    &[&id, s],
                )
                .await?;
            }
        }
        tx.execute("UPDATE licence SET seats = $1 WHERE id = 1", &[&DEMO_SEATS])
            .await?;
        for (sku, name, desc, price, stock) in PRODUCTS {
            tx.execute(
                "INSERT INTO products (sku, name, description, price_cents, stock, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[sku, name, desc, price, stock, &now],
            )
            .await?;
        }
        for (name, sql, description) in DEMO_QUERIES {
            tx.execute(
                "INSERT INTO queries (name, sql, scope, description, created_at)
                 VALUES ($1, $2, 'view', $3, $4)",
                &[name, sql, description, &now],
            )
            .await?;
        }
        for (name, method, scope, writes, description, source) in DEMO_SCRIPTS {
            tx.execute(
                "INSERT INTO scripts (name, source, method, scope, writes, description, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[name, source, method, scope, writes, description, &now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// `tollgate init URL [--demo]`: tollgate's schema in a database without one,
    /// and the demo data if `demo` gives its PBKDF2 iteration count.
    pub async fn init(url: &str, clock: SharedClock, demo: Option<u32>) -> Result<(), StoreError> {
        let options = Options {
            create: true,
            ..Options::command()
        };
        let store = Self::open(url, clock, &options).await?;
        if store.has_schema().await? {
            return Err(StoreError::Invalid(format!(
                "{} already holds a tollgate database; choose another or drop it first",
                redacted(url)
            )));
        }
        store.migrate().await?;
        if let Some(iterations) = demo {
            store.seed(iterations, store.clock.now()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod testing;
#[cfg(test)]
mod tests;
