//! `tollgate scope add|list`: the scopes clients may ask for.
use super::output::{print_json, print_table, yes_no};
use super::Ctx;
use crate::store::ScopeRow;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    /// Add a scope.
    Add {
        /// The scope's name, as clients ask for it.
        name: String,
        /// Tokens with this scope hold a licence seat.
        #[arg(long)]
        licensed: bool,
        /// What the scope allows, for people.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List scopes.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &mut Ctx, cmd: ScopeCmd) -> Result<(), String> {
    match cmd {
        ScopeCmd::List { json } => {
            let rows = ctx.wait(ctx.store.scopes())?;
            if json {
                return print_json(&rows);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|s| vec![s.name.clone(), yes_no(s.licensed), s.description.clone()])
                .collect();
            print_table(&["NAME", "LICENSED", "DESCRIPTION"], &table);
            Ok(())
        }
        ScopeCmd::Add {
            name,
            licensed,
            description,
        } => {
            let row = ScopeRow {
                name: name.clone(),
                description,
                licensed,
            };
            ctx.admin(|a| a.add_scope(row))?;
            println!("scope {name} added");
            Ok(())
        }
    }
}
