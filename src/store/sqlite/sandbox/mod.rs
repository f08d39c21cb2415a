//! The SQLite engine's GetData sandbox (API.md §7): published SELECTs run on read-only connections
//! whose authorizer admits only the catalogue and the attached `data` schema,
//! under a time limit, with rows paged by tollgate.
mod authorizer;

pub(crate) use authorizer::{allowed as allowed_in, ALLOWED_FUNCTIONS};

use crate::store::getdata::{Page, QueryError, MAX_ANSWER_BYTES, MAX_PARAMS, MAX_VALUE_BYTES};
use crate::store::StoreError;
use authorizer::{prepare, sandbox};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use scheduled_thread_pool::ScheduledThreadPool;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::TooBig) => QueryError::TooLarge(format!(
                "a value in the answer is longer than {MAX_VALUE_BYTES} bytes"
            )),
            Some(rusqlite::ErrorCode::OperationInterrupted) => QueryError::TimedOut,
            _ => QueryError::Store(e.into()),
        }
    }
}

/// `file:` URI for a read-only attachment; SQLite URIs need `%`, `?` and `#` escaped.
fn read_only_uri(path: &Path) -> String {
    let p = path
        .to_string_lossy()
        .replace('%', "%25")
        .replace('?', "%3f")
        .replace('#', "%23");
    format!("file:{p}?mode=ro")
}

/// Opens one sandboxed connection: read-only, `data` attached, authorizer on.
pub fn open_sandbox(db: &Path, data_db: Option<&Path>) -> Result<Connection, StoreError> {
    let c = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")?;
    if let Some(data) = data_db {
        attach_data(&c, data)?;
    }
    sandbox(&c)?;
    Ok(c)
}

/// Attaches `--data-db` as schema `data`: an existing SQLite file, and not a
/// tollgate database, whose USERS table would publish password hashes.
fn attach_data(c: &Connection, data: &Path) -> Result<(), StoreError> {
    let invalid = |why: String| StoreError::Invalid(format!("--data-db {}: {why}", data.display()));
    if !data.is_file() {
        return Err(invalid("no such file".into()));
    }
    let unreadable = |e: rusqlite::Error| invalid(format!("not a readable SQLite database: {e}"));
    c.execute("ATTACH DATABASE ?1 AS data", [read_only_uri(data)])
        .map_err(unreadable)?;
    let tollgate: bool = c
        .query_row(
            "SELECT count(*) > 0 FROM data.sqlite_master WHERE type = 'table' \
             AND lower(name) IN ('users', 'refinery_schema_history')",
            [],
            |r| r.get(0),
        )
        .map_err(unreadable)?;
    if tollgate {
        return Err(invalid(
            "this is a tollgate database (it has a USERS table): publishing it would expose \
             its users' password hashes; name the business database whose tables queries \
             should read"
                .into(),
        ));
    }
    Ok(())
}

/// The pool of sandboxed connections the server runs queries on.
#[derive(Clone)]
pub struct Sandbox {
    pool: Pool<SqliteConnectionManager>,
    pub time_limit: Duration,
}

impl Sandbox {
    pub fn open(
        db: &Path,
        data_db: Option<PathBuf>,
        size: u32,
        time_limit: Duration,
    ) -> Result<Self, StoreError> {
        // Fail at start-up, with the reason, rather than on the first request.
        drop(open_sandbox(db, data_db.as_deref())?);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let manager = SqliteConnectionManager::file(db)
            .with_flags(flags)
            .with_init(move |c| {
                c.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")?;
                if let Some(data) = &data_db {
                    c.execute("ATTACH DATABASE ?1 AS data", [read_only_uri(data)])?;
                }
                sandbox(c)
            });
        let pool = Pool::builder()
            .max_size(size.max(1))
            .thread_pool(upkeep())
            .build(manager)?;
        Ok(Self { pool, time_limit })
    }

    pub fn check(&self, sql: &str) -> Result<usize, QueryError> {
        let c = self.pool.get().map_err(StoreError::from)?;
        check(&c, sql)
    }

    pub fn param_count(&self, sql: &str) -> Result<usize, QueryError> {
        let c = self.pool.get().map_err(StoreError::from)?;
        param_count(&c, sql)
    }

    pub fn run(&self, sql: &str, params: &[String], page: Page) -> Result<Value, QueryError> {
        let c = self.pool.get().map_err(StoreError::from)?;
        run(&c, sql, params, page, self.time_limit)
    }
}

