//! The layers hold: http → oauth → store, with nothing running back up, and the
//! database engines behind the store's surface. Each rule reads the source files of
//! one layer and names what they must not mention.
use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, or `dir` itself when it is a file.
fn sources(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let mut todo = vec![root.clone()];
    while let Some(p) = todo.pop() {
        if p.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    assert!(!out.is_empty(), "no sources under {}", root.display());
    out.sort();
    out
}

/// The places in `dir` that mention any of `forbidden`, as `file:line: text`.
fn mentions(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in sources(dir) {
        let text = fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    found
}

fn assert_none(dir: &str, forbidden: &[&str], why: &str) {
    let found = mentions(dir, forbidden);
    assert!(found.is_empty(), "{why}:\n{}", found.join("\n"));
}

#[test]
fn oauth_knows_no_http_framework_and_no_database() {
    assert_none(
        "src/oauth",
        &[
            "actix",
            "rusqlite",
            "r2d2",
            "tokio_postgres",
            "deadpool",
            "crate::http",
            "crate::cli",
            "crate::admin",
        ],
        "oauth/ holds the grants as plain functions over the store's surface",
    );
}

#[test]
fn admin_operations_know_no_front_end_and_no_database() {
    assert_none(
        "src/admin",
        &[
            "actix",
            "rusqlite",
            "r2d2",
            "tokio_postgres",
            "deadpool",
            "crate::http",
            "crate::cli",
            "clap",
        ],
        "admin/ holds the operations both front ends (CLI, admin API) run, over the store's surface",
    );
}

#[test]
fn the_store_runs_nothing_back_up() {
    assert_none(
        "src/store",
        &[
            "actix",
            "crate::http",
            "crate::oauth",
            "crate::cli",
            "crate::startup",
            "crate::admin",
        ],
        "the store knows neither HTTP nor the OAuth rules",
    );
}

#[test]
fn the_store_surface_names_no_engine() {
    for file in [
        "src/store/mod.rs",
        "src/store/model.rs",
        "src/store/maintenance.rs",
        "src/store/demo.rs",
        "src/store/getdata.rs",
    ] {
        assert_none(
            file,
            &[
                "rusqlite",
                "r2d2",
                "Connection",
                "tokio_postgres",
                "deadpool",
            ],
            "the store's surface and its types are the same for every engine",
        );
    }
}

#[test]
fn handlers_and_commands_reach_the_database_only_through_the_store() {
    for dir in ["src/http", "src/cli", "src/cli/banner.rs"] {
        assert_none(
            dir,
            &[
                "rusqlite",
                "r2d2",
                "tokio_postgres",
                "deadpool",
                "store::sqlite::sessions",
                "store::sqlite::users",
            ],
            "HTTP handlers and admin commands use the store's surface",
        );
    }
}

/// The rules above would pass on an empty match: they must see real files.
#[test]
fn the_rules_read_the_layers_they_name() {
    assert!(sources("src/oauth").iter().any(|p| p.ends_with("grant.rs")));
    assert!(!mentions("src/admin", &["self.store."]).is_empty());
    assert!(!mentions("src/store/sqlite", &["rusqlite"]).is_empty());
    assert!(!mentions("src/store/postgres", &["tokio_postgres"]).is_empty());
    assert!(!mentions("src/http", &["actix_web"]).is_empty());
}
