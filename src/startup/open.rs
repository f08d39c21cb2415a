//! Opening each mount's database and building its state (API.md §12): one store
//! per mount, each refused at start-up with a message that names it.
use super::StartError;
use crate::clock::SharedClock;
use crate::config::{AccessTokenFormat, Settings};
use crate::crypto::{hash_password, verify_password};
use crate::http::metrics::Metrics;
use crate::http::AppState;
use crate::oauth::jwt::{Jwt, JwtSettings};
use crate::oauth::pbkdf2_gate::Verifier;
use crate::oauth::throttle::Throttle;
use crate::oauth::verified::VerifiedCredentials;
use crate::oauth::Authority;
use crate::store::postgres::{self, PostgresStore};
use crate::store::sqlite::{self, demo, SqliteStore};
use crate::store::{SharedStore, StoreError};
use actix_web::web;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// One mount being served: its state, and its SQLite engine for the tests that
/// reach under the store surface (None on PostgreSQL).
pub(super) struct Served {
    pub state: web::Data<AppState>,
    pub sqlite: Option<SqliteStore>,
}

/// Every mount of `settings` opened and checked, in order. On a failure the stores
/// already opened are closed and the error names the mount.
pub(super) async fn open_mounts(
    addr: SocketAddr,
    settings: &Settings,
    clock: &SharedClock,
) -> Result<Vec<Served>, StartError> {
    let per_mount = crate::mounts::split(settings).map_err(StartError::Mounts)?;
    // One PBKDF2 gate for the process: the cores are shared, whatever the mount.
    let verifier = Arc::new(Verifier::new(
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        settings.pbkdf2_queue_wait,
    ));
    let mut served: Vec<Served> = Vec::new();
    for s in per_mount {
        match open_mount(addr, s, clock, verifier.clone()).await {
            Ok(m) => served.push(m),
            Err(e) => {
                served.iter().for_each(|m| m.state.store.close());
                return Err(if settings.mounts.is_empty() {
                    e.1
                } else {
                    StartError::Mount {
                        mount: e.0,
                        source: Box::new(e.1),
                    }
                });
            }
        }
    }
    Ok(served)
}

/// One mount: its store, the exposure check, its state. The error comes with the
/// mount's path.
async fn open_mount(
    addr: SocketAddr,
    settings: Settings,
    clock: &SharedClock,
    verifier: Arc<Verifier>,
) -> Result<Served, (String, StartError)> {
    let path = crate::mounts::label(&settings.base_path).to_owned();
    let fail = |e| (path.clone(), e);
    let db_err = database_error(&settings.db);
    let (store, sqlite) = open_store(&settings, clock).await.map_err(fail)?;
    let checked = check_exposure(addr, &settings, &*store)
        .await
        .map_err(|e| match e {
            Exposure::Demo(users) => StartError::DemoCredentials { addr, users },
            Exposure::Store(source) => db_err(source),
        });
    let state = match checked {
        Ok(()) => app_state(store.clone(), clock.clone(), &settings, verifier).await,
        Err(e) => Err(e),
    };
    match state {
        Ok(state) => Ok(Served { state, sqlite }),
        Err(e) => {
            store.close();
            Err(fail(e))
        }
    }
}

/// The store of `settings.db`: PostgreSQL for a URL, else the SQLite file.
async fn open_store(
    settings: &Settings,
    clock: &SharedClock,
) -> Result<(SharedStore, Option<SqliteStore>), StartError> {
    let db_err = database_error(&settings.db);
    match crate::config::postgres_url(&settings.db) {
        Some(url) => {
            let options = postgres::Options {
                query_time_limit: settings.query_time_limit,
                ..postgres::Options::server(settings.workers)
            };
            // Unreachable at start-up: refused at once with a message that says so
            // (a supervisor restarts it); an outage once serving is answered 503.
            let pg = PostgresStore::open(url, clock.clone(), &options)
                .await
                .map_err(|e| {
                    if e.is_unavailable() {
                        StoreError::Unavailable(format!(
                            "PostgreSQL is unreachable ({e}); start it or correct \
                             --db/TOLLGATE_DB or --mount, then start tollgate again"
                        ))
                    } else {
                        e
                    }
                })
                .map_err(db_err)?;
            Ok((Arc::new(pg), None))
        }
        None => {
            let sqlite = open_sqlite(settings, clock)?;
            Ok((Arc::new(sqlite.clone()), Some(sqlite)))
        }
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
    verifier: Arc<Verifier>,
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
        verifier,
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
        metrics: Metrics::new(crate::mounts::label(&settings.base_path))?,
        settings: settings.clone(),
    }))
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
