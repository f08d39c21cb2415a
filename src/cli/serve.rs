//! `tollgate serve`: its flags (each with a `TOLLGATE_*` twin), the `Settings` they
//! make, and the server run on them.
use super::values::{parse_duration, parse_listen};
use crate::clock::SystemClock;
use crate::config::{
    check_issuer, normalize_base_path, tls_files, AccessTokenFormat, Settings, DEFAULT_DB,
};
use crate::startup::Application;

use clap::{Args, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// `serve --scheduler`: see src/sched.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheduler {
    Batch,
    Normal,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on: a port (8080, meaning 127.0.0.1:8080), HOST:PORT
    /// (localhost:8080, 0.0.0.0:8080) or [IPv6]:PORT.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR",
          value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Prefix for every route, e.g. /Jim_Test.
    #[arg(long, env = "TOLLGATE_BASE_PATH", default_value = "")]
    pub base_path: String,
    /// Serve a database under a path of its own: PATH=DB, DB a SQLite file or a
    /// PostgreSQL URL (repeat; comma-separate in the environment). Not with --db.
    #[arg(long = "mount", env = "TOLLGATE_MOUNTS", value_delimiter = ',', value_name = "PATH=DB",
          value_parser = crate::mounts::parse_mount)]
    pub mounts: Vec<crate::mounts::Mount>,
    /// Access token lifetime: seconds, or a number and a unit (30s, 5m, 12h, 7d).
    #[arg(long, env = "TOLLGATE_ACCESS_TTL", default_value = "300", value_name = "DURATION",
          value_parser = parse_duration)]
    pub access_ttl: i64,
    /// Refresh token (and licence seat) lifetime, as --access-ttl; slides on each refresh.
    #[arg(long, env = "TOLLGATE_REFRESH_TTL", default_value = "1200", value_name = "DURATION",
          value_parser = parse_duration)]
    pub refresh_ttl: i64,
    /// HTTP worker threads [default: number of cores].
    #[arg(long, env = "TOLLGATE_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Issuer URL for server metadata (RFC 8414) [default: http://LISTEN/BASE-PATH].
    #[arg(long, env = "TOLLGATE_ISSUER")]
    pub issuer: Option<String>,
    /// Seconds a dead session or token is kept before the sweep deletes it.
    #[arg(long, env = "TOLLGATE_SWEEP_GRACE", hide = true)]
    pub sweep_grace: Option<u32>,
    /// How long audit-trail rows are kept, as --access-ttl (90d, 12h, 30m).
    #[arg(long, env = "TOLLGATE_AUDIT_RETENTION", default_value = "90d", value_name = "DURATION",
          value_parser = parse_duration)]
    pub audit_retention: i64,
    /// Seconds between sweeps of long-dead sessions and tokens.
    #[arg(long, env = "TOLLGATE_SWEEP_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    pub sweep_interval: u32,
    /// PEM certificate chain: serve HTTPS (RFC 6749 §1.6, §2.3.1). Needs --tls-key.
    #[arg(long, env = "TOLLGATE_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TOLLGATE_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Listen beyond loopback even while the demo users keep their published secrets.
    #[arg(long, env = "TOLLGATE_ALLOW_DEMO_CREDENTIALS",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_demo_credentials: bool,
    /// An existing SQLite file attached read-only as schema `data` for GetData queries.
    #[arg(long, env = "TOLLGATE_DATA_DB")]
    pub data_db: Option<PathBuf>,
    /// A proxy whose X-Forwarded-For is believed (repeat, or comma-separate in the environment).
    #[arg(
        long = "trusted-proxy",
        env = "TOLLGATE_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications per client and address before it is throttled.
    #[arg(long, env = "TOLLGATE_THROTTLE_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub throttle_failures: u32,
    /// How long failed authentications are counted, as --access-ttl.
    #[arg(long, env = "TOLLGATE_THROTTLE_WINDOW", default_value = "300", value_name = "DURATION",
          value_parser = parse_duration)]
    pub throttle_window: i64,
    /// Failed authentications from one address, over all client ids, before the
    /// whole address is throttled.
    #[arg(long, env = "TOLLGATE_THROTTLE_ADDRESS_FAILURES", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub throttle_address_failures: u32,
    /// Open connections in all; past it, new connections are closed at once.
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Open connections from one address (trusted proxies are exempt).
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,
    /// How long a request's whole body may take to arrive, as --access-ttl; a slower
    /// one is answered 408 and its connection closed.
    #[arg(long, env = "TOLLGATE_BODY_TIMEOUT", default_value = "5s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub body_timeout: i64,
    /// Longest throttle block, as --access-ttl (blocks start at 30 s and double).
    #[arg(long, env = "TOLLGATE_THROTTLE_CAP", default_value = "900", value_name = "DURATION",
          value_parser = parse_duration)]
    pub throttle_cap: i64,
    /// How long a request may wait for a PBKDF2 slot before it is answered 503, milliseconds.
    #[arg(long, env = "TOLLGATE_PBKDF2_QUEUE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub pbkdf2_queue_ms: u32,
    /// CPU scheduling of the server's threads (Linux): `batch` (SCHED_BATCH) lets a
    /// thread that hands work on keep the core until it blocks, so work changes threads
    /// in batches (src/sched.rs); `normal` keeps the system default.
    #[arg(long, env = "TOLLGATE_SCHEDULER", value_enum, default_value_t = Scheduler::Batch)]
    pub scheduler: Scheduler,
    /// Access tokens: `opaque` (checked in the database) or `jwt` (RFC 9068, ES256,
    /// checkable offline against /.well-known/jwks.json).
    #[arg(long, env = "TOLLGATE_ACCESS_TOKEN_FORMAT", value_enum, default_value_t = AccessTokenFormat::Opaque)]
    pub access_token_format: AccessTokenFormat,
    /// A JWT access token's `aud` claim [default: the issuer].
    #[arg(long, env = "TOLLGATE_AUDIENCE")]
    pub audience: Option<String>,
    /// GetData time limit per query, milliseconds.
    #[arg(long, env = "TOLLGATE_QUERY_TIME_LIMIT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub query_time_limit_ms: u32,
}

