//! The SQLite engine: one database file, one writer thread that commits in groups
//! ([`writer`]), reader threads beside it in WAL mode ([`readers`]), the seat
//! ledger and confirmed client records the writer keeps in memory, a checkpointer,
//! and the GetData sandbox. All of it is private to the engine: the rest of tollgate
//! sees [`SqliteStore`] only through [`crate::store::Store`] (surface.rs).
//!
//! Plain synchronous functions over `&Connection` live in the submodules; the
//! surface runs them on the reader or writer threads.
mod access;
pub mod audit;
pub mod demo;
pub(crate) mod fsync;
mod keys;
mod products;
mod queries;
mod readers;
pub mod sandbox;
mod schema;
mod scopes;
mod script_run;
mod scripts;
mod seats;
pub(crate) mod sessions;
mod surface;
mod sweep;
mod tokens;
mod users;
pub mod writer;

use crate::clock::SharedClock;
use crate::store::StoreError;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use schema::CONNECTION_PRAGMAS;
pub use schema::{latest_migration, migrate, open_existing, open_migrated};
pub use sweep::SWEEP_STEP;

/// How a [`SqliteStore`] opens.
#[derive(Debug, Clone)]
pub struct Options {
    /// Reader threads (each with its own connection).
    pub readers: u32,
    /// Sandboxed connections for GetData queries; none, and no sandbox, if 0.
    pub sandbox: u32,
    /// `--data-db`: a business database GetData queries read as schema `data`.
    pub data_db: Option<PathBuf>,
    pub query_time_limit: Duration,
    /// Create and migrate a missing file (the server), or refuse it (admin commands).
    pub create: bool,
    /// Checkpoint the WAL on a thread of its own (the server), or let SQLite do it.
    pub checkpointer: bool,
}

impl Options {
    /// An admin command's: one reader, no sandbox, an existing file.
    pub fn command() -> Self {
        Self {
            readers: 1,
            sandbox: 0,
            data_db: None,
            query_time_limit: Duration::from_secs(2),
            create: false,
            checkpointer: false,
        }
    }

    /// With one sandbox connection, for a command that checks or runs queries.
    pub fn with_sandbox(self, data_db: Option<PathBuf>, query_time_limit: Duration) -> Self {
        Self {
            sandbox: 1,
            data_db,
            query_time_limit,
            ..self
        }
    }
}

/// The SQLite engine's handle; cloning is cheap.
///
/// One writer connection, owned by one thread ([`writer::Writer`]), serialises
/// tollgate's own writes in-process and commits them in groups; reader threads
/// ([`readers::Readers`]), each with its own connection, run beside it in WAL mode.
#[derive(Clone)]
pub struct SqliteStore {
    readers: readers::Readers,
    writer: writer::Writer,
    audit: Arc<audit::AuditQueue>,
    sandbox: Option<sandbox::Sandbox>,
    clock: SharedClock,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the file (creating and migrating it if `options.create`).
    pub fn open(path: &Path, clock: SharedClock, options: &Options) -> Result<Self, StoreError> {
        let c = if options.create {
            open_migrated(path)?
        } else {
            open_existing(path)?
        };
        // Keep the file's WAL mode settled before the writer and readers start.
        c.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")?;
        c.set_prepared_statement_cache_capacity(64);
        // A checkpointer thread copies the WAL into the database, and the writer
        // restarts it at least every half second (see writer/checkpointer.rs), so under
        // load the WAL holds up to about 32 MiB. The file keeps the largest size it ever
        // reached: past 64 MiB it is cut back when the WAL next restarts.
        c.execute_batch("PRAGMA journal_size_limit = 67108864;")?;
        // Inside a transaction, a statement that may change several rows keeps the
        // pages it may have to restore in a statement journal, a temporary file once
        // past 64 KiB (the sweep's deletes, say); in memory it never reaches the disk.
        c.execute_batch("PRAGMA temp_store = MEMORY;")?;
        let side = if options.checkpointer {
            let side = Connection::open(path)?;
            side.execute_batch(CONNECTION_PRAGMAS)?;
            Some(side)
        } else {
            None
        };
        let audit = Arc::new(audit::AuditQueue::default());
        let watched = options.checkpointer.then_some(path);
        let writer = writer::Writer::start(c, side, audit.clone(), watched)?;
        let conns = (0..options.readers.max(1))
            .map(|_| {
                let c = Connection::open(path)?;
                c.execute_batch(CONNECTION_PRAGMAS)?;
                c.execute_batch("PRAGMA query_only = ON;")?;
                c.set_prepared_statement_cache_capacity(64);
                Ok(c)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let readers = readers::Readers::start(conns)?;
        let sandbox = (options.sandbox > 0)
            .then(|| {
                sandbox::Sandbox::open(
                    path,
                    options.data_db.clone(),
                    options.sandbox,
                    options.query_time_limit,
                )
            })
            .transpose()?;
        Ok(Self {
            readers,
            writer,
            audit,
            sandbox,
            clock,
            path: path.to_owned(),
        })
    }

    /// Runs `f` on a reader thread, off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.readers.read(f).await
    }

    /// Runs `f` on the writer thread, in the next group commit; answers after it.
    /// `f` runs inside the group's transaction, and may run again if another job of
    /// its group fails (see writer/group.rs): it must not act outside the database.
    /// For the engine and for tests that hold the writer up.
    pub async fn write<T, F>(&self, mut f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(move |c, _| f(c)).await
    }

    /// Like [`SqliteStore::write`], with what the writer keeps in memory: its seat
    /// ledger, for every change to seats, and its confirmed client records. A job that
    /// fails makes the seat ledger reload from the table.
    async fn write_with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection, &mut writer::WriterState) -> Result<T, StoreError>
            + Send
            + 'static,
    {
        self.writer.write(f).await
    }

