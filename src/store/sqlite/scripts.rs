//! Script URL handlers on SQLite (API.md §11): the rows, and the `execute()` of a
//! `--writes` handler on the writer's connection, which may change the products
//! table and nothing else.
use super::sandbox::{allowed_in, ALLOWED_FUNCTIONS};
use crate::store::getdata::QueryError;
use crate::store::script::Script;
use crate::store::StoreError;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::time::Instant;

const COLUMNS: &str = "name, source, method, scope, writes, description, version";

fn script(r: &Row<'_>) -> rusqlite::Result<Script> {
    Ok(Script {
        name: r.get(0)?,
        source: r.get(1)?,
        method: r.get(2)?,
        scope: r.get(3)?,
        writes: r.get(4)?,
        description: r.get(5)?,
        version: r.get(6)?,
    })
}

pub fn get(c: &Connection, name: &str) -> Result<Option<Script>, StoreError> {
    Ok(
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM scripts WHERE name = ?1"))?
            .query_row([name], script)
            .optional()?,
    )
}

pub fn list(c: &Connection) -> Result<Vec<Script>, StoreError> {
    let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM scripts ORDER BY name"))?;
    let rows = st.query_map([], script)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Saves `s` (see [`crate::store::Store::save_script`]); runs in the writer's
/// transaction, so the checks and the write cannot interleave with another's.
pub fn save(
    c: &Connection,
    s: &Script,
    replace: bool,
    now: i64,
) -> Result<Option<bool>, StoreError> {
    let query: bool = c.query_row(
        "SELECT EXISTS (SELECT 1 FROM queries WHERE name = ?1)",
        [&s.name],
        |r| r.get(0),
    )?;
    let existing = get(c, &s.name)?;
    if query || (existing.is_some() && !replace) {
        return Ok(None);
    }
    c.execute(
        "INSERT INTO scripts (name, source, method, scope, writes, description, version, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)
         ON CONFLICT (name) DO UPDATE
         SET source = excluded.source, method = excluded.method, scope = excluded.scope,
             writes = excluded.writes, description = excluded.description,
             version = scripts.version + 1",
        params![s.name, s.source, s.method, s.scope, s.writes, s.description, now],
    )?;
    Ok(Some(existing.is_none()))
}

pub fn remove(c: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM scripts WHERE name = ?1", [name])? == 1)
}

/// What `execute()` may do: change and read `products`, call GetData's functions; nothing else
/// (no other table, no transaction control, no PRAGMA or ATTACH).
fn judge(ctx: &AuthContext<'_>) -> Result<(), String> {
    let products = |db: Option<&str>, table: &str| {
        matches!(db, Some("main") | None) && table.eq_ignore_ascii_case("products")
    };
    match ctx.action {
        AuthAction::Select => Ok(()),
        AuthAction::Function { function_name } if allowed_in(ALLOWED_FUNCTIONS, function_name) => {
            Ok(())
        }
        AuthAction::Function { function_name } => Err(format!(
            "execute() calls {function_name}(), which is not one of the SQL functions GetData allows"
        )),
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
            if products(ctx.database_name, table_name) =>
        {
            Ok(())
        }
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name } => Err(format!(
            "execute() may change the products table only, not {table_name}"
        )),
        other => Err(format!(
            "execute() may only INSERT, UPDATE or DELETE products ({other:?})"
        )),
    }
}

/// Runs one `execute()` statement on the writer's connection, inside the handler's
/// transaction, under the products-only authorizer and the handler's deadline.
pub fn execute(
    c: &Connection,
    sql: &str,
    params: &[String],
    deadline: Instant,
) -> Result<usize, QueryError> {
    if !crate::store::script::starts_as_write(sql) {
        return Err(QueryError::Refused(crate::store::script::WRITE_ONLY.into()));
    }
    let refusal = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = refusal.clone();
    c.authorizer(Some(move |ctx: AuthContext<'_>| match judge(&ctx) {
        Ok(()) => Authorization::Allow,
        Err(why) => {
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
            Authorization::Deny
        }
    }))
    .map_err(StoreError::from)?;
    c.progress_handler(1000, Some(move || Instant::now() > deadline))
        .map_err(StoreError::from)?;
    let result = (|| {
        let mut st = c.prepare(sql).map_err(|e| {
            match refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(why) => QueryError::Refused(format!("refused: {why}")),
                None => QueryError::Refused(format!("the SQL does not prepare: {e}")),
            }
        })?;
        st.execute(rusqlite::params_from_iter(params.iter()))
            .map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::OperationInterrupted) => QueryError::TimedOut,
                Some(rusqlite::ErrorCode::ConstraintViolation) => {
                    QueryError::BadValue(format!("execute(): {e}"))
                }
                _ => match StoreError::from(e) {
                    e if e.is_unavailable() => QueryError::Store(e),
                    e => QueryError::BadValue(format!("execute(): {e}")),
                },
            })
    })();
    c.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(StoreError::from)?;
    c.progress_handler(0, None::<fn() -> bool>)
        .map_err(StoreError::from)?;
    result
}
