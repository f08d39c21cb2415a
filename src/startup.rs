//! Builds the server on a listener: migrations, state, routes, TLS; runs it with the
//! stores' background maintenance (store/maintenance.rs). Opening each mount's
//! store and state is in startup/open.rs.
mod open;

use crate::clock::SharedClock;
use crate::config::{ConnectionLimits, Settings, TlsFiles};
use crate::http::connections::{self, Admission};
use crate::http::{self, AppState};
use crate::store::maintenance::{self, Sweep};
use crate::store::sqlite::SqliteStore;
use crate::store::{SharedStore, StoreError};
use actix_web::dev::Server;
use actix_web::{web, HttpServer};
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
    /// API.md §12: the mount whose database stopped the start, named.
    #[error("mount {mount}: {source}")]
    Mount {
        mount: String,
        source: Box<StartError>,
    },
    #[error("{0}")]
    Mounts(String),
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
    /// API.md §12: one per mount, in the order given; one without `--mount`.
    mounts: Vec<open::Served>,
    admission: Arc<Admission>,
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
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
        if let Some(files) = &settings.tls {
            log::info!("HTTPS only, certificate {}", files.cert.display());
        }
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: settings.listen.to_string(),
            source,
        })?;
        // Port 0 picked a port: the issuers name the real one.
        let mut settings = settings;
        settings.listen = addr;
        let mounts = open::open_mounts(addr, &settings, &clock).await?;
        let admission = Admission::new(
            connection_limits(settings.connections),
            settings.trusted_proxies.clone(),
        );
        let states = mounts.iter().map(|m| m.state.clone()).collect();
        let server = http_server(listener, states, admission.clone(), tls, &settings)
            .inspect_err(|_| mounts.iter().for_each(|m| m.state.store.close()))?;
        Ok(Self {
            port: addr.port(),
            server,
            mounts,
            admission,
        })
    }
}

impl Application {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The first mount's store (the only one without `--mount`).
    pub fn store(&self) -> SharedStore {
        self.mounts[0].state.store.clone()
    }

    /// API.md §12: each mount's settings (its path in `base_path`, its database in
    /// `db`) and store, in the order given.
    pub fn mounts(&self) -> Vec<(Settings, SharedStore)> {
        self.mounts
            .iter()
            .map(|m| (m.state.settings.clone(), m.state.store.clone()))
            .collect()
    }

    /// The SQLite engine under the first mount's store (tests use it to hold the
    /// writer up). Panics when it runs on PostgreSQL.
    pub fn sqlite(&self) -> SqliteStore {
        self.sqlite_engine()
            .expect("this server's store is not a SQLite engine")
    }

    /// The SQLite engine under the first mount's store, if it is one.
    pub fn sqlite_engine(&self) -> Option<SqliteStore> {
        self.mounts[0].sqlite.clone()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: graceful), then closes every
    /// mount's store. Each mount has its own sweep and audit flush.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let mut loops = Vec::new();
        for m in &self.mounts {
            let s = &m.state.settings;
            let sweep = Sweep {
                interval: s.sweep_interval,
                grace: s.sweep_grace,
                audit_retention: s.audit_retention,
            };
            let store = &m.state.store;
            loops.push(tokio::spawn(maintenance::sweep_loop(store.clone(), sweep)));
            loops.push(tokio::spawn(maintenance::audit_loop(store.clone())));
        }
        loops.push(tokio::spawn(memory_loop(self.admission.clone())));
        let result = self.server.await;
        loops.iter().for_each(|l| l.abort());
        self.mounts.iter().for_each(|m| m.state.store.close());
        result
    }
}

/// The HTTP server on `listener`, running: each mount's route table over its state
/// (http/mounts.rs), the access log, connection admission, the workers and their
/// blocking pool, TLS if given.
fn http_server(
    listener: TcpListener,
    mounts: Vec<web::Data<AppState>>,
    admission: Arc<Admission>,
    tls: Option<rustls::ServerConfig>,
    settings: &Settings,
) -> Result<Server, StartError> {
    let server = HttpServer::new(move || http::mounts::factory(mounts.clone()))
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
