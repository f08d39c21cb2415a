//! `tollgate audit` and `tollgate backup`.
use super::args::{AuditArgs, BackupArgs};
use super::output::{print_json, print_table};
use super::values::parse_duration;
use super::{err, Ctx};
use crate::clock::rfc3339;
use crate::store::audit;

pub fn show(ctx: &Ctx, a: &AuditArgs) -> Result<(), String> {
    let since = ctx.now - parse_duration(&a.since).map_err(|e| format!("--since {e}"))?;
    let rows = audit::query(&ctx.conn, since, a.client.as_deref()).map_err(err)?;
    if a.json {
        return print_json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                rfc3339(r.at),
                r.event.clone(),
                r.outcome.clone(),
                r.client_id.clone().unwrap_or_default(),
                r.remote.clone().unwrap_or_default(),
                r.detail.clone(),
            ]
        })
        .collect();
    print_table(
        &["TIME", "EVENT", "OUTCOME", "CLIENT", "REMOTE", "DETAIL"],
        &table,
    );
    Ok(())
}

/// A consistent copy through SQLite's `VACUUM INTO`, safe while a server runs.
pub fn backup(ctx: &Ctx, a: &BackupArgs) -> Result<(), String> {
    if a.file.exists() {
        return Err(format!(
            "{} exists already; name a new file",
            a.file.display()
        ));
    }
    let target = a
        .file
        .to_str()
        .ok_or("the backup path must be valid UTF-8")?;
    ctx.conn.execute("VACUUM INTO ?1", [target]).map_err(err)?;
    println!("backed up to {}", a.file.display());
    Ok(())
}
