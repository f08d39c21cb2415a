//! Builds the server on a listener: migrations, state, routes, TLS; runs it with the
//! store's background maintenance (store/maintenance.rs).
use crate::clock::SharedClock;
use crate::config::AccessTokenFormat;
use crate::config::{ConnectionLimits, Settings, TlsFiles};
use crate::crypto::{hash_password, verify_password};
use crate::http::connections::{self, Admission};
use crate::http::metrics::Metrics;
use crate::http::{self, AppState};
use crate::oauth::jwt::{Jwt, JwtSettings};
use crate::oauth::pbkdf2_gate::Verifier;
use crate::oauth::throttle::Throttle;
use crate::oauth::verified::VerifiedCredentials;
use crate::oauth::Authority;
use crate::store::maintenance::{self, Sweep};
use crate::store::postgres::{self, PostgresStore};
use crate::store::sqlite::{self, demo, SqliteStore};
use crate::store::{SharedStore, StoreError};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

/// Blocking threads per HTTP worker, for PBKDF2 and GetData queries (the SQLite
/// engine's reads and writes have threads of their own: store/sqlite/readers.rs,
/// store/sqlite/writer/).
const BLOCKING_THREADS_PER_WORKER: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Database { path: String, source: StoreError },
    #[error("TLS {path}: {reason}")]
    Tls { path: String, reason: String },
    #[error(
        "{addr} is reachable from other machines and the database still accepts the published \
         demo secret of {users}: anyone could take tokens. Give each a new secret \
         (`tollgate user reset-secret NAME`) or disable it (`tollgate user disable NAME`), or \
         listen on 127.0.0.1; for a throwaway trial only, pass --allow-demo-credentials \
         (TOLLGATE_ALLOW_DEMO_CREDENTIALS=true)"
    )]
    DemoCredentials { addr: SocketAddr, users: String },
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    admission: Arc<Admission>,
    /// The SQLite engine behind the store, for tests that reach under the surface;
    /// None on PostgreSQL.
    sqlite: Option<SqliteStore>,
}

impl Application {
    /// Binds `settings.listen` (port 0 picks a free port) and prepares the server.
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Self, StartError> {
        let listener = TcpListener::bind(settings.listen).map_err(|source| StartError::Listen {
            addr: settings.listen.to_string(),
            source,
        })?;
        Self::build_on(listener, settings, clock).await
    }

    pub async fn build_on(
        listener: TcpListener,
        settings: Settings,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let db_err = database_error(&settings.db);
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
        if let Some(files) = &settings.tls {
            log::info!("HTTPS only, certificate {}", files.cert.display());
        }
        let (store, sqlite): (SharedStore, _) = match crate::config::postgres_url(&settings.db) {
            Some(url) => {
                let options = postgres::Options {
                    query_time_limit: settings.query_time_limit,
                    ..postgres::Options::server((settings.workers * 4).max(4))
                };
                // Unreachable at start-up: refused at once with a message that says so
                // (a supervisor restarts it); an outage once serving is answered 503.
                let pg = PostgresStore::open(url, clock.clone(), &options)
                    .await
                    .map_err(|e| {
                        if e.is_unavailable() {
                            StoreError::Unavailable(format!(
                                "PostgreSQL is unreachable ({e}); start it or correct \
                                 --db/TOLLGATE_DB, then start tollgate again"
                            ))
                        } else {
                            e
                        }
                    })
                    .map_err(db_err)?;
                (Arc::new(pg), None)
            }
            None => {
                let sqlite = open_sqlite(&settings, &clock)?;
                (Arc::new(sqlite.clone()), Some(sqlite))
            }
        };
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: settings.listen.to_string(),
            source,
        })?;
        check_exposure(addr, &settings, &*store)
            .await
            .map_err(|e| match e {
                Exposure::Demo(users) => StartError::DemoCredentials { addr, users },
                Exposure::Store(source) => db_err(source),
            })?;
        let port = addr.port();
        // Port 0 picked a port: the issuer (and a JWT's `iss`) names the real one.
        let mut settings = settings;
        settings.listen = addr;
        let state = app_state(store, clock, &settings).await?;
        let admission = Admission::new(
            connection_limits(settings.connections),
            settings.trusted_proxies.clone(),
        );
        let server = http_server(listener, state.clone(), admission.clone(), tls, &settings)?;
        Ok(Self {
            port,
            server,
            state,
            admission,
            sqlite,
        })
    }
}

