//! Running a script handler on SQLite (API.md §11). A read-only handler runs on the
//! blocking pool and reads through the GetData sandbox. A `--writes` handler runs
//! on the writer thread as a job of its own between group commits (so the group
//! commit and the seat ledger never see it), in one `BEGIN IMMEDIATE` transaction
//! that commits only if the handler ends without error; its `query()` calls read
//! through the sandbox too, so they see what was committed before it began.
use super::sandbox::Sandbox;
use super::scripts;
use super::writer::Writer;
use crate::store::getdata::{Page, QueryError};
use crate::store::script::{
    self, rows_as_objects, Host, ReadOnly, Script, ScriptError, ScriptReply, ScriptRequest,
    QUERY_ROWS,
};
use crate::store::StoreError;
use rusqlite::Connection;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// `query()`: one checked, read-only SELECT in the sandbox, its first rows as objects.
pub fn sandbox_rows(s: &Sandbox, sql: &str, params: Vec<String>) -> Result<Vec<Value>, QueryError> {
    let n = s.check(sql)?;
    if n != params.len() {
        return Err(QueryError::BadValue(format!(
            "query(): the SQL takes {n} parameters, {} given",
            params.len()
        )));
    }
    let page = Page {
        no: 1,
        size: QUERY_ROWS,
    };
    Ok(rows_as_objects(s.run(sql, &params, page)?))
}

/// A read-only handler, on the calling (blocking) thread.
pub fn run_reading(
    sandbox: Sandbox,
    s: &Script,
    request: &ScriptRequest,
) -> Result<ScriptReply, ScriptError> {
    let deadline = Instant::now() + sandbox.time_limit;
    let host = ReadOnly(move |sql: &str, p: Vec<String>| sandbox_rows(&sandbox, sql, p));
    script::run(&s.source, request, Box::new(host), deadline)
}

type Lent = Arc<Mutex<Option<Connection>>>;

/// The writer's connection, lent to the handler's host for the run: put back when
/// this is dropped, whatever happened (an error, a panic).
struct Loan<'c> {
    home: &'c mut Connection,
    lent: Lent,
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.lent.lock().unwrap_or_else(|p| p.into_inner()).take() {
            *self.home = c;
        }
    }
}

struct Writing {
    lent: Lent,
    sandbox: Sandbox,
    deadline: Instant,
}

impl Host for Writing {
    fn query(&mut self, sql: &str, params: Vec<String>) -> Result<Vec<Value>, QueryError> {
        sandbox_rows(&self.sandbox, sql, params)
    }

    fn execute(&mut self, sql: &str, params: Vec<String>) -> Result<usize, QueryError> {
        let lent = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        let c = lent
            .as_ref()
            .ok_or(QueryError::Store(StoreError::Cancelled))?;
        scripts::execute(c, sql, &params, self.deadline)
    }
}

/// A `--writes` handler, as a job of its own on the writer thread; waits for it.
pub fn run_writing(
    writer: &Writer,
    sandbox: Sandbox,
    s: Script,
    request: ScriptRequest,
) -> Result<ScriptReply, ScriptError> {
    writer
        .run_alone(move |c, _| {
            let deadline = Instant::now() + sandbox.time_limit;
            // The host needs an owned connection ('static functions in the engine).
            let stand_in = Connection::open_in_memory()?;
            c.execute_batch("BEGIN IMMEDIATE")?;
            let lent: Lent = Arc::new(Mutex::new(Some(std::mem::replace(c, stand_in))));
            let result = {
                let loan = Loan {
                    home: c,
                    lent: lent.clone(),
                };
                let host = Writing {
                    lent,
                    sandbox,
                    deadline,
                };
                let r = script::run(&s.source, &request, Box::new(host), deadline);
                drop(loan);
                r
            };
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            if let Err(e) = c.execute_batch(end) {
                let _ = c.execute_batch("ROLLBACK");
                return Err(e.into());
            }
            Ok(result)
        })
        .map_err(ScriptError::Store)?
}
