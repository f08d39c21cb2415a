//! A saved query's SQL as PostgreSQL takes it: SQLite's `?1`..`?9` cut out and
//! numbered `$N`, outside literals, quoted identifiers and comments; the functions
//! a query may not call.
use crate::store::getdata::{QueryError, MAX_PARAMS};

/// A saved query's SQL, cut at its parameters.
#[derive(Debug, PartialEq)]
pub(super) enum Piece {
    Text(String),
    /// `?N`, N from 1.
    Param(usize),
}

pub(super) fn refused(why: impl Into<String>) -> QueryError {
    QueryError::Refused(why.into())
}

const NUMBERING: &str =
    "refused: use positional parameters ?1 to ?9, numbered from ?1 without gaps";

/// Cuts `sql` at its `?N` parameters, outside string literals, quoted identifiers
/// and comments; the number of parameters. Refuses `$N` and a `?` that is not `?N`
/// (PostgreSQL's jsonb `?` operators included: use `jsonb_exists`).
pub(super) fn translate(sql: &str) -> Result<(Vec<Piece>, usize), QueryError> {
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

pub(super) fn render(pieces: &[Piece], param: impl Fn(usize) -> String) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => s.push_str(t),
            Piece::Param(n) => s.push_str(&param(*n)),
        }
    }
    s
}

pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Functions a query may not call: `set_config` could switch the role back to the
/// connecting user's (SET ROLE is checked against the session user) or change
/// the pooled connection's settings.
pub(super) fn forbidden(sql: &str) -> Option<&'static str> {
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
}
