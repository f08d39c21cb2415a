//! What the engine's own tests share: the PostgreSQL they run against.
/// `TOLLGATE_TEST_POSTGRES_URL`, default the local server.
pub(crate) fn url() -> String {
    std::env::var("TOLLGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Says that `test` is skipped because PostgreSQL is unreachable (`why`); fails
/// it instead when `TOLLGATE_TEST_REQUIRE_POSTGRES=1`, as in CI.
pub(crate) fn skip(test: &str, why: &dyn std::fmt::Display) {
    assert!(
        std::env::var("TOLLGATE_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "PostgreSQL is required but: {why}"
    );
    eprintln!("SKIPPED {test}: PostgreSQL is unreachable ({why})");
}
