//! `tollgate init FILE|URL [--demo]`: a new, migrated database.
use crate::clock::{Clock, SystemClock};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::{self, demo};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The file to create (it must not exist yet), or a PostgreSQL URL
    /// (`postgres://…`) of a database without tollgate's schema.
    pub file: PathBuf,
    /// Add the demo users, seats and products.
    #[arg(long)]
    pub demo: bool,
}

/// `db` is `--db` when it was typed: it must not contradict FILE.
pub fn run(a: &InitArgs, db: Option<PathBuf>, iterations: u32) -> Result<(), String> {
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
    if let Some(url) = crate::config::postgres_url(&a.file) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let clock = std::sync::Arc::new(SystemClock);
        runtime
            .block_on(PostgresStore::init(
                url,
                clock,
                a.demo.then_some(iterations),
            ))
            .map_err(|e| e.to_string())?;
        println!(
            "created the tollgate schema in {}{}",
            crate::config::db_label(&a.file),
            if a.demo { " with the demo data" } else { "" }
        );
        return Ok(());
    }
    let mut c = sqlite::open_migrated(&a.file).map_err(|e| e.to_string())?;
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
