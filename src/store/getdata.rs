//! GetData's rules that hold on every engine (API.md §7): query names, bounds,
//! pages and why a query was refused. Each engine runs queries in its own sandbox.
use super::StoreError;

pub const MAX_PARAMS: usize = 9;
/// Longest text or blob a query may make or return (SQLite's `SQLITE_LIMIT_LENGTH` on
/// the sandbox's connections), bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Largest answer a query may give, as JSON, bytes; counted while rows are serialised.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The name no query may take: `/api/v1/custom/getdata` is the route that reads
/// the name from `?queryname=`.
pub const RESERVED_QUERY_NAME: &str = "getdata";

/// What a query may be named, for `query add` and both GetData routes alike: 1 to
/// 64 of `A-Z a-z 0-9 _ -`, which a URL path segment carries unescaped, and not
/// [`RESERVED_QUERY_NAME`].
pub fn is_query_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name != RESERVED_QUERY_NAME
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL is not one read-only, permitted SELECT; the text says why.
    #[error("{0}")]
    Refused(String),
    #[error("the query ran past its time limit and was interrupted")]
    TimedOut,
    /// A value or the whole answer is past its bound; the text says which.
    #[error("{0}")]
    TooLarge(String),
    /// A parameter value the query cannot take (PostgreSQL: not valid for the type
    /// its parameter is compared with); 400 on the wire.
    #[error("{0}")]
    BadValue(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// From 1.
    pub no: u32,
    /// 1 to 500.
    pub size: u32,
}

#[cfg(test)]
mod tests {
    use super::is_query_name;

    #[test]
    fn query_names_are_url_safe_bounded_and_not_the_route_name() {
        for ok in ["a", "Sales_2024-Q1", "x0", &"n".repeat(64)] {
            assert!(is_query_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            &"n".repeat(65),
            "getdata",
            "a b",
            "a/b",
            "a.b",
            "a%20",
            "caf\u{e9}",
        ] {
            assert!(!is_query_name(bad), "{bad:?}");
        }
    }
}