/// The SQLite file of `settings`, created with the demo data when it is missing and
/// no file was named.
fn open_sqlite(settings: &Settings, clock: &SharedClock) -> Result<SqliteStore, StartError> {
    let db_err = database_error(&settings.db);
    if settings.create_demo_if_missing && !settings.db.exists() {
        log::info!(
            "{} does not exist: creating it with the demo data",
            settings.db.display()
        );
        let mut c = sqlite::open_migrated(&settings.db).map_err(db_err)?;
        demo::seed(&mut c, settings.pbkdf2_iterations, clock.now()).map_err(db_err)?;
    }
    let options = sqlite::Options {
        readers: (settings.workers * 2) as u32,
        sandbox: settings.workers as u32 + 1,
        data_db: settings.data_db.clone(),
        query_time_limit: settings.query_time_limit,
        create: true,
        checkpointer: true,
    };
    SqliteStore::open(&settings.db, clock.clone(), &options).map_err(db_err)
}

impl Application {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's store.
    pub fn store(&self) -> SharedStore {
        self.state.store.clone()
    }

    /// The SQLite engine under the server's store (tests use it to hold the writer up).
    /// Panics when the server runs on PostgreSQL.
    pub fn sqlite(&self) -> SqliteStore {
        self.sqlite
            .clone()
            .expect("this server's store is not a SQLite engine")
    }

    /// The SQLite engine under the server's store, if it is one.
    pub fn sqlite_engine(&self) -> Option<SqliteStore> {
        self.sqlite.clone()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: graceful), then closes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let state = &self.state;
        let sweep = Sweep {
            interval: state.settings.sweep_interval,
            grace: state.settings.sweep_grace,
            audit_retention: state.settings.audit_retention,
        };
        let sweeper = tokio::spawn(maintenance::sweep_loop(state.store.clone(), sweep));
        let auditor = tokio::spawn(maintenance::audit_loop(state.store.clone()));
        let trimmer = tokio::spawn(memory_loop(self.admission.clone()));
        let result = self.server.await;
        sweeper.abort();
        auditor.abort();
        trimmer.abort();
        self.state.store.close();
        result
    }
}

/// Turns a failure of the database at `path` into the start-up error that names it.
fn database_error(path: &Path) -> impl Fn(StoreError) -> StartError + Copy + '_ {
    move |source| StartError::Database {
        path: crate::config::db_label(path),
        source,
    }
}

/// The state every handler shares: the store, the clock, the grants' authority
/// (decoy hash, verified credentials, throttle, PBKDF2 gate) and the metrics.
async fn app_state(
    store: SharedStore,
    clock: SharedClock,
    settings: &Settings,
) -> Result<web::Data<AppState>, StartError> {
    let db_err = database_error(&settings.db);
    let decoy_iterations = store
        .typical_iterations()
        .await
        .map_err(db_err)?
        .unwrap_or(settings.pbkdf2_iterations);
    let oauth = Authority {
        store: store.clone(),
        clock: clock.clone(),
        verified: VerifiedCredentials::default(),
        verifier: Arc::new(Verifier::new(
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            settings.pbkdf2_queue_wait,
        )),
        throttle: Throttle::new(settings.throttle),
        dummy_hash: hash_password("tollgate-dummy-secret", decoy_iterations),
        access_ttl: settings.access_ttl,
        refresh_ttl: settings.refresh_ttl,
        jwt: Jwt::new(
            store.clone(),
            clock.clone(),
            JwtSettings {
                issue: settings.access_token_format == AccessTokenFormat::Jwt,
                issuer: settings.issuer_url(),
                audience: settings
                    .audience
                    .clone()
                    .unwrap_or_else(|| settings.issuer_url()),
                access_ttl: settings.access_ttl,
            },
        ),
    };
    oauth.jwt.ensure_key().await.map_err(db_err)?;
    Ok(web::Data::new(AppState {
        oauth,
        store,
        clock,
        metrics: Metrics::new()?,
        settings: settings.clone(),
    }))
}

