//! GetData on PostgreSQL (API.md §7, §9): a saved query runs in a `READ ONLY`
//! transaction, under `SET LOCAL statement_timeout` (the query time limit) and
//! `SET LOCAL ROLE tollgate_getdata`, a NOLOGIN role that may read only the
//! published tables (migration V8). Parameters are SQLite's `?1`..`?9`, translated to
//! `$N` and bound as text, cast to the type PostgreSQL infers for each.
use crate::store::getdata::{Page, QueryError, MAX_ANSWER_BYTES, MAX_PARAMS, MAX_VALUE_BYTES};
use crate::store::StoreError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Row, Statement, Transaction};

/// The role queries run as (sql/postgres/V8__getdata_role.sql).
pub const GETDATA_ROLE: &str = "tollgate_getdata";

/// Rows fetched at a time while skipping to a page.
const SKIP_CHUNK: i32 = 1_000;

/// A saved query's SQL, cut at its parameters.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    /// `?N`, N from 1.
    Param(usize),
}

fn refused(why: impl Into<String>) -> QueryError {
    QueryError::Refused(why.into())
}

const NUMBERING: &str =
    "refused: use positional parameters ?1 to ?9, numbered from ?1 without gaps";

/// Cuts `sql` at its `?N` parameters, outside string literals, quoted identifiers
/// and comments; the number of parameters. Refuses `$N` and a `?` that is not `?N`
/// (PostgreSQL's jsonb `?` operators included: use `jsonb_exists`).
fn translate(sql: &str) -> Result<(Vec<Piece>, usize), QueryError> {
    let b = sql.as_bytes();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut used = Vec::new();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b'\'' => {
                // E'...' strings take backslash escapes.
                let escapes = i > 0
                    && matches!(b[i - 1], b'e' | b'E')
                    && (i < 2 || !ident(b[i - 2]) && b[i - 2] != b'$');
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
            }
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' if i > 0 && ident(b[i - 1]) => i += 1,
            b'$' => {
                if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return Err(refused(NUMBERING));
                }
                // A dollar-quoted string: $tag$ ... $tag$.
                let mut j = i + 1;
                while j < b.len() && ident(b[j]) {
                    j += 1;
                }
                if b.get(j) == Some(&b'$') {
                    let tag = &sql[i..=j];
                    match sql[j + 1..].find(tag) {
                        Some(end) => i = j + 1 + end + tag.len(),
                        None => i = b.len(),
                    }
                } else {
                    i += 1;
                }
            }
            b'?' => {
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let digits = &sql[i + 1..j];
                if digits.is_empty() || digits.starts_with('0') || digits.len() > 2 {
                    return Err(refused(NUMBERING));
                }
                let n: usize = digits.parse().map_err(|_| refused(NUMBERING))?;
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Param(n));
                used.push(n);
                i = j;
                continue;
            }
            _ => {
                // One whole character.
                i += sql[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        text.push_str(&sql[start..i]);
    }
    pieces.push(Piece::Text(text));
    used.sort_unstable();
    used.dedup();
    let n = used.len();
    if n > MAX_PARAMS || used.last().is_some_and(|&m| m > MAX_PARAMS) {
        return Err(refused(format!(
            "refused: {} parameters; at most {MAX_PARAMS} (?1 to ?9)",
            used.last().copied().unwrap_or(n).max(n)
        )));
    }
    if used.last().is_some_and(|&m| m != n) {
        return Err(refused(NUMBERING));
    }
    Ok((pieces, n))
}

fn render(pieces: &[Piece], param: impl Fn(usize) -> String) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => s.push_str(t),
            Piece::Param(n) => s.push_str(&param(*n)),
        }
    }
    s
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Functions a query may not call: `set_config` could switch the role back to the
/// connecting user's (SET ROLE is checked against the session user) or change
/// the pooled connection's settings.
fn forbidden(sql: &str) -> Option<&'static str> {
    let lower = sql.to_ascii_lowercase();
    if lower.contains("set_config") {
        return Some("refused: set_config is not permitted in a query");
    }
    if lower.contains("u&") {
        return Some(
            "refused: U& (Unicode escape) strings and identifiers are not permitted in a query",
        );
    }
    None
}

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

fn supported(t: &Type) -> bool {
    matches!(
        *t,
        Type::BOOL
            | Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::OID
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::NUMERIC
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME
            | Type::UNKNOWN
            | Type::BYTEA
            | Type::JSON
            | Type::JSONB
    )
}

