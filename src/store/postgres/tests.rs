//! The engine's options, URLs and pools, against the PostgreSQL of `testing`.
use super::*;
use crate::clock::SystemClock;

#[test]
fn urls_are_told_from_files_and_shown_without_their_password() {
    assert!(is_url("postgres://u@h/db") && is_url("postgresql://h/db"));
    assert!(!is_url("./tollgate.db") && !is_url("postgres.db"));
    assert_eq!(
        redacted("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
}

#[test]
fn the_statement_limit_joins_the_urls_own_options() {
    let limit = Some(Duration::from_secs(3));
    assert_eq!(
        startup_options(None, limit),
        "-c client_min_messages=warning -c statement_timeout=3000"
    );
    assert_eq!(
        startup_options(Some("-c search_path=x"), limit),
        "-c search_path=x -c statement_timeout=3000"
    );
    assert_eq!(
        startup_options(Some("-c statement_timeout=9000"), limit),
        "-c statement_timeout=9000"
    );
    assert_eq!(
        startup_options(None, None),
        "-c client_min_messages=warning"
    );
}

#[test]
fn the_batch_connections_plan_once_unless_the_url_says_otherwise() {
    let mut config = tokio_postgres::Config::new();
    config.options("-c client_min_messages=warning");
    assert_eq!(
        batch_config(&config).get_options(),
        Some("-c client_min_messages=warning -c plan_cache_mode=force_generic_plan")
    );
    config.options("-c plan_cache_mode=auto");
    assert_eq!(
        batch_config(&config).get_options(),
        Some("-c plan_cache_mode=auto")
    );
}

/// Nothing listens on port 1: the failure is the database's absence (503 on the
/// wire), and it comes within the wait bound.
#[tokio::test]
async fn an_unreachable_database_is_unavailable_within_the_bound() {
    let options = Options {
        wait: Duration::from_millis(500),
        ..Options::command()
    };
    let started = std::time::Instant::now();
    let e = PostgresStore::open(
        "postgres://postgres@127.0.0.1:1/none",
        Arc::new(SystemClock),
        &options,
    )
    .await
    .err()
    .expect("no database there");
    assert!(e.is_unavailable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
