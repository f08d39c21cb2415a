//! GetData's authorizer: what a published query may read and call, and why a
//! refused one was refused.
use super::QueryError;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

/// Tables of tollgate's own schema a query may read; everything else there is refused.
const READABLE_MAIN_TABLES: &[&str] = &["products"];
/// Table-valued functions a query may read from: they compute rows, they store none.
const TABLE_FUNCTIONS: &[&str] = &["json_each", "json_tree"];
/// The SQL functions a query may call: SQLite's core, date, math, JSON, aggregate
/// and window functions. Anything else (extensions, `load_extension`, `readfile`,
/// `sqlite_*` introspection) is refused by name.
#[rustfmt::skip]
pub(crate) const ALLOWED_FUNCTIONS: &[&str] = &[
    // core scalar
    "abs", "char", "coalesce", "concat", "concat_ws", "format", "glob", "hex", "ifnull",
    "iif", "if", "instr", "length", "like", "likelihood", "likely", "lower", "ltrim", "max",
    "min", "nullif", "octet_length", "printf", "quote", "random", "randomblob", "replace",
    "round", "rtrim", "sign", "soundex", "substr", "substring", "trim", "typeof", "unhex",
    "unicode", "unlikely", "upper", "zeroblob",
    // date and time
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
    // math
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "ceil", "ceiling", "cos",
    "cosh", "degrees", "exp", "floor", "ln", "log", "log10", "log2", "mod", "pi", "pow",
    "power", "radians", "sin", "sinh", "sqrt", "tan", "tanh", "trunc",
    // aggregate
    "avg", "count", "group_concat", "string_agg", "sum", "total", "median", "percentile",
    // window
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    // JSON
    "json", "jsonb", "json_array", "jsonb_array", "json_array_length", "json_error_position",
    "json_extract", "jsonb_extract", "->", "->>", "json_insert", "jsonb_insert", "json_object",
    "jsonb_object", "json_patch", "jsonb_patch", "json_pretty", "json_remove", "jsonb_remove",
    "json_replace", "jsonb_replace", "json_set", "jsonb_set", "json_type", "json_valid",
    "json_quote", "json_group_array", "jsonb_group_array", "json_group_object",
    "jsonb_group_object", "json_each", "json_tree",
];
thread_local! {
    /// The authorizer's last refusal on this thread, explained. A statement is
    /// prepared on the thread that asked for it, so its refusal is read there.
    static REFUSAL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Prepares `sql` on a sandboxed connection; a statement the authorizer denied is
/// [`QueryError::Refused`] with its reason.
pub(super) fn prepare<'c>(
    c: &'c Connection,
    sql: &str,
) -> Result<rusqlite::Statement<'c>, QueryError> {
    REFUSAL.with(|r| r.borrow_mut().take());
    c.prepare(sql)
        .map_err(|e| match REFUSAL.with(|r| r.borrow_mut().take()) {
            Some(reason) => QueryError::Refused(format!("refused: {reason}")),
            None => QueryError::from(e),
        })
}

pub(crate) fn allowed(list: &[&str], name: &str) -> bool {
    list.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// Why the authorizer said no, for the administrator. `main_tables` are the tables
/// of tollgate's own schema, lower-cased.
fn judge(ctx: &AuthContext<'_>, main_tables: &[String]) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read { table_name, .. } => {
            let own = || {
                Err(format!(
                    "it reads main.{table_name}, which is tollgate's own data; queries may \
                     read products and the data schema"
                ))
            };
            match ctx.database_name {
                Some("data") => Ok(()),
                Some(_) if allowed(TABLE_FUNCTIONS, table_name) => Ok(()),
                Some("main") if allowed(READABLE_MAIN_TABLES, table_name) => Ok(()),
                Some("main") => own(),
                Some(db) => Err(format!(
                    "it reads {db}.{table_name}; queries may read products and the data schema"
                )),
                // SQLite names no schema when a query counts rows without reading a
                // column (`count(*)`): a table of tollgate's own by that name is refused;
                // any other name is a common table expression or a subquery, whose own
                // reads were judged.
                None if allowed(READABLE_MAIN_TABLES, table_name) => Ok(()),
                None if main_tables
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(table_name)) =>
                {
                    own()
                }
                None => Ok(()),
            }
        }
        AuthAction::Function { function_name } if allowed(ALLOWED_FUNCTIONS, function_name) => {
            Ok(())
        }
        AuthAction::Function { function_name } => Err(format!(
            "it calls {function_name}(), which is not one of the SQL functions queries may use \
             (SQLite's core, date, math, JSON, aggregate and window functions)"
        )),
        AuthAction::Pragma { pragma_name, .. } => Err(format!("it uses PRAGMA {pragma_name}")),
        AuthAction::Attach { .. } => Err("it uses ATTACH".into()),
        AuthAction::Detach { .. } => Err("it uses DETACH".into()),
        other => Err(format!("it is not a read-only SELECT ({other:?})")),
    }
}

/// Installs the authorizer and the length limit; [`prepare`] explains refusals.
pub(super) fn sandbox(c: &Connection) -> rusqlite::Result<()> {
    c.set_limit(
        rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH,
        super::MAX_VALUE_BYTES as i32,
    )?;
    let main_tables = c
        .prepare("SELECT lower(name) FROM main.sqlite_master WHERE type IN ('table', 'view')")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    c.authorizer(Some(move |ctx: AuthContext<'_>| {
        match judge(&ctx, &main_tables) {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                REFUSAL.with(|r| *r.borrow_mut() = Some(reason));
                Authorization::Deny
            }
        }
    }))
}
