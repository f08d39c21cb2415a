//! GetData on PostgreSQL (API.md §7, §9): a saved query runs in a `READ ONLY`
//! transaction, under `SET LOCAL statement_timeout` (the query time limit) and
//! `SET LOCAL ROLE tollgate_getdata`, a NOLOGIN role that may read only the
//! published tables (migration V8). Parameters are SQLite's `?1`..`?9`, translated to
//! `$N` (sql.rs) and bound as text, cast to the type PostgreSQL infers for each; the
//! answer's cells are decoded in cells.rs.
use crate::store::getdata::{Page, QueryError, MAX_ANSWER_BYTES};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Statement, Transaction};

/// The role queries run as (sql/postgres/V8__getdata_role.sql).
pub const GETDATA_ROLE: &str = "tollgate_getdata";

mod cells;
mod sql;

use cells::{cell, supported};
use sql::{forbidden, quote_ident, refused, render, translate};

/// Rows fetched at a time while skipping to a page.
const SKIP_CHUNK: i32 = 1_000;

/// What a PostgreSQL error means for a query.
pub(super) fn query_error(e: tokio_postgres::Error, preparing: bool) -> QueryError {
    let Some(db) = e.as_db_error() else {
        return QueryError::Store(e.into());
    };
    let code = db.code();
    let class = &code.code()[..2];
    if *code == SqlState::QUERY_CANCELED {
        QueryError::TimedOut
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        refused(format!(
            "refused: {} (queries run as role {GETDATA_ROLE}, which reads only the published tables)",
            db.message()
        ))
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        refused(format!(
            "refused: it is not a read-only SELECT ({})",
            db.message()
        ))
    } else if class == "54" {
        QueryError::TooLarge(format!("the query is past a bound: {}", db.message()))
    } else if class == "22" && !preparing {
        QueryError::BadValue(format!(
            "a parameter or value is not valid: {}",
            db.message()
        ))
    } else if preparing || matches!(class, "42" | "0A" | "22") {
        refused(format!("the SQL does not prepare: {}", db.message()))
    } else {
        QueryError::Store(e.into())
    }
}

/// Opens the sandbox in `tx`: the time limit and the role.
pub async fn enter(tx: &Transaction<'_>, limit: Duration) -> Result<(), QueryError> {
    let ms = limit.as_millis().clamp(1, i32::MAX as u128);
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {ms}; SET LOCAL ROLE {GETDATA_ROLE}"
    ))
    .await
    .map_err(|e| match e.as_db_error() {
        Some(db) => refused(format!(
            "GetData queries run as PostgreSQL role {GETDATA_ROLE} (migration V8), and \
             switching to it failed: {}; as a superuser: CREATE ROLE {GETDATA_ROLE} NOLOGIN; \
             GRANT SELECT ON products TO {GETDATA_ROLE}; GRANT {GETDATA_ROLE} TO <tollgate's user>",
            db.message()
        )),
        None => QueryError::Store(e.into()),
    })?;
    // The role must not reach set_config (migration V10): through it a query could
    // switch back to the session's own role.
    let escapes: bool = tx
        .query_one(
            "SELECT has_function_privilege('pg_catalog.set_config(text, text, boolean)', 'EXECUTE')",
            &[],
        )
        .await
        .map_err(|e| QueryError::Store(e.into()))?
        .get(0);
    if escapes {
        return Err(refused(format!(
            "GetData queries run as PostgreSQL role {GETDATA_ROLE}, which may still call \
             set_config (and so switch back to tollgate's own role): as a superuser, in this \
             database: REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) \
             FROM PUBLIC; GRANT EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) \
             TO <tollgate's user>"
        )));
    }
    Ok(())
}

/// A query prepared in the sandbox: its statement (every parameter TEXT), its
/// parameter count and the SQL it was prepared from.
pub struct Prepared {
    pub statement: Statement,
    pub params: usize,
    pub sql: String,
}

