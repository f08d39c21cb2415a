//! Command-line entry: parse, dispatch, turn failures into a message and an exit code.
pub mod args;
mod audit;
mod licences;
pub mod output;
mod query;
mod users;

use crate::clock::{Clock, SystemClock};
use crate::config::{Cli, Command, InitArgs, Scheduler, ServeArgs, Settings, DEFAULT_DB};
use crate::startup::Application;
use crate::store::{self, demo};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run() -> ExitCode {
    let matches = Cli::command().get_matches_from(with_implicit_serve(std::env::args_os()));
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let db_flag = db_on_command_line(&matches);
    let result = match cli.command {
        Some(Command::Init(a)) => init(
            &a,
            db_flag.then_some(cli.db).flatten(),
            cli.pbkdf2_iterations,
        ),
        Some(Command::Serve(a)) => serve(cli.db, cli.pbkdf2_iterations, &a),
        Some(admin) => Ctx::open(cli.db, cli.pbkdf2_iterations).and_then(|mut ctx| match admin {
            Command::User(c) => users::run(&mut ctx, c),
            Command::Licences(c) => licences::licences(&mut ctx, c),
            Command::Sessions(c) => licences::sessions_cmd(&mut ctx, c),
            Command::Scope(c) => licences::scope(&mut ctx, c),
            Command::Audit(a) => audit::show(&ctx, &a),
            Command::Backup(a) => audit::backup(&ctx, &a),
            Command::Query(c) => {
                let path = ctx.path.clone();
                query::run(&mut ctx, &path, c)
            }
            Command::Serve(_) | Command::Init(_) => unreachable!("dispatched above"),
        }),
        None => {
            let defaults = ServeArgs::parse_defaults();
            serve(cli.db, cli.pbkdf2_iterations, &defaults)
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

/// The options every command takes; anything else before the command is `serve`'s.
const GLOBAL_OPTIONS: [&str; 2] = ["--db", "--pbkdf2-iterations"];

/// `tollgate --listen ADDR` is `tollgate serve --listen ADDR`: when the first
/// argument after the global options is an option other than help or version,
/// `serve` goes in front of it.
pub fn with_implicit_serve(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let mut i = 1;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        let global = GLOBAL_OPTIONS
            .iter()
            .find(|g| arg == **g || arg.starts_with(&format!("{g}=")));
        match global {
            Some(g) if arg == *g => i += 2,
            Some(_) => i += 1,
            None => {
                let help = ["-h", "--help", "-V", "--version"].contains(&arg);
                if arg.starts_with('-') && !help {
                    args.insert(i, OsString::from("serve"));
                }
                break;
            }
        }
    }
    args
}

/// Whether `--db` was typed on this command line (not taken from `TOLLGATE_DB`).
fn db_on_command_line(m: &ArgMatches) -> bool {
    let typed = |m: &ArgMatches| m.value_source("db") == Some(ValueSource::CommandLine);
    typed(m) || m.subcommand().is_some_and(|(_, sub)| typed(sub))
}

impl ServeArgs {
    /// `serve`'s defaults (with environment twins), for a bare `tollgate`.
    fn parse_defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            a: ServeArgs,
        }
        Only::parse_from(["tollgate"]).a
    }
}

fn serve(db: Option<PathBuf>, iterations: u32, a: &ServeArgs) -> Result<(), String> {
    let settings = Settings::from_cli(db, iterations, a)?;
    if !settings.create_demo_if_missing {
        // A named database must exist: a typo must not serve a new, empty one.
        store::open_existing(&settings.db).map_err(err)?;
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
            .map_err(|e| e.to_string())?;
        log::info!(
            "tollgate serving {} on {}://{}{}",
            settings.db.display(),
            if settings.tls.is_some() {
                "https"
            } else {
                "http"
            },
            settings.listen,
            settings.base_path
        );
        let addr = std::net::SocketAddr::new(settings.listen.ip(), app.port());
        crate::banner::announce(settings.clone(), addr);
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

/// `db` is `--db` when it was typed: it must not contradict FILE.
fn init(a: &InitArgs, db: Option<PathBuf>, iterations: u32) -> Result<(), String> {
    if let Some(db) = db.filter(|db| *db != a.file) {
        return Err(format!(
            "init was given two files, --db {} and {}: name the new database once",
            db.display(),
            a.file.display()
        ));
    }
    if a.file.exists() {
        return Err(format!(
            "{} already exists; choose another name or remove it first",
            a.file.display()
        ));
    }
    let mut c = store::open_migrated(&a.file).map_err(|e| e.to_string())?;
    if a.demo {
        demo::seed(&mut c, iterations, SystemClock.now()).map_err(|e| e.to_string())?;
    }
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
        .map_err(|e| e.to_string())?;
    println!(
        "created {}{}",
        a.file.display(),
        if a.demo { " with the demo data" } else { "" }
    );
    Ok(())
}

/// What an admin command works with: the database (which a server may be using
/// at the same moment: WAL and a busy timeout make that safe) and the time.
pub struct Ctx {
    pub conn: rusqlite::Connection,
    pub path: PathBuf,
    pub now: i64,
    pub iterations: u32,
}

impl Ctx {
    fn open(db: Option<PathBuf>, iterations: u32) -> Result<Self, String> {
        let path = db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
        let conn = store::open_existing(&path).map_err(err)?;
        Ok(Self {
            conn,
            path,
            now: SystemClock.now(),
            iterations,
        })
    }
}

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Admin changes go into the audit trail; a failure to record is reported, not fatal.
pub fn audit_admin(ctx: &mut Ctx, event: &str, subject: &str, detail: &str) {
    let row = crate::store::audit::AuditRecord {
        at: ctx.now,
        event: event.to_owned(),
        outcome: "ok".to_owned(),
        client_id: (!subject.is_empty()).then(|| subject.to_owned()),
        remote: Some("cli".to_owned()),
        detail: detail.to_owned(),
    };
    if let Err(e) = crate::store::audit::insert_many(&mut ctx.conn, &[row]) {
        eprintln!("tollgate: warning: could not record this change in the audit trail: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::with_implicit_serve;

    fn implicit(line: &str) -> String {
        let args = line.split(' ').map(std::ffi::OsString::from);
        let out: Vec<String> = with_implicit_serve(args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        out.join(" ")
    }

    #[test]
    fn serve_flags_need_no_serve() {
        assert_eq!(
            implicit("tollgate --listen 9000"),
            "tollgate serve --listen 9000"
        );
        assert_eq!(
            implicit("tollgate --db a.db --listen 9000"),
            "tollgate --db a.db serve --listen 9000"
        );
        assert_eq!(
            implicit("tollgate --db=a.db --access-ttl 5m"),
            "tollgate --db=a.db serve --access-ttl 5m"
        );
        for unchanged in [
            "tollgate",
            "tollgate --db a.db",
            "tollgate serve --listen 9000",
            "tollgate --db a.db user list",
            "tollgate --help",
            "tollgate -V",
            "tollgate user --listen 1",
        ] {
            assert_eq!(implicit(unchanged), unchanged);
        }
    }
}
