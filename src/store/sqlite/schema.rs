//! Opening a database file: what is checked before anything changes it, the
//! connection settings, and the migrations compiled into the binary.
use crate::store::StoreError;
use rusqlite::Connection;
use std::path::Path;

pub(super) mod embedded {
    refinery::embed_migrations!("sql/sqlite");
}

/// Every connection: WAL (readers never wait for the writer), foreign keys, and a
/// busy timeout for the moments an admin command holds the write lock.
/// `synchronous=NORMAL` in WAL mode: a committed grant survives a process crash
/// (kill -9); only an OS crash or power loss can lose the last commits.
pub(super) const CONNECTION_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = NORMAL;
     PRAGMA foreign_keys = ON;
     PRAGMA busy_timeout = 5000;";

/// Open a connection for one-shot use (commands, tests), migrated.
pub fn open_migrated(path: &Path) -> Result<Connection, StoreError> {
    let mut c = Connection::open(path)?;
    // Nothing that changes the file (WAL mode rewrites its header) before it is known
    // to be tollgate's, and of a version this binary knows.
    check_schema(&c)?;
    c.execute_batch(CONNECTION_PRAGMAS)?;
    migrate(&mut c)?;
    Ok(c)
}

/// Refuses a database of another program (tables, but no tollgate schema history)
/// and one written by a newer tollgate. An empty database is tollgate's to create.
fn check_schema(c: &Connection) -> Result<(), StoreError> {
    let tables: Vec<String> = c
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if tables.is_empty() {
        return Ok(());
    }
    if !tables.iter().any(|t| t == "refinery_schema_history") {
        let mut shown = tables
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if tables.len() > 5 {
            shown.push_str(", …");
        }
        return Err(StoreError::Invalid(format!(
            "this is not a tollgate database: it has tables of another program ({shown}) and no \
             tollgate schema history, and tollgate will not add its tables to it; name a \
             tollgate database, or create one with `tollgate init FILE`"
        )));
    }
    let applied: Option<i64> = c.query_row(
        "SELECT max(version) FROM refinery_schema_history",
        [],
        |r| r.get(0),
    )?;
    let known = i64::from(latest_migration());
    match applied.filter(|v| *v > known) {
        Some(v) => Err(StoreError::Invalid(format!(
            "this database has schema version {v}, written by a newer tollgate; this binary \
             knows up to {known}: run the newer binary"
        ))),
        None => Ok(()),
    }
}

/// Brings the schema up to date; refuses a database of another program or written
/// by a newer tollgate.
pub fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    check_schema(c)?;
    embedded::migrations::runner().run(c)?;
    Ok(())
}

/// Opens an existing database for an admin command: a missing file is an error
/// that says how to create one, never a silently created empty database.
pub fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Invalid(format!(
            "no database at {p}; create one with `tollgate init {p}` (add --demo for the demo data), or name another with --db",
            p = path.display()
        )));
    }
    open_migrated(path).map_err(|e| match e {
        StoreError::Invalid(why) => StoreError::Invalid(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// The latest migration version compiled into this binary.
pub fn latest_migration() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}
