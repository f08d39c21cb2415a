//! GetData's sandbox (API.md §7): published SELECTs run on read-only connections
//! whose authorizer admits only the catalogue and the attached `data` schema,
//! under a time limit, with rows paged by tollgate.
use crate::error::StoreError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use r2d2::Pool;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tables of tollgate's own schema a query may read; everything else there is refused.
const READABLE_MAIN_TABLES: &[&str] = &["products"];
/// SQL functions that touch files or the process; refused even if compiled in.
const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "load_extension",
    "readfile",
    "writefile",
    "edit",
    "fts3_tokenizer",
];
pub const MAX_PARAMS: usize = 9;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is not one read-only, permitted SELECT; the text says why.
    #[error("{0}")]
    Refused(String),
    #[error("the query ran past its time limit and was interrupted")]
    TimedOut,
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Store(e.into())
    }
}

/// The authorizer's last refusal, explained; read by [`check`].
pub type Refusal = Arc<Mutex<Option<String>>>;

/// Why the authorizer said no, for the administrator.
fn judge(ctx: &AuthContext<'_>) -> Result<(), String> {
    let db = ctx.database_name.unwrap_or("main");
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read { table_name, .. } if db == "data" => {
            let _ = table_name;
            Ok(())
        }
        AuthAction::Read { table_name, .. } => {
            if db == "main"
                && READABLE_MAIN_TABLES
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(table_name))
            {
                Ok(())
            } else {
                Err(format!("it reads {db}.{table_name}, which is tollgate's own data; queries may read products and the data schema"))
            }
        }
        AuthAction::Function { function_name } => {
            if FORBIDDEN_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(function_name))
            {
                Err(format!(
                    "it calls {function_name}(), which touches files or the process"
                ))
            } else {
                Ok(())
            }
        }
        AuthAction::Pragma { pragma_name, .. } => Err(format!("it uses PRAGMA {pragma_name}")),
        AuthAction::Attach { .. } => Err("it uses ATTACH".into()),
        AuthAction::Detach { .. } => Err("it uses DETACH".into()),
        other => Err(format!("it is not a read-only SELECT ({other:?})")),
    }
}

/// Installs the authorizer; refusals are explained through `why`.
fn sandbox(c: &Connection, why: Refusal) -> rusqlite::Result<()> {
    c.authorizer(Some(move |ctx: AuthContext<'_>| match judge(&ctx) {
        Ok(()) => Authorization::Allow,
        Err(reason) => {
            *why.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
            Authorization::Deny
        }
    }))
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
pub fn open_sandbox(
    db: &Path,
    data_db: Option<&Path>,
) -> Result<(Connection, Refusal), StoreError> {
    let c = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 5000;")?;
    if let Some(data) = data_db {
        if !data.is_file() {
            return Err(StoreError::Invalid(format!(
                "--data-db {}: no such file",
                data.display()
            )));
        }
        let unreadable = |e: rusqlite::Error| {
            StoreError::Invalid(format!(
                "--data-db {}: not a readable SQLite database: {e}",
                data.display()
            ))
        };
        c.execute("ATTACH DATABASE ?1 AS data", [read_only_uri(data)])
            .map_err(unreadable)?;
        c.query_row("SELECT count(*) FROM data.sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(unreadable)?;
    }
    let why = Arc::new(Mutex::new(None));
    sandbox(&c, why.clone())?;
    Ok((c, why))
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
                sandbox(c, Arc::new(Mutex::new(None)))
            });
        let pool = Pool::builder().max_size(size.max(1)).build(manager)?;
        Ok(Self { pool, time_limit })
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// From 1.
    pub no: u32,
    /// 1 to 500.
    pub size: u32,
}

/// Checks a query before it is saved: one statement, read-only, permitted, with
/// positional parameters `?1`..`?9` only. Returns the number of parameters.
pub fn check(c: &Connection, why: &Mutex<Option<String>>, sql: &str) -> Result<usize, QueryError> {
    *why.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let stmt = match c.prepare(sql) {
        Ok(s) => s,
        Err(e) => {
            let reason = why.lock().unwrap_or_else(|e| e.into_inner()).take();
            return Err(QueryError::Refused(match reason {
                Some(r) => format!("refused: {r}"),
                None => format!("the SQL does not prepare: {e}"),
            }));
        }
    };
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
    Ok(c.prepare(sql)?.parameter_count())
}

fn json_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(B64.encode(b)),
    }
}

/// Runs a query for one page, in Jim2's response shape.
pub fn run(
    c: &Connection,
    sql: &str,
    params: &[String],
    page: Page,
    limit: Duration,
) -> Result<Value, QueryError> {
    let mut stmt = c.prepare(sql)?;
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
        while let Some(row) = rows.next()? {
            seen += 1;
            if seen <= skip {
                continue;
            }
            out.push(Value::Array(
                (0..width)
                    .map(|i| json_value(row.get_ref_unwrap(i)))
                    .collect(),
            ));
            if out.len() as u32 >= page.size {
                break;
            }
        }
        Ok::<_, rusqlite::Error>(out)
    })();
    c.progress_handler(0, None::<fn() -> bool>)?;
    let rows = result.map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            QueryError::TimedOut
        }
        other => QueryError::Store(other.into()),
    })?;
    Ok(json!({
        "resultSets": [{"columns": columns, "rows": rows}],
        "pageno": page.no,
        "pagesize": page.size,
    }))
}