/// `sql` translated to `$N` parameters and prepared with every parameter TEXT (cast
/// to the type PostgreSQL infers for it), its parameter count and prepared text.
/// Refuses what GetData refuses by name.
pub async fn typed<C: tokio_postgres::GenericClient>(
    tx: &C,
    sql: &str,
) -> Result<(Statement, usize, String), QueryError> {
    if let Some(why) = forbidden(sql) {
        return Err(refused(why));
    }
    let (pieces, n) = translate(sql)?;
    let numbered = render(&pieces, |i| format!("${i}"));
    let first = tx
        .prepare(&numbered)
        .await
        .map_err(|e| query_error(e, true))?;
    let (statement, sql) = if n == 0 {
        (first, numbered)
    } else {
        let types: Vec<Type> = first.params().to_vec();
        let cast = render(&pieces, |i| {
            let t = &types[i - 1];
            if *t == Type::TEXT {
                format!("${i}")
            } else {
                format!(
                    "(${i}::text)::{}.{}",
                    quote_ident(t.schema()),
                    quote_ident(t.name())
                )
            }
        });
        let st = tx
            .prepare_typed(&cast, &vec![Type::TEXT; n])
            .await
            .map_err(|e| query_error(e, true))?;
        (st, cast)
    };
    Ok((statement, n, sql))
}

/// Translates and prepares `sql` in `tx` (already [`enter`]ed).
pub async fn prepare(tx: &Transaction<'_>, sql: &str) -> Result<Prepared, QueryError> {
    let (statement, n, sql) = typed(tx, sql).await?;
    if statement.columns().is_empty() {
        return Err(refused("refused: it is not a read-only SELECT"));
    }
    for col in statement.columns() {
        if !supported(col.type_()) {
            return Err(refused(format!(
                "refused: column {:?} has type {}, which GetData on PostgreSQL does not \
                 return; cast it (::text, ::bigint, ::float8, ::numeric)",
                col.name(),
                col.type_().name()
            )));
        }
    }
    Ok(Prepared {
        statement,
        params: n,
        sql,
    })
}

/// Checks a query before it is saved: it prepares, returns columns of supported
/// types, and the role may run it (EXPLAIN checks privileges without running it).
pub async fn check(tx: &Transaction<'_>, sql: &str) -> Result<usize, QueryError> {
    let p = prepare(tx, sql).await?;
    let explain = tx
        .prepare_typed(&format!("EXPLAIN {}", p.sql), &vec![Type::TEXT; p.params])
        .await
        .map_err(|e| query_error(e, true))?;
    let nulls: Vec<Option<&str>> = vec![None; p.params];
    let args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = nulls
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    tx.query(&explain, &args)
        .await
        .map_err(|e| query_error(e, true))?;
    Ok(p.params)
}

/// Runs a prepared query for one page, in Jim2's response shape, within the time
/// limit and [`MAX_ANSWER_BYTES`].
pub async fn run(
    tx: &Transaction<'_>,
    p: &Prepared,
    params: &[String],
    page: Page,
    limit: Duration,
) -> Result<Value, QueryError> {
    let deadline = Instant::now() + limit;
    let columns: Vec<Value> = p
        .statement
        .columns()
        .iter()
        .map(|c| json!({"Name": c.name(), "Type": c.type_().name()}))
        .collect();
    let args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let portal = tx
        .bind(&p.statement, &args)
        .await
        .map_err(|e| query_error(e, false))?;
    let mut skip = u64::from(page.no - 1) * u64::from(page.size);
    let mut done = false;
    while skip > 0 {
        if Instant::now() > deadline {
            return Err(QueryError::TimedOut);
        }
        let want = skip.min(SKIP_CHUNK as u64) as i32;
        let got = tx
            .query_portal(&portal, want)
            .await
            .map_err(|e| query_error(e, false))?;
        skip -= got.len() as u64;
        if got.len() < want as usize {
            done = true;
            break;
        }
    }
    let rows = if done {
        Vec::new()
    } else {
        tx.query_portal(&portal, page.size as i32)
            .await
            .map_err(|e| query_error(e, false))?
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut bytes = 0usize;
    for row in &rows {
        let mut cells = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            let (v, size) = cell(row, i)?;
            bytes += size + 1;
            cells.push(v);
        }
        if bytes > MAX_ANSWER_BYTES {
            return Err(QueryError::TooLarge(format!(
                "the answer would be larger than {MAX_ANSWER_BYTES} bytes; ask for a \
                 smaller pagesize or a narrower query"
            )));
        }
        out.push(Value::Array(cells));
    }
    Ok(json!({
        "resultSets": [{"columns": columns, "rows": out}],
        "pageno": page.no,
        "pagesize": page.size,
    }))
}

/// How many parameters a saved query takes (it was checked when saved).
pub fn param_count(sql: &str) -> Result<usize, QueryError> {
    translate(sql).map(|(_, n)| n)
}