impl ServeArgs {
    /// `serve`'s defaults (with environment twins), for a bare `tollgate`.
    pub fn parse_defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            a: ServeArgs,
        }
        Only::parse_from(["tollgate"]).a
    }

    /// The server's settings: these flags over the built-in defaults, checked.
    /// `db` is the global `--db`; without it the default file is created with the
    /// demo data if it is missing.
    pub fn settings(&self, db: Option<PathBuf>, iterations: u32) -> Result<Settings, String> {
        self.check_mounts(db.as_deref())?;
        let explicit_db = db.is_some() || !self.mounts.is_empty();
        let mut s = Settings::for_db(db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)));
        s.create_demo_if_missing = !explicit_db;
        s.listen = self.listen;
        s.base_path = normalize_base_path(&self.base_path)?;
        s.mounts = self.mounts.clone();
        crate::mounts::check_distinct(&s.mounts)?;
        s.issuer = check_issuer(self.issuer.clone())?;
        s.access_ttl = self.access_ttl;
        s.access_token_format = self.access_token_format;
        s.audience = match self.audience.as_deref().map(str::trim) {
            Some("") => return Err("--audience: give a value, or leave the flag out".into()),
            a => a.map(str::to_owned),
        };
        s.refresh_ttl = self.refresh_ttl;
        s.pbkdf2_iterations = iterations;
        if let Some(w) = self.workers {
            s.workers = w.into();
        }
        s.sweep_interval = std::time::Duration::from_secs(self.sweep_interval.into());
        s.tls = tls_files(self.tls_cert.clone(), self.tls_key.clone())?;
        s.allow_demo_credentials = self.allow_demo_credentials;
        s.audit_retention = self.audit_retention;
        s.sweep_grace = self.sweep_grace.map(i64::from);
        s.data_db = self.data_db.clone();
        s.query_time_limit = std::time::Duration::from_millis(self.query_time_limit_ms.into());
        s.trusted_proxies = self.trusted_proxies.clone();
        s.throttle.max_failures = self.throttle_failures;
        s.throttle.window = self.throttle_window;
        s.throttle.cap = self.throttle_cap;
        s.throttle.address_failures = self.throttle_address_failures;
        s.connections.total = self.max_connections as usize;
        s.connections.per_address = self.max_connections_per_address as usize;
        s.body_timeout = std::time::Duration::from_secs(self.body_timeout.unsigned_abs());
        s.pbkdf2_queue_wait = std::time::Duration::from_millis(self.pbkdf2_queue_ms.into());
        Ok(s)
    }

    /// API.md §12: `--mount` replaces the `--db` + `--base-path` shorthand.
    fn check_mounts(&self, db: Option<&std::path::Path>) -> Result<(), String> {
        if self.mounts.is_empty() {
            return Ok(());
        }
        if let Some(db) = db {
            return Err(format!(
                "--mount and --db ({}) cannot be used together: with --mount every database \
                 is named by its mount (--mount /Jim_Test=test.db); drop --db and TOLLGATE_DB",
                crate::config::db_label(db)
            ));
        }
        if !normalize_base_path(&self.base_path)?.is_empty() {
            return Err(
                "--mount and --base-path cannot be used together: each mount's PATH is \
                        its base path; drop --base-path and TOLLGATE_BASE_PATH"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

pub fn run(db: Option<PathBuf>, iterations: u32, a: &ServeArgs) -> Result<(), String> {
    let settings = a.settings(db, iterations)?;
    for mount in crate::mounts::split(&settings)? {
        if !mount.create_demo_if_missing && crate::config::postgres_url(&mount.db).is_none() {
            // A named database must exist: a typo must not serve a new, empty one.
            crate::store::sqlite::open_existing(&mount.db).map_err(|e| {
                let e = super::err(e);
                if settings.mounts.is_empty() {
                    e
                } else {
                    format!("mount {}: {e}", mount.base_path)
                }
            })?;
        }
    }
    // Before any thread starts: every thread of the server inherits the policy.
    if a.scheduler == Scheduler::Batch {
        match crate::sched::batch_this_thread() {
            Ok(()) => log::debug!("threads run under SCHED_BATCH"),
            Err(e) => log::warn!("cannot run under SCHED_BATCH, keeping the default: {e}"),
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone(), Arc::new(SystemClock))
            .await
            .map_err(|e| e.to_string())?;
        let scheme = if settings.tls.is_some() {
            "https"
        } else {
            "http"
        };
        for (mount, _) in app.mounts() {
            log::info!(
                "tollgate serving {} on {scheme}://{}{}",
                crate::config::db_label(&mount.db),
                settings.listen,
                mount.base_path
            );
        }
        let addr = SocketAddr::new(settings.listen.ip(), app.port());
        super::banner::announce(app.mounts(), addr);
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}
