//! `tollgate query ...`: publish, list, withdraw and try GetData queries.
use super::output::{count, print_json, print_table};
use super::Ctx;
use crate::store::getdata::Page;
use crate::store::SavedQuery;
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// Publish a read-only query; it is checked now and refused with the reason if unsafe.
    Add {
        /// The query's name: [A-Za-z0-9_-], 1 to 64 characters.
        name: String,
        /// One SELECT, with positional parameters ?1 to ?9.
        #[arg(long)]
        sql: String,
        /// The scope a token needs (a token with `all` passes any).
        #[arg(long, default_value = "view")]
        scope: String,
        /// What the query answers, for people.
        #[arg(long, default_value = "")]
        description: String,
        /// Attach this SQLite file read-only as schema `data` while checking.
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
    },
    /// List published queries.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a query.
    Remove {
        /// The query's name.
        name: String,
    },
    /// Run a query and print its first page.
    Run {
        /// The query's name.
        name: String,
        /// Values for ?1, ?2, …
        params: Vec<String>,
        /// The page, from 1.
        #[arg(long, default_value_t = 1)]
        pageno: u32,
        /// Rows per page, 1 to 500.
        #[arg(long, default_value_t = 50)]
        pagesize: u32,
        /// Print the same document as the HTTP answer.
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Attach this SQLite file read-only as schema `data`.
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
        /// Time limit, milliseconds: the server's setting of the same name.
        #[arg(long, env = "TOLLGATE_QUERY_TIME_LIMIT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
        query_time_limit_ms: u32,
    },
}

impl QueryCmd {
    /// The sandbox this command checks or runs queries in (`--data-db` and the time
    /// limit), if it needs one.
    pub fn sandbox(&self) -> Option<(Option<PathBuf>, Duration)> {
        match self {
            QueryCmd::Add { data_db, .. } => Some((data_db.clone(), Duration::from_secs(2))),
            QueryCmd::Run {
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

pub fn run(ctx: &mut Ctx, cmd: QueryCmd) -> Result<(), String> {
    match cmd {
        QueryCmd::Add {
            name,
            sql,
            scope,
            description,
            ..
        } => add(
            ctx,
            SavedQuery {
                name,
                sql,
                scope,
                description,
            },
        ),
        QueryCmd::List { json } => list(ctx, json),
        QueryCmd::Remove { name } => {
            ctx.admin(|a| a.remove_query(&name))
                .map_err(|e| format!("{e}; `tollgate query list` shows them"))?;
            println!("query {name} removed");
            Ok(())
        }
        QueryCmd::Run {
            name,
            params,
            pageno,
            pagesize,
            json,
            ..
        } => try_run(
            ctx,
            &name,
            &params,
            Page {
                no: pageno.max(1),
                size: pagesize.clamp(1, 500),
            },
            json,
        ),
    }
}

fn add(ctx: &mut Ctx, q: SavedQuery) -> Result<(), String> {
    let (name, scope) = (q.name.clone(), q.scope.clone());
    let (_, n) = ctx.admin(|a| a.save_query(q, false))?;
    println!(
        "query {name} added: {}, scope {scope}",
        count(n, "parameter")
    );
    Ok(())
}

fn list(ctx: &Ctx, json: bool) -> Result<(), String> {
    let rows = ctx.wait(ctx.store.queries())?;
    if json {
        return print_json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|q| {
            vec![
                q.name.clone(),
                q.scope.clone(),
                q.description.clone(),
                q.sql.clone(),
            ]
        })
        .collect();
    print_table(&["NAME", "SCOPE", "DESCRIPTION", "SQL"], &table);
    Ok(())
}

/// Runs a saved query in the store's sandbox and prints its first page.
fn try_run(ctx: &Ctx, name: &str, params: &[String], page: Page, json: bool) -> Result<(), String> {
    let q = ctx
        .wait(ctx.store.saved_query(name))?
        .ok_or_else(|| format!("no query named {name:?}; `tollgate query list` shows them"))?;
    let n = ctx
        .block(ctx.store.query_params(&q.sql))
        .map_err(|e| e.to_string())?;
    if params.len() != n {
        return Err(format!(
            "query {name} takes {}; {} given",
            count(n, "parameter"),
            params.len()
        ));
    }
    let doc = ctx
        .block(ctx.store.run_query(&q.sql, params.to_vec(), page))
        .map_err(|e| e.to_string())?;
    if json {
        return print_json(&doc);
    }
    let set = &doc["resultSets"][0];
    let headers: Vec<&str> = set["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Name"].as_str())
        .collect();
    let rows: Vec<Vec<String>> = set["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r.as_array().into_iter().flatten().map(cell).collect())
        .collect();
    print_table(&headers, &rows);
    Ok(())
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
