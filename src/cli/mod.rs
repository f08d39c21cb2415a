//! Command-line entry: parse, dispatch, turn failures into a message and an exit code.
mod args;
mod audit;
mod backup;
pub mod banner;
mod init;
mod keys;
mod licences;
pub mod output;
mod queries;
mod scopes;
mod scripts;
mod serve;
mod sessions;
mod users;
mod values;

use crate::admin::{Actor, Admin, AdminError};
use crate::clock::{Clock, SystemClock};
use crate::config::{postgres_url, DEFAULT_DB};
use crate::store::postgres::{self, PostgresStore};
use crate::store::sqlite::{self, SqliteStore};
use crate::store::{SharedStore, StoreError};
use args::{db_on_command_line, with_implicit_serve, Cli, Command};
use clap::{CommandFactory, FromArgMatches};
use serve::ServeArgs;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run() -> ExitCode {
    let matches = Cli::command().get_matches_from(with_implicit_serve(std::env::args_os()));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let db_flag = db_on_command_line(&matches);
    let result =
        match cli.command {
            Some(Command::Init(a)) => init::run(
                &a,
                db_flag.then_some(cli.db).flatten(),
                cli.pbkdf2_iterations,
            ),
            Some(Command::Serve(a)) => serve::run(cli.db, cli.pbkdf2_iterations, &a),
            Some(admin) => Ctx::open(cli.db, cli.pbkdf2_iterations, store_options(&admin))
                .and_then(|mut ctx| match admin {
                    Command::User(c) => users::run(&mut ctx, c),
                    Command::Licences(c) => licences::run(&mut ctx, c),
                    Command::Sessions(c) => sessions::run(&mut ctx, c),
                    Command::Scope(c) => scopes::run(&mut ctx, c),
                    Command::Audit(a) => audit::run(&ctx, &a),
                    Command::Backup(a) => backup::run(&ctx, &a),
                    Command::Query(c) => queries::run(&mut ctx, c),
                    Command::Keys(c) => keys::run(&mut ctx, c),
                    Command::Script(c) => scripts::run(&mut ctx, c),
                    Command::Serve(_) | Command::Init(_) => unreachable!("dispatched above"),
                }),
            None => {
                let defaults = ServeArgs::parse_defaults();
                serve::run(cli.db, cli.pbkdf2_iterations, &defaults)
            }
        };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("tollgate: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// How an admin command opens the store: `query add` and `query run` name the
/// GetData sandbox's business database and time limit.
fn store_options(command: &Command) -> sqlite::Options {
    match command {
        Command::Script(c) => match c.sandbox() {
            Some((data_db, limit)) => sqlite::Options::command().with_sandbox(data_db, limit),
            None => sqlite::Options::command(),
        },
        Command::Query(q) => match q.sandbox() {
            Some((data_db, limit)) => sqlite::Options::command().with_sandbox(data_db, limit),
            None => sqlite::Options::command(),
        },
        _ => sqlite::Options::command(),
    }
}

/// What an admin command works with: the store (a server may be using the same
/// database at the same moment: WAL and a busy timeout make that safe on SQLite,
/// transactions on PostgreSQL), a runtime to wait for it on, and the time.
pub struct Ctx {
    pub store: SharedStore,
    /// The operations of API.md §6 on `store`, by the command line.
    admin: Admin,
    /// The SQLite engine under `store`, to leave its file tidy at the end.
    sqlite: Option<SqliteStore>,
    runtime: tokio::runtime::Runtime,
    pub now: i64,
    pub iterations: u32,
}

impl Ctx {
    fn open(
        db: Option<PathBuf>,
        iterations: u32,
        options: sqlite::Options,
    ) -> Result<Self, String> {
        let path = db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
        let clock = std::sync::Arc::new(SystemClock);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(err)?;
        let (store, sqlite): (SharedStore, _) = match postgres_url(&path) {
            Some(url) => {
                let options = postgres::Options {
                    query_time_limit: options.query_time_limit,
                    ..postgres::Options::command()
                };
                let open = PostgresStore::open(url, clock, &options);
                (
                    std::sync::Arc::new(runtime.block_on(open).map_err(err)?),
                    None,
                )
            }
            None => {
                let store = SqliteStore::open(&path, clock, &options).map_err(err)?;
                (std::sync::Arc::new(store.clone()), Some(store))
            }
        };
        let now = SystemClock.now();
        Ok(Self {
            admin: Admin::new(store.clone(), Actor::cli(), now, iterations),
            store,
            sqlite,
            runtime,
            now,
            iterations,
        })
    }

    /// Waits for one operation of the store.
    pub fn wait<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, String> {
        self.runtime.block_on(op).map_err(err)
    }

    /// Runs one admin operation (API.md §6) as the command line's actor.
    pub fn admin<'a, T, F>(&'a self, op: impl FnOnce(&'a Admin) -> F) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<T, AdminError>> + 'a,
    {
        self.runtime.block_on(op(&self.admin)).map_err(cli_err)
    }

    /// Waits for a future whose error is not the store's.
    pub fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Some(sqlite) = &self.sqlite {
            sqlite.settle();
        }
    }
}

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// An admin operation's failure, as the command line says it.
pub fn cli_err(e: AdminError) -> String {
    match e {
        AdminError::Invalid { detail, .. } => detail,
        other => other.to_string(),
    }
}