    /// The writer connection outside any transaction, waited for on this thread:
    /// for startup and shutdown work (a WAL checkpoint cannot run in a transaction).
    fn write_now<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        self.writer.run_alone(move |c, _| f(c))
    }

    /// Whether writes can be made now: the writer answers a job within `within`, and
    /// writes are not failing (see [`writer::Health`]). While they were failing, the
    /// probe rewrites the licence row to find out whether they still do, so that
    /// readiness recovers without waiting for a client's write.
    async fn check_writes(&self, within: Duration) -> Result<(), StoreError> {
        let health = self.writer.health().clone();
        let probe = self.writer.write(move |c, _| {
            if health.fault().is_some() {
                c.execute("UPDATE licence SET seats = seats", [])?;
            }
            Ok(())
        });
        tokio::time::timeout(within, probe).await.map_err(|_| {
            StoreError::Unavailable(format!(
                "the database writer did not answer within {} ms",
                within.as_millis()
            ))
        })??;
        match self.writer.health().fault() {
            Some(why) => Err(StoreError::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// Copies what the WAL holds into the database file as far as no reader stops
    /// it, without waiting: for an admin command before it exits, so that the file
    /// alone holds its change.
    pub fn settle(&self) {
        if let Err(e) = self.write_now(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")?))
        {
            log::debug!("WAL checkpoint before exit failed: {e}");
        }
    }

    /// The file this store opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The time, from the clock the store was given.
    fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// A write transaction for one change: `BEGIN IMMEDIATE` on an idle connection
/// (admin commands), or, inside the writer's group transaction, that transaction
/// itself. Dropped without [`Tx::commit`], a top-level one rolls back; a joined one
/// leaves that to the writer, which rolls back the whole group when a job fails
/// (see writer/group.rs). Every early return without a commit therefore either has
/// written nothing or returns an error.
pub enum Tx<'c> {
    Top(Transaction<'c>),
    Joined(&'c Connection),
}

impl Tx<'_> {
    pub fn commit(self) -> Result<(), StoreError> {
        if let Tx::Top(t) = self {
            t.commit()?;
        }
        Ok(())
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Tx::Top(t) => t,
            Tx::Joined(c) => c,
        }
    }
}

/// Opens a write transaction for one change; see [`Tx`].
pub fn immediate(c: &mut Connection) -> Result<Tx<'_>, StoreError> {
    if c.is_autocommit() {
        Ok(Tx::Top(c.transaction_with_behavior(
            TransactionBehavior::Immediate,
        )?))
    } else {
        Ok(Tx::Joined(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{new_token, token_hash, token_key};
    use crate::store::RefreshOutcome;

    /// V4 gave tokens row ids; tokens issued before it must keep working until they
    /// expire, and new ones must not collide with them.
    #[test]
    fn tokens_issued_before_v4_survive_the_migration() {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
        schema::embedded::migrations::runner()
            .set_target(refinery::Target::Version(3))
            .run(&mut c)
            .unwrap();
        let (access, refresh) = ("A".repeat(43), "R".repeat(43));
        c.execute_batch(
            r#"INSERT INTO USERS (ID, NICKNAME, "PASSWORD", CREATED_AT) VALUES (7, 'old', 'x', 0);
               INSERT INTO sessions (id, user_id, scope, licensed, created_at, expires_at)
                   VALUES (3, 7, 'all view', 1, 0, 1200);"#,
        )
        .unwrap();
        c.execute(
            "INSERT INTO access_tokens (hash, session_id, scope, issued_at, expires_at)
             VALUES (?1, 3, 'all view', 0, 300)",
            [&token_hash(&access)[..]],
        )
        .unwrap();
        c.execute(
            "INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES (?1, 3, 0)",
            [&token_hash(&refresh)[..]],
        )
        .unwrap();
        migrate(&mut c).unwrap();

        let grant = access::find_access(&c, &token_key(&access), 10)
            .unwrap()
            .expect("a pre-V4 access token still works");
        assert_eq!((grant.client_id.as_str(), grant.session_id), ("old", 3));
        assert!(access::find_access(&c, &token_key(&"B".repeat(43)), 10)
            .unwrap()
            .is_none());

        let (a, r) = (new_token(), new_token());
        let pair = sessions::IssuedPair {
            access_hash: a.hash,
            refresh_hash: r.hash,
            access_expires_at: 310,
            refresh_expires_at: 1210,
            key: None,
        };
        let mut seats = seats::SeatLedger::default();
        let out = sessions::refresh(
            &mut c,
            &mut seats,
            &token_key(&refresh),
            7,
            &pair,
            10,
            |scope| Ok::<_, ()>(scope.to_owned()),
        )
        .unwrap()
        .unwrap();
        let RefreshOutcome::Rotated { ids, .. } = out else {
            panic!("a pre-V4 refresh token rotates: {out:?}");
        };
        assert_eq!((ids.access, ids.refresh), (2, 2), "new rows follow the old");
        assert!(access::find_access(&c, &token_key(&a.text(ids.access)), 10)
            .unwrap()
            .is_some());
        let legacy: i64 = c
            .query_row(
                "SELECT count(*) FROM refresh_tokens WHERE legacy = 1 AND used_at = 10",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(legacy, 1, "the old refresh token is marked used");
        // Reuse of the exchanged pre-V4 token is still detected.
        let again = sessions::refresh(
            &mut c,
            &mut seats,
            &token_key(&refresh),
            7,
            &pair,
            11,
            |scope| Ok::<_, ()>(scope.to_owned()),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(again, RefreshOutcome::Reused));
    }
}
