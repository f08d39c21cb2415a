//! `tollgate query ...`: publish, list, withdraw and try GetData queries.
use super::output::{count, print_json, print_table};
use super::{audit_admin, err, Ctx};
use crate::getdata::{self, Page, RESERVED_QUERY_NAME};
use crate::store::queries::{self, SavedQuery};
use crate::store::users;
use clap::Subcommand;
use serde_json::Value;
use std::path::{Path, PathBuf};
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

pub fn run(ctx: &mut Ctx, db: &Path, cmd: QueryCmd) -> Result<(), String> {
    match cmd {
        QueryCmd::Add {
            name,
            sql,
            scope,
            description,
            data_db,
        } => add(
            ctx,
            db,
            SavedQuery {
                name,
                sql,
                scope,
                description,
            },
            data_db.as_deref(),
        ),
        QueryCmd::List { json } => list(ctx, json),
        QueryCmd::Remove { name } => {
            if !queries::remove(&ctx.conn, &name).map_err(err)? {
                return Err(format!(
                    "no query named {name:?}; `tollgate query list` shows them"
                ));
            }
            audit_admin(ctx, "query.remove", "", &name);
            println!("query {name} removed");
            Ok(())
        }
        QueryCmd::Run {
            name,
            params,
            pageno,
            pagesize,
            json,
            data_db,
            query_time_limit_ms,
        } => try_run(
            ctx,
            &getdata::open_sandbox(db, data_db.as_deref()).map_err(err)?,
            &name,
            &params,
            Page {
                no: pageno.max(1),
                size: pagesize.clamp(1, 500),
            },
            json,
            Duration::from_millis(query_time_limit_ms.into()),
        ),
    }
}

/// The one rule, [`getdata::is_query_name`], with the message that states it.
fn check_name(name: &str) -> Result<(), String> {
    if getdata::is_query_name(name) {
        Ok(())
    } else {
        Err(format!(
            "query name {name:?}: use 1 to 64 of A-Z a-z 0-9 _ - (and not {RESERVED_QUERY_NAME:?})"
        ))
    }
}

fn add(ctx: &mut Ctx, db: &Path, q: SavedQuery, data_db: Option<&Path>) -> Result<(), String> {
    check_name(&q.name)?;
    if !users::scope_names(&ctx.conn)
        .map_err(err)?
        .contains(&q.scope)
    {
        return Err(format!(
            "unknown scope {:?}; `tollgate scope list` shows them",
            q.scope
        ));
    }
    let sandbox = getdata::open_sandbox(db, data_db).map_err(err)?;
    let n = getdata::check(&sandbox, q.sql.trim()).map_err(|e| format!("query {}: {e}", q.name))?;
    let q = SavedQuery {
        sql: q.sql.trim().to_owned(),
        ..q
    };
    if !queries::insert(&ctx.conn, &q, ctx.now).map_err(err)? {
        return Err(format!(
            "a query named {:?} exists already; remove it first",
            q.name
        ));
    }
    audit_admin(
        ctx,
        "query.add",
        "",
        &format!("{} (scope {}, {})", q.name, q.scope, count(n, "parameter")),
    );
    println!(
        "query {} added: {}, scope {}",
        q.name,
        count(n, "parameter"),
        q.scope
    );
    Ok(())
}

fn list(ctx: &Ctx, json: bool) -> Result<(), String> {
    let rows = queries::list(&ctx.conn).map_err(err)?;
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

/// Runs a saved query on `sandbox` (see [`getdata::open_sandbox`]) and prints its first page.
fn try_run(
    ctx: &Ctx,
    sandbox: &rusqlite::Connection,
    name: &str,
    params: &[String],
    page: Page,
    json: bool,
    time_limit: Duration,
) -> Result<(), String> {
    let q = queries::get(&ctx.conn, name)
        .map_err(err)?
        .ok_or_else(|| format!("no query named {name:?}; `tollgate query list` shows them"))?;
    let n = getdata::param_count(sandbox, &q.sql).map_err(err)?;
    if params.len() != n {
        return Err(format!(
            "query {name} takes {}; {} given",
            count(n, "parameter"),
            params.len()
        ));
    }
    let doc = getdata::run(sandbox, &q.sql, params, page, time_limit).map_err(err)?;
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
