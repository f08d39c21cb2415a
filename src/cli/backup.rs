//! `tollgate backup FILE`: a consistent copy of the database.
use super::Ctx;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The copy to write; it must not exist.
    pub file: PathBuf,
}

/// A consistent copy through SQLite's `VACUUM INTO`, safe while a server runs.
pub fn run(ctx: &Ctx, a: &BackupArgs) -> Result<(), String> {
    if a.file.exists() {
        return Err(format!(
            "{} exists already; name a new file",
            a.file.display()
        ));
    }
    ctx.wait(ctx.store.backup(&a.file))?;
    println!("backed up to {}", a.file.display());
    Ok(())
}
