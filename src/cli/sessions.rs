//! `tollgate sessions list|revoke`: live sessions, and ending them.
use super::output::{count, print_json, print_table, yes_no};
use super::Ctx;
use crate::clock::rfc3339;
use crate::store::SessionRow;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// Live sessions.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End sessions: their tokens die and their seats free.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all", "client"])))]
    Revoke {
        /// The session's ID, as `tollgate sessions list` shows it.
        id: Option<i64>,
        /// Every live session.
        #[arg(long)]
        all: bool,
        /// Every live session of this client (its user name).
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
    },
}

pub fn run(ctx: &mut Ctx, cmd: SessionsCmd) -> Result<(), String> {
    match cmd {
        SessionsCmd::List { json } => {
            let rows = ctx.wait(ctx.store.live_sessions())?;
            if json {
                return print_json(&rows);
            }
            print_sessions(&rows, ctx.now);
            Ok(())
        }
        SessionsCmd::Revoke { id: Some(id), .. } => {
            ctx.admin(|a| a.end_session(id))
                .map_err(|e| format!("{e}; `tollgate sessions list` shows them"))?;
            println!("session {id} revoked");
            Ok(())
        }
        SessionsCmd::Revoke { client, .. } => revoke_many(ctx, client.as_deref()),
    }
}

/// `sessions revoke --all` (no client) or `--client NAME`.
fn revoke_many(ctx: &mut Ctx, client: Option<&str>) -> Result<(), String> {
    let ended = ctx.admin(|a| a.end_sessions(client))?;
    let whose = client.map_or(String::new(), |name| format!(" of {name}"));
    println!("{}{whose} revoked", count(ended, "live session"));
    Ok(())
}

pub fn print_sessions(rows: &[SessionRow], now: i64) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.client_id.clone(),
                s.scope.clone(),
                yes_no(s.seat),
                rfc3339(s.created_at),
                format!("{} (in {} s)", rfc3339(s.expires_at), s.expires_at - now),
            ]
        })
        .collect();
    print_table(
        &["ID", "CLIENT", "SCOPE", "SEAT", "CREATED", "EXPIRES"],
        &table,
    );
}
