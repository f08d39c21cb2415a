//! `tollgate audit`: the audit trail, newest last.
use super::output::{print_json, print_table};
use super::values::parse_duration;
use super::Ctx;
use crate::clock::rfc3339;
use clap::Args;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How far back: seconds, or a number and a unit (30m, 12h, 7d).
    #[arg(long, default_value = "1d", value_name = "DURATION")]
    pub since: String,
    /// Only this client.
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Ctx, a: &AuditArgs) -> Result<(), String> {
    let since = ctx.now - parse_duration(&a.since).map_err(|e| format!("--since {e}"))?;
    let rows = ctx.wait(ctx.store.audit_trail(since, a.client.clone()))?;
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