/// Checks a query before it is saved: one statement, read-only, permitted, with
/// positional parameters `?1`..`?9` only. Returns the number of parameters.
pub fn check(c: &Connection, sql: &str) -> Result<usize, QueryError> {
    let stmt = prepare(c, sql).map_err(|e| match e {
        QueryError::Store(StoreError::Sqlite(e)) => {
            QueryError::Refused(format!("the SQL does not prepare: {e}"))
        }
        other => other,
    })?;
    if !stmt.readonly() || stmt.column_count() == 0 {
        return Err(QueryError::Refused(
            "refused: it is not a read-only SELECT".into(),
        ));
    }
    let n = stmt.parameter_count();
    if n > MAX_PARAMS {
        return Err(QueryError::Refused(format!(
            "refused: {n} parameters; at most {MAX_PARAMS} (?1 to ?9)"
        )));
    }
    for i in 1..=n {
        let expected = format!("?{i}");
        if stmt.parameter_name(i) != Some(expected.as_str()) {
            return Err(QueryError::Refused(
                "refused: use positional parameters ?1 to ?9, numbered from ?1 without gaps".into(),
            ));
        }
    }
    Ok(n)
}

/// Number of parameters a saved query takes (it was checked when saved).
pub fn param_count(c: &Connection, sql: &str) -> Result<usize, QueryError> {
    Ok(prepare(c, sql)?.parameter_count())
}

/// A value as JSON, and about how many bytes it takes in the answer.
fn json_value(v: ValueRef<'_>) -> (Value, usize) {
    match v {
        ValueRef::Null => (Value::Null, 4),
        ValueRef::Integer(i) => (json!(i), 20),
        ValueRef::Real(f) => (json!(f), 24),
        ValueRef::Text(t) => {
            // Quotes, and up to six bytes for each character JSON must escape.
            let escaped = t
                .iter()
                .filter(|b| **b < 0x20 || **b == b'"' || **b == b'\\')
                .count();
            let text = String::from_utf8_lossy(t).into_owned();
            (Value::String(text), t.len() + 2 + 5 * escaped)
        }
        ValueRef::Blob(b) => (Value::String(B64.encode(b)), b.len().div_ceil(3) * 4 + 2),
    }
}

/// Runs a query for one page, in Jim2's response shape, within `limit` and
/// [`MAX_ANSWER_BYTES`].
pub fn run(
    c: &Connection,
    sql: &str,
    params: &[String],
    page: Page,
    limit: Duration,
) -> Result<Value, QueryError> {
    let mut stmt = prepare(c, sql)?;
    let columns: Vec<Value> = stmt
        .columns()
        .iter()
        .map(|col| json!({"Name": col.name(), "Type": col.decl_type().unwrap_or("")}))
        .collect();
    let width = columns.len();
    let deadline = Instant::now() + limit;
    c.progress_handler(1000, Some(move || Instant::now() > deadline))?;
    let result = (|| {
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let skip = u64::from(page.no - 1) * u64::from(page.size);
        let mut seen = 0u64;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            seen += 1;
            if seen <= skip {
                continue;
            }
            let mut cells = Vec::with_capacity(width);
            for i in 0..width {
                let (value, size) = json_value(row.get_ref_unwrap(i));
                bytes += size + 1;
                cells.push(value);
            }
            if bytes > MAX_ANSWER_BYTES {
                return Err(QueryError::TooLarge(format!(
                    "the answer would be larger than {MAX_ANSWER_BYTES} bytes; ask for a \
                     smaller pagesize or a narrower query"
                )));
            }
            out.push(Value::Array(cells));
            if out.len() as u32 >= page.size {
                break;
            }
        }
        Ok::<_, QueryError>(out)
    })();
    c.progress_handler(0, None::<fn() -> bool>)?;
    let rows = result?;
    Ok(json!({
        "resultSets": [{"columns": columns, "rows": rows}],
        "pageno": page.no,
        "pagesize": page.size,
    }))
}

/// r2d2's upkeep (opening and reaping connections) on one thread of the pool's own,
/// not the three it starts by default: each mount has a pool (API.md §12). Its own,
/// so that it ends with the pool.
fn upkeep() -> Arc<ScheduledThreadPool> {
    Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(1)
            .thread_name_pattern("tollgate-sandbox")
            .build(),
    )
}
