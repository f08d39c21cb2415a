//! Script URL handlers on PostgreSQL (API.md §11, §9): the rows, and runs. A
//! handler runs on the blocking pool; its `query()` calls run GetData's sandbox on a
//! pooled connection each; a `--writes` handler holds one connection in one
//! transaction as role tollgate_script (migration V13), which may change the
//! products table and nothing else, committed only if the handler ends without error.
use super::getdata::{self, query_error};
use super::rows::{release, run_in};
use super::PostgresStore;
use crate::store::getdata::{Page, QueryError};
use crate::store::script::{
    self, rows_as_objects, Host, ReadOnly, Script, ScriptError, ScriptReply, ScriptRequest,
    QUERY_ROWS,
};
use crate::store::StoreError;
use deadpool_postgres::{Object, Pool};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

/// The role `execute()` runs as (sql/postgres/V13__scripts.sql).
pub const SCRIPT_ROLE: &str = "tollgate_script";
const COLUMNS: &str = "name, source, method, scope, writes, description, version";

fn script(r: &Row) -> Script {
    Script {
        name: r.get(0),
        source: r.get(1),
        method: r.get(2),
        scope: r.get(3),
        writes: r.get(4),
        description: r.get(5),
        version: r.get(6),
    }
}

impl PostgresStore {
    pub(super) async fn script_row(&self, name: &str) -> Result<Option<Script>, StoreError> {
        let c = self.pool.get().await?;
        let sql = format!("SELECT {COLUMNS} FROM scripts WHERE name = $1");
        Ok(c.query_opt(&sql, &[&name]).await?.as_ref().map(script))
    }

    pub(super) async fn script_rows(&self) -> Result<Vec<Script>, StoreError> {
        let c = self.pool.get().await?;
        let sql = format!(r#"SELECT {COLUMNS} FROM scripts ORDER BY name COLLATE "C""#);
        Ok(c.query(&sql, &[]).await?.iter().map(script).collect())
    }

    /// One transaction; the name's query and script rows are locked by the trigger's
    /// reads and the upsert, so a racing query add fails rather than doubles the name.
    pub(super) async fn save_script_row(
        &self,
        s: Script,
        replace: bool,
    ) -> Result<Option<bool>, StoreError> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let taken: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM queries WHERE name = $1)
                     OR ($2 AND EXISTS (SELECT 1 FROM scripts WHERE name = $1))",
                &[&s.name, &!replace],
            )
            .await?
            .get(0);
        if taken {
            return Ok(None);
        }
        let created: bool = tx
            .query_one(
                "INSERT INTO scripts (name, source, method, scope, writes, description, version, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7)
                 ON CONFLICT (name) DO UPDATE
                 SET source = excluded.source, method = excluded.method, scope = excluded.scope,
                     writes = excluded.writes, description = excluded.description,
                     version = scripts.version + 1
                 RETURNING (xmax = 0)",
                &[&s.name, &s.source, &s.method, &s.scope, &s.writes, &s.description, &self.now()],
            )
            .await?
            .get(0);
        tx.commit().await?;
        Ok(Some(created))
    }

    pub(super) async fn remove_script_row(&self, name: &str) -> Result<bool, StoreError> {
        let c = self.pool.get().await?;
        Ok(c.execute("DELETE FROM scripts WHERE name = $1", &[&name])
            .await?
            == 1)
    }

    pub(super) async fn run_script_here(
        &self,
        s: Script,
        request: ScriptRequest,
    ) -> Result<ScriptReply, ScriptError> {
        let (pool, limit, handle) = (self.pool.clone(), self.query_time_limit, Handle::current());
        tokio::task::spawn_blocking(move || match s.writes {
            false => {
                let deadline = Instant::now() + limit;
                let host = ReadOnly(move |sql: &str, p: Vec<String>| {
                    handle.block_on(query_rows(&pool, sql, p, limit))
                });
                script::run(&s.source, &request, Box::new(host), deadline)
            }
            true => writing(pool, handle, limit, s, request),
        })
        .await
        .map_err(|_| ScriptError::Store(StoreError::Cancelled))?
    }
}

/// `query()`: one sandboxed SELECT on a pooled connection, its first rows as objects.
async fn query_rows(
    pool: &Pool,
    sql: &str,
    params: Vec<String>,
    limit: Duration,
) -> Result<Vec<Value>, QueryError> {
    let n = getdata::param_count(sql)?;
    if n != params.len() {
        return Err(QueryError::BadValue(format!(
            "query(): the SQL takes {n} parameters, {} given",
            params.len()
        )));
    }
    let mut c = pool.get().await.map_err(StoreError::from)?;
    let page = Page {
        no: 1,
        size: QUERY_ROWS,
    };
    let result = run_in(&mut c, sql, &params, page, limit).await;
    release(&c).await?;
    Ok(rows_as_objects(result?))
}

