//! Command-line entry: parse, dispatch, turn failures into a message and an exit code.
use crate::clock::{Clock, SystemClock};
use crate::config::{Cli, Command, InitArgs, ServeArgs, Settings};
use crate::startup::Application;
use crate::store::{self, demo};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Init(a)) => init(&a, cli.pbkdf2_iterations),
        Some(Command::Serve(a)) => serve(cli.db, cli.pbkdf2_iterations, &a),
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
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone(), Arc::new(SystemClock))
            .map_err(|e| e.to_string())?;
        log::info!(
            "tollgate serving {} on http://{}{}",
            settings.db.display(),
            settings.listen,
            settings.base_path
        );
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn init(a: &InitArgs, iterations: u32) -> Result<(), String> {
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
