//! `tollgate script ...` (API.md §11): publish, list, withdraw and try script URL
//! handlers.
use super::output::{print_json, print_table};
use super::Ctx;
use crate::store::script::{Script, ScriptError, ScriptRequest};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum ScriptCmd {
    /// Publish a Rhai handler for METHOD /api/v1/custom/NAME; it must compile.
    Add {
        /// The handler's name: [A-Za-z0-9_-], 1 to 64 characters, not a query's.
        name: String,
        /// The Rhai source.
        #[arg(long)]
        file: PathBuf,
        /// The HTTP method it answers: GET, POST, PUT or DELETE.
        #[arg(long, default_value = "GET")]
        method: String,
        /// The scope a token needs (a token with `all` passes any).
        #[arg(long, default_value = "view")]
        scope: String,
        /// It may call execute() on the products table (needs --scope all).
        #[arg(long)]
        writes: bool,
        /// What the handler does, for people.
        #[arg(long, default_value = "")]
        description: String,
        /// Replace a handler of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// List published handlers.
    List {
        /// Print JSON (with each source) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a handler.
    Remove {
        /// The handler's name.
        name: String,
    },
    /// Run a handler as a request with scope `all` would, and print its answer.
    Run {
        /// The handler's name.
        name: String,
        /// A query parameter, KEY=VALUE (repeatable).
        #[arg(long = "query", value_name = "KEY=VALUE")]
        query: Vec<String>,
        /// The request body, JSON.
        #[arg(long)]
        body: Option<String>,
        /// Attach this SQLite file read-only as schema `data`.
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
        /// Time limit, milliseconds: the server's setting of the same name.
        #[arg(long, env = "TOLLGATE_QUERY_TIME_LIMIT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
        query_time_limit_ms: u32,
    },
}

impl ScriptCmd {
    /// The GetData sandbox `script run` reads through, if this command runs one.
    pub fn sandbox(&self) -> Option<(Option<PathBuf>, Duration)> {
        match self {
            ScriptCmd::Run {
                data_db,
                query_time_limit_ms,
                ..
            } => Some((
                data_db.clone(),
                Duration::from_millis((*query_time_limit_ms).into()),
            )),
            _ => None,
        }
    }
}

pub fn run(ctx: &mut Ctx, cmd: ScriptCmd) -> Result<(), String> {
    match cmd {
        ScriptCmd::Add {
            name,
            file,
            method,
            scope,
            writes,
            description,
            replace,
        } => {
            let source = std::fs::read_to_string(&file)
                .map_err(|e| format!("--file {}: {e}", file.display()))?;
            let s = Script {
                name: name.clone(),
                source,
                method: method.to_ascii_uppercase(),
                scope,
                writes,
                description,
                version: 0,
            };
            let created = ctx.admin(|a| a.save_script(s, replace))?;
            let done = if created { "added" } else { "replaced" };
            println!("script {name} {done}");
            Ok(())
        }
        ScriptCmd::List { json } => list(ctx, json),
        ScriptCmd::Remove { name } => {
            ctx.admin(|a| a.remove_script(&name))
                .map_err(|e| format!("{e}; `tollgate script list` shows them"))?;
            println!("script {name} removed");
            Ok(())
        }
        ScriptCmd::Run {
            name, query, body, ..
        } => try_run(ctx, &name, &query, body.as_deref()),
    }
}

fn list(ctx: &Ctx, json: bool) -> Result<(), String> {
    let rows = ctx.admin(|a| a.scripts())?;
    if json {
        return print_json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.method.clone(),
                s.scope.clone(),
                if s.writes { "yes" } else { "no" }.to_owned(),
                s.description.clone(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "METHOD", "SCOPE", "WRITES", "DESCRIPTION"],
        &table,
    );
    Ok(())
}

fn try_run(ctx: &Ctx, name: &str, query: &[String], body: Option<&str>) -> Result<(), String> {
    let s = ctx
        .admin(|a| a.script(name))
        .map_err(|e| format!("{e}; `tollgate script list` shows them"))?;
    let mut params = BTreeMap::new();
    for kv in query {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--query {kv}: expected KEY=VALUE"))?;
        params.insert(k.to_owned(), v.to_owned());
    }
    let body = match body {
        Some(text) => serde_json::from_str(text).map_err(|e| format!("--body: not JSON: {e}"))?,
        None => serde_json::Value::Null,
    };
    let request = ScriptRequest {
        method: s.method.clone(),
        query: params,
        body,
        client_id: "cli".to_owned(),
        scopes: vec!["all".to_owned()],
    };
    match ctx.block(ctx.store.run_script(s, request)) {
        Ok(reply) => {
            println!("{}", reply.status);
            print_json(&reply.body)
        }
        Err(ScriptError::Failed { line, message }) => Err(match line {
            Some(l) => format!("script {name} failed at line {l}: {message}"),
            None => format!("script {name} failed: {message}"),
        }),
        Err(e) => Err(format!("script {name}: {e}")),
    }
}
