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
            _ => false,
        }
    }
}
