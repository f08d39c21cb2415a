//! What can go wrong below the store's surface, whatever the engine.

/// Failures inside tollgate (database, pool, thread pool). Never the client's fault;
/// on the wire they all become one opaque 500 `server_error`, logged once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres connection pool: {0}")]
    PostgresPool(#[from] deadpool_postgres::PoolError),
    #[error("blocking task was cancelled")]
    Cancelled,
    #[error("{0}")]
    Invalid(String),
    /// The database cannot take requests now (its file gone, its writer stopped or
    /// not answering); see [`StoreError::is_unavailable`].
    #[error("{0}")]
    Unavailable(String),
}

impl StoreError {
    /// A fault of the database's surroundings rather than of tollgate or the request:
    /// a full disk, an I/O error, a vanished or read-only file, a lock held too long,
    /// a stopped writer. Clients are told to come back (503 with `Retry-After`), and
    /// it goes when the cause does.
    pub fn is_unavailable(&self) -> bool {
        use rusqlite::ErrorCode as C;
        match self {
            Self::Unavailable(_) | Self::Pool(_) => true,
            Self::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    C::DiskFull
                        | C::SystemIoFailure
                        | C::CannotOpen
                        | C::ReadOnly
                        | C::DatabaseBusy
                        | C::DatabaseLocked
                )
            ),
            Self::Postgres(e) => postgres_unavailable(e),
            Self::PostgresPool(e) => match e {
                deadpool_postgres::PoolError::Backend(e) => postgres_unavailable(e),
                // Timed out waiting for a connection (or making one), or shut down.
                _ => true,
            },
            _ => false,
        }
    }
}

/// PostgreSQL cannot be reached or is going away: the connection is refused, lost or
/// closed, the server shuts down or is starting, or the transaction lost a deadlock
/// or serialization race (the request may simply be tried again).
fn postgres_unavailable(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08") // connection exception
                || code.code().starts_with("53") // insufficient resources
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::QUERY_CANCELED,
                ]
                .contains(code)
        }
        // No SQLSTATE: the failure was below SQL (I/O, connecting, a timeout).
        None => {
            std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                || e.to_string().contains("timed out")
                || e.to_string().contains("connect")
        }
    }
}