/// A value's bytes as PostgreSQL sent them (binary format).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A binary NUMERIC as its exact decimal text.
fn numeric_text(b: &[u8]) -> Option<String> {
    let u16_at = |i: usize| b.get(i..i + 2).map(|s| u16::from_be_bytes([s[0], s[1]]));
    let ndigits = usize::from(u16_at(0)?);
    let weight = u16_at(2)? as i16 as i32;
    let sign = u16_at(4)?;
    let dscale = usize::from(u16_at(6)?);
    let mut digits = Vec::with_capacity(ndigits);
    for k in 0..ndigits {
        digits.push(u16_at(8 + 2 * k)?);
    }
    let digit = |k: i32| -> u16 {
        if k >= 0 {
            digits.get(k as usize).copied().unwrap_or(0)
        } else {
            0
        }
    };
    let mut s = String::new();
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0x4000 => s.push('-'),
        0 => {}
        _ => return None,
    }
    if weight < 0 {
        s.push('0');
    } else {
        for k in 0..=weight {
            if k == 0 {
                let _ = write!(s, "{}", digit(k));
            } else {
                let _ = write!(s, "{:04}", digit(k));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(k));
            k += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Some(s)
}

fn too_long() -> QueryError {
    QueryError::TooLarge(format!(
        "a value in the answer is longer than {MAX_VALUE_BYTES} bytes"
    ))
}

fn text_value(t: &str) -> Result<(Value, usize), QueryError> {
    if t.len() > MAX_VALUE_BYTES {
        return Err(too_long());
    }
    let escaped = t
        .bytes()
        .filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\')
        .count();
    Ok((Value::String(t.to_owned()), t.len() + 2 + 5 * escaped))
}

/// Cell `i` of `row` as JSON, and about how many bytes it takes in the answer.
fn cell(row: &Row, i: usize) -> Result<(Value, usize), QueryError> {
    let t = row.columns()[i].type_().clone();
    let bad = |e: tokio_postgres::Error| QueryError::Store(e.into());
    let Some(raw) = row.try_get::<_, Option<Raw>>(i).map_err(bad)? else {
        return Ok((Value::Null, 4));
    };
    Ok(match t {
        Type::BOOL => (json!(row.try_get::<_, bool>(i).map_err(bad)?), 5),
        Type::INT2 => (json!(row.try_get::<_, i16>(i).map_err(bad)?), 20),
        Type::INT4 => (json!(row.try_get::<_, i32>(i).map_err(bad)?), 20),
        Type::INT8 => (json!(row.try_get::<_, i64>(i).map_err(bad)?), 20),
        Type::OID => (json!(row.try_get::<_, u32>(i).map_err(bad)?), 20),
        Type::FLOAT4 => (json!(row.try_get::<_, f32>(i).map_err(bad)?), 24),
        Type::FLOAT8 => (json!(row.try_get::<_, f64>(i).map_err(bad)?), 24),
        Type::NUMERIC => {
            let s = numeric_text(raw.0).ok_or_else(|| {
                QueryError::Store(StoreError::Invalid(
                    "a NUMERIC value PostgreSQL sent does not decode".into(),
                ))
            })?;
            text_value(&s)?
        }
        Type::BYTEA => {
            if raw.0.len() > MAX_VALUE_BYTES {
                return Err(too_long());
            }
            (
                Value::String(B64.encode(raw.0)),
                raw.0.len().div_ceil(3) * 4 + 2,
            )
        }
        Type::JSON | Type::JSONB => {
            // jsonb: a version byte, then the text.
            let text = if t == Type::JSONB {
                raw.0.get(1..).unwrap_or_default()
            } else {
                raw.0
            };
            if text.len() > MAX_VALUE_BYTES {
                return Err(too_long());
            }
            let v: Value = serde_json::from_slice(text)
                .map_err(|e| QueryError::Store(StoreError::Invalid(format!("JSON value: {e}"))))?;
            (v, text.len())
        }
        _ => text_value(&String::from_utf8_lossy(raw.0))?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sql: &str) -> Result<(String, usize), String> {
        translate(sql)
            .map(|(p, n)| (render(&p, |i| format!("${i}")), n))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parameters_are_translated_outside_literals_and_identifiers() {
        assert_eq!(
            t("SELECT a FROM t WHERE b < ?1 AND c = ?2 OR d = ?1").unwrap(),
            (
                "SELECT a FROM t WHERE b < $1 AND c = $2 OR d = $1".into(),
                2
            )
        );
        assert_eq!(
            t("SELECT '?1', \"?2\", E'\\'?3', $q$ ?4 $q$, ?1 -- ?5\n/* ?6 /* ?7 */ */")
                .unwrap()
                .1,
            1
        );
        assert_eq!(t("SELECT 'it''s ?'").unwrap().1, 0);
        assert_eq!(t("SELECT a$1 FROM t").unwrap().1, 0);
        for bad in [
            "SELECT ?",
            "SELECT ?2",
            "SELECT ?1, ?3",
            "SELECT $1",
            "SELECT ?01",
            "SELECT ?1 ? 'k'",
        ] {
            assert!(t(bad).unwrap_err().contains("?1 to ?9"), "{bad}");
        }
        let ten = (1..=10)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(t(&format!("SELECT {ten}"))
            .unwrap_err()
            .contains("at most 9"));
    }

    #[test]
    fn numerics_decode_exactly() {
        fn enc(ndigits: &[u16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
            let mut v = Vec::new();
            v.extend((ndigits.len() as u16).to_be_bytes());
            v.extend(weight.to_be_bytes());
            v.extend(sign.to_be_bytes());
            v.extend(dscale.to_be_bytes());
            for d in ndigits {
                v.extend(d.to_be_bytes());
            }
            v
        }
        assert_eq!(numeric_text(&enc(&[12, 5000], 0, 0, 2)).unwrap(), "12.50");
        assert_eq!(numeric_text(&enc(&[10], -1, 0, 3)).unwrap(), "0.001");
        assert_eq!(numeric_text(&enc(&[1], 1, 0x4000, 0)).unwrap(), "-10000");
        assert_eq!(numeric_text(&enc(&[], 0, 0, 0)).unwrap(), "0");
        assert_eq!(numeric_text(&enc(&[], 0, 0xC000, 0)).unwrap(), "NaN");
    }
}
