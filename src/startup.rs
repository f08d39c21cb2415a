//! Builds the server on a listener: migrations, state, routes, background sweep.
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::hash_password;
use crate::error::StoreError;
use crate::http::{self, AppState};
use crate::oauth::verified::VerifiedCredentials;
use crate::store::{self, demo, Db};
use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpServer};
use std::net::TcpListener;

/// Sessions and tokens dead for longer than this are deleted by the sweep.
const SWEEP_GRACE_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Database { path: String, source: StoreError },
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds `settings.listen` (port 0 picks a free port) and prepares the server.
    pub fn build(settings: Settings, clock: SharedClock) -> Result<Self, StartError> {
        let listener = TcpListener::bind(settings.listen).map_err(|source| StartError::Listen {
            addr: settings.listen.to_string(),
            source,
        })?;
        Self::build_on(listener, settings, clock)
    }

    pub fn build_on(
        listener: TcpListener,
        settings: Settings,
        clock: SharedClock,
    ) -> Result<Self, StartError> {
        let db_err = |source| StartError::Database {
            path: settings.db.display().to_string(),
            source,
        };
        if settings.create_demo_if_missing && !settings.db.exists() {
            log::info!(
                "{} does not exist: creating it with the demo data",
                settings.db.display()
            );
            let mut c = store::open_migrated(&settings.db).map_err(db_err)?;
            demo::seed(&mut c, settings.pbkdf2_iterations, clock.now()).map_err(db_err)?;
        }
        let db = Db::open(&settings.db, (settings.workers * 2) as u32).map_err(db_err)?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let state = web::Data::new(AppState {
            db,
            clock,
            dummy_hash: hash_password("tollgate-dummy-secret", settings.pbkdf2_iterations),
            verified: VerifiedCredentials::default(),
            settings: settings.clone(),
        });
        let data = state.clone();
        let base = settings.base_path.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                // Path only: query strings may carry tokens; headers and bodies never logged.
                .wrap(
                    Logger::new("%a \"%{method}xi %U\" %s %Dms")
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .configure(|cfg| http::routes(cfg, &base))
                .default_service(web::to(http::not_found))
        })
        .workers(settings.workers)
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| StartError::Listen {
            addr: settings.listen.to_string(),
            source,
        })?
        .run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops (SIGINT/SIGTERM: graceful), then checkpoints the WAL.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_loop(self.state.clone()));
        let result = self.server.await;
        sweeper.abort();
        if let Err(e) = self
            .state
            .db
            .write_now(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?))
        {
            log::warn!("WAL checkpoint at shutdown failed: {e}");
        }
        result
    }
}

async fn sweep_loop(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(state.settings.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = state.clock.now();
        match state
            .db
            .write(move |c| store::sweep(c, now, SWEEP_GRACE_SECS))
            .await
        {
            Ok(0) => {}
            Ok(n) => log::debug!("sweep removed {n} dead sessions and tokens"),
            Err(e) => log::warn!("sweep failed: {e}"),
        }
    }
}