struct Writing {
    client: Arc<Object>,
    pool: Pool,
    handle: Handle,
    limit: Duration,
}

impl Host for Writing {
    fn query(&mut self, sql: &str, params: Vec<String>) -> Result<Vec<Value>, QueryError> {
        self.handle
            .block_on(query_rows(&self.pool, sql, params, self.limit))
    }

    fn execute(&mut self, sql: &str, params: Vec<String>) -> Result<usize, QueryError> {
        self.handle.block_on(execute(&self.client, sql, &params))
    }
}

/// One `execute()` statement in the handler's transaction, under a savepoint so
/// that a statement that fails undoes only itself (as on SQLite).
async fn execute(c: &Object, sql: &str, params: &[String]) -> Result<usize, QueryError> {
    if !script::starts_as_write(sql) {
        return Err(QueryError::Refused(script::WRITE_ONLY.into()));
    }
    c.batch_execute("SAVEPOINT script_statement")
        .await
        .map_err(StoreError::from)?;
    let result = async {
        let (statement, n, _) = getdata::typed(&***c, sql).await?;
        if n != params.len() {
            return Err(QueryError::BadValue(format!(
                "execute(): the SQL takes {n} parameters, {} given",
                params.len()
            )));
        }
        let args: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        c.execute(&statement, &args).await.map_err(write_error)
    }
    .await;
    let end = match result {
        Ok(_) => "RELEASE SAVEPOINT script_statement",
        Err(_) => "ROLLBACK TO SAVEPOINT script_statement",
    };
    c.batch_execute(end).await.map_err(StoreError::from)?;
    Ok(result? as usize)
}

fn write_error(e: tokio_postgres::Error) -> QueryError {
    match e.as_db_error() {
        Some(db) if *db.code() == SqlState::INSUFFICIENT_PRIVILEGE => QueryError::Refused(format!(
            "refused: {} (execute() runs as role {SCRIPT_ROLE}, which may change products only)",
            db.message()
        )),
        Some(db) if matches!(&db.code().code()[..2], "22" | "23") => {
            QueryError::BadValue(format!("execute(): {}", db.message()))
        }
        _ => query_error(e, false),
    }
}

/// A `--writes` handler: one connection, one transaction, as [`SCRIPT_ROLE`]. On
/// the blocking pool: the script blocks, and waits for the database through `handle`.
fn writing(
    pool: Pool,
    handle: Handle,
    limit: Duration,
    s: Script,
    request: ScriptRequest,
) -> Result<ScriptReply, ScriptError> {
    let client = Arc::new(handle.block_on(pool.get()).map_err(StoreError::from)?);
    begin(&handle, &client, limit)?;
    let host = Writing {
        client: client.clone(),
        pool,
        handle: handle.clone(),
        limit,
    };
    let deadline = Instant::now() + limit;
    let result = script::run(&s.source, &request, Box::new(host), deadline);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    handle
        .block_on(client.batch_execute(end))
        .map_err(StoreError::from)?;
    result
}

/// Opens the handler's transaction on `client` as [`SCRIPT_ROLE`]; on failure the
/// connection goes back to the pool outside any transaction.
fn begin(handle: &Handle, client: &Object, limit: Duration) -> Result<(), ScriptError> {
    let ms = limit.as_millis().clamp(1, i32::MAX as u128);
    let begun = handle.block_on(client.batch_execute(&format!(
        "BEGIN; SET LOCAL statement_timeout = {ms}; SET LOCAL ROLE {SCRIPT_ROLE}"
    )));
    if let Err(e) = begun {
        // The connection goes back to the pool: not inside a failed transaction.
        let _ = handle.block_on(client.batch_execute("ROLLBACK"));
        return Err(match e.as_db_error() {
            Some(db) => ScriptError::failed(format!(
                "script writes run as PostgreSQL role {SCRIPT_ROLE} (migration V13), and \
                 switching to it failed: {}",
                db.message()
            )),
            None => StoreError::from(e).into(),
        });
    }
    // As for GetData (migration V10): a role that may call set_config could switch
    // back to tollgate's own role and write any table.
    let escapes = handle
        .block_on(client.query_one(
            "SELECT has_function_privilege('pg_catalog.set_config(text, text, boolean)', 'EXECUTE')",
            &[],
        ))
        .map_err(StoreError::from);
    let escapes = match escapes {
        Ok(row) => row.get::<_, bool>(0),
        Err(e) => {
            let _ = handle.block_on(client.batch_execute("ROLLBACK"));
            return Err(e.into());
        }
    };
    if escapes {
        let _ = handle.block_on(client.batch_execute("ROLLBACK"));
        return Err(ScriptError::failed(format!(
            "script writes run as PostgreSQL role {SCRIPT_ROLE}, which may still call set_config \
             (and so switch back to tollgate's own role): as a superuser, in this database: REVOKE \
             EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC; GRANT \
             EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) TO <tollgate's user>"
        )));
    }
    Ok(())
}
