//! Script URL handlers (API.md §11): what a handler is, what it sees and answers,
//! and the Rhai runtime every engine runs it in ([`runtime`]). The engines give it
//! a [`Host`]: `query()` through their GetData sandbox and, for `--writes`
//! handlers, `execute()` inside the one transaction the whole handler runs in.
mod cache;
mod convert;
pub mod runtime;

pub use runtime::{check_source, run};

use super::getdata::QueryError;
use super::StoreError;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The demo's two handlers (API.md §11, README "Script URL handlers"):
/// (name, method, scope, writes, description, source).
pub const DEMO_SCRIPTS: &[(&str, &str, &str, bool, &str, &str)] = &[
    (
        "price-list",
        "GET",
        "view",
        false,
        "Prices, cheapest first, up to ?max= cents",
        include_str!("demo/price-list.rhai"),
    ),
    (
        "stock-adjust",
        "POST",
        "all",
        true,
        "Moves a product's stock by {\"sku\", \"delta\"}",
        include_str!("demo/stock-adjust.rhai"),
    ),
];

/// The methods a handler may answer (API.md §11).
pub const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE"];
/// The longest handler source an administrator may publish, bytes.
pub const MAX_SOURCE_BYTES: usize = 256 << 10;

/// A published handler.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub source: String,
    pub method: String,
    pub scope: String,
    /// May call `execute()` (only with scope `all`).
    pub writes: bool,
    pub description: String,
    /// Grows with every change of the row.
    pub version: i64,
}

/// What a handler sees as `request`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ScriptRequest {
    pub method: String,
    pub query: BTreeMap<String, String>,
    /// The body parsed as JSON; `()` in the script when there was none.
    pub body: Value,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// What a handler answered: its status (200 unless it called `response`) and body.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptReply {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The operation budget or the GetData time limit ran out (503 on the wire).
    #[error("the script ran past its operation budget or time limit and was stopped")]
    TimedOut,
    /// The script failed; `line` is where, when Rhai knows (500 on the wire).
    #[error("{message}")]
    Failed {
        line: Option<usize>,
        message: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ScriptError {
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            line: None,
            message: message.into(),
        }
    }
}

/// A source Rhai does not compile: refused when it is added.
#[derive(Debug, Clone, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct CompileError {
    pub line: usize,
    pub message: String,
}

/// What the engine gives a running handler. Both calls run on the handler's
/// (blocking) thread.
pub trait Host: Send {
    /// Runs a read-only query in the GetData sandbox: up to [`QUERY_ROWS`] rows as
    /// objects keyed by column name.
    fn query(&mut self, sql: &str, params: Vec<String>) -> Result<Vec<Value>, QueryError>;
    /// Changes the products table inside the handler's transaction; rows changed.
    fn execute(&mut self, sql: &str, params: Vec<String>) -> Result<usize, QueryError>;
}

/// Whether `sql` starts as `execute()` requires on every engine: INSERT, UPDATE or
/// DELETE (no WITH, no REPLACE, nothing before it), so both engines take the same.
pub fn starts_as_write(sql: &str) -> bool {
    let first: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .collect();
    matches!(
        first.to_ascii_lowercase().as_str(),
        "insert" | "update" | "delete"
    )
}

/// The refusal of a statement [`starts_as_write`] refuses.
pub const WRITE_ONLY: &str =
    "execute() takes one INSERT, UPDATE or DELETE of products; read with query()";

/// Rows `query()` returns at most.
pub const QUERY_ROWS: u32 = 500;

/// Jim2's `resultSets` answer (as the sandboxes give it) as a list of objects.
pub fn rows_as_objects(answer: Value) -> Vec<Value> {
    let set = &answer["resultSets"][0];
    let names: Vec<String> = set["columns"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .map(|c| c["Name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let Some(rows) = set["rows"].as_array() else {
        return Vec::new();
    };
    rows.iter()
        .map(|row| {
            let cells = row.as_array().cloned().unwrap_or_default();
            Value::Object(names.iter().cloned().zip(cells).collect())
        })
        .collect()
}

/// The host of a handler that may not write: `execute()` is refused.
pub struct ReadOnly<Q>(pub Q);

impl<Q> Host for ReadOnly<Q>
where
    Q: FnMut(&str, Vec<String>) -> Result<Vec<Value>, QueryError> + Send,
{
    fn query(&mut self, sql: &str, params: Vec<String>) -> Result<Vec<Value>, QueryError> {
        (self.0)(sql, params)
    }

    fn execute(&mut self, _: &str, _: Vec<String>) -> Result<usize, QueryError> {
        Err(QueryError::Refused(
            "execute() is only for handlers added with --writes (and scope all); this one may \
             only read, through query()"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::starts_as_write;

    #[test]
    fn execute_takes_insert_update_or_delete_only() {
        for ok in [
            "INSERT INTO products VALUES (1)",
            "  update products set x = 1",
            "Delete from p",
        ] {
            assert!(starts_as_write(ok), "{ok}");
        }
        for bad in [
            "WITH x AS (SELECT 1) UPDATE products SET a = 1",
            "RESET ROLE",
            "SELECT 1",
            "-- c\nUPDATE products SET a = 1",
            "updated",
            "REPLACE INTO products VALUES (1)",
            "",
        ] {
            assert!(!starts_as_write(bad), "{bad}");
        }
    }
}