/// The HTTP server on `listener`, running: the route table over `data`, the access
/// log, connection admission, the workers and their blocking pool, TLS if given.
fn http_server(
    listener: TcpListener,
    data: web::Data<AppState>,
    admission: Arc<Admission>,
    tls: Option<rustls::ServerConfig>,
    settings: &Settings,
) -> Result<Server, StartError> {
    let base = settings.base_path.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(http::access_log::observe))
            .configure(|cfg| http::routes(cfg, &base))
            .default_service(web::to(http::not_found))
    })
    .on_connect(move |conn, ext| admission.on_connect(conn, ext))
    .workers(settings.workers)
    // SQLite calls and PBKDF2 run on this pool; waiting for the one writer must not
    // grow it without bound (each idle thread keeps its stack).
    .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
    .shutdown_timeout(10);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config),
        None => server.listen(listener),
    };
    let server = server
        .map_err(|source| StartError::Listen {
            addr: settings.listen.to_string(),
            source,
        })?
        .run();
    Ok(server)
}

/// The connection limits, lowered to fit the process's open-files limit (each
/// connection is a descriptor, and the database and its threads need some too).
fn connection_limits(mut limits: ConnectionLimits) -> ConnectionLimits {
    const RESERVED: usize = 64;
    if let Some(files) = connections::open_files_limit() {
        let room = files.saturating_sub(RESERVED).max(1);
        if limits.total > room {
            log::warn!(
                "--max-connections {} is more than the open-files limit ({files}) allows: \
                 {room} it is; raise the limit (ulimit -n) for more",
                limits.total
            );
            limits.total = room;
        }
    }
    limits
}

/// Once a flood of connections has passed, the memory its buffers took goes back
/// to the system.
async fn memory_loop(admission: Arc<Admission>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        if admission.flood_passed() {
            let _ = tokio::task::spawn_blocking(crate::memory::give_back_freed_memory).await;
        }
    }
}

/// What stops a server from listening where it was asked to.
enum Exposure {
    /// The demo users whose published secrets still work.
    Demo(String),
    Store(StoreError),
}

/// RFC 6749 §2.3.1 and §1.6: client secrets and tokens need TLS once they leave this
/// machine, and the published demo secrets must not open a reachable server.
async fn check_exposure(
    addr: SocketAddr,
    settings: &Settings,
    store: &dyn crate::store::Store,
) -> Result<(), Exposure> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    if settings.tls.is_none() {
        log::warn!(
            "listening on {addr} without TLS: OAuth client secrets and tokens travel in clear \
             text, and RFC 6749 §2.3.1 requires TLS; pass --tls-cert and --tls-key, or listen \
             on 127.0.0.1 behind a TLS-terminating proxy"
        );
    }
    if settings.allow_demo_credentials {
        return Ok(());
    }
    let mut open = Vec::new();
    for (name, secret, _, _) in crate::store::demo::DEMO_USERS {
        let record = store.find_client(name).await.map_err(Exposure::Store)?;
        if record
            .is_some_and(|r| r.api_user && r.enabled && verify_password(secret, &r.password_hash))
        {
            open.push(*name);
        }
    }
    if open.is_empty() {
        Ok(())
    } else {
        Err(Exposure::Demo(open.join(", ")))
    }
}

/// RFC 8446 via rustls with the ring provider: the PEM certificate chain and its key.
fn tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, StartError> {
    let fail = |path: &Path, reason: String| StartError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let why = |e: pem::Error, what: &str| match e {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::NoItemsFound => format!("no PEM {what} in it"),
        e => format!("not a valid PEM {what}: {e}"),
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(&files.cert, why(e, "certificate")))?;
    if certs.is_empty() {
        return Err(fail(
            &files.cert,
            why(pem::Error::NoItemsFound, "certificate"),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| fail(&files.key, why(e, "private key")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            let key = files.key.display();
            fail(
                &files.cert,
                format!("cannot be served with the key in {key}: {e}"),
            )
        })
}
