//! `tollgate keys list|rotate`: the JWT signing keys (API.md §10).
use super::output::{print_json, print_table};
use super::Ctx;
use crate::clock::rfc3339;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List the signing keys, newest first (never their private halves).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a new signing key: every running instance signs with it from its next
    /// grant; the old key stays in the JWKS until the tokens it signed have expired.
    Rotate,
}

pub fn run(ctx: &mut Ctx, cmd: KeysCmd) -> Result<(), String> {
    match cmd {
        KeysCmd::List { json } => {
            let rows = ctx.admin(|a| a.keys())?;
            if json {
                return print_json(&rows);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|k| {
                    vec![
                        k.kid.clone(),
                        k.alg.to_owned(),
                        k.status.to_owned(),
                        rfc3339(k.created_at),
                        k.retired_at.map(rfc3339).unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["KID", "ALG", "STATUS", "CREATED", "RETIRED"], &table);
            Ok(())
        }
        KeysCmd::Rotate => {
            let kid = ctx.admin(|a| a.rotate_key())?;
            println!("new signing key {kid}; the previous one is retired");
            Ok(())
        }
    }
}
