//! SQLite access. Plain synchronous functions over `&Connection` live in the
//! submodules; async code reaches them only through [`Db::read`] and [`Db::write`],
//! which run them on the blocking thread pool.
pub mod audit;
pub mod demo;
mod fsync;
pub mod maintenance;
pub mod products;
pub mod queries;
pub mod readers;
mod schema;
pub mod seats;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod writer;

use crate::error::StoreError;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use schema::CONNECTION_PRAGMAS;
pub use schema::{latest_migration, migrate, open_existing, open_migrated};

/// Reader threads and the single writer thread.
///
/// One writer connection, owned by one thread ([`writer::Writer`]), serialises
/// tollgate's own writes in-process and commits them in groups; reader threads
/// ([`readers::Readers`]), each with its own connection, run beside it in WAL mode.
/// Cloning is cheap.
#[derive(Clone)]
pub struct Db {
    readers: readers::Readers,
    writer: writer::Writer,
    audit: Arc<audit::AuditQueue>,
}

impl Db {
    /// Opens (creating if needed) and migrates the file.
    pub fn open(path: &Path, readers: u32) -> Result<Self, StoreError> {
        let c = open_migrated(path)?;
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
        // The checkpointer's connection.
        let side = Connection::open(path)?;
        side.execute_batch(CONNECTION_PRAGMAS)?;
        let audit = Arc::new(audit::AuditQueue::default());
        let writer = writer::Writer::start(c, Some(side), audit.clone(), Some(path))?;
        let conns = (0..readers.max(1))
            .map(|_| {
                let c = Connection::open(path)?;
                c.execute_batch(CONNECTION_PRAGMAS)?;
                c.execute_batch("PRAGMA query_only = ON;")?;
                c.set_prepared_statement_cache_capacity(64);
                Ok(c)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let readers = readers::Readers::start(conns)?;
        Ok(Self {
            readers,
            writer,
            audit,
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

    /// Whether writes can be made now: the writer answers a job within `within`, and
    /// writes are not failing (see [`writer::Health`]). While they were failing, the
    /// probe rewrites the licence row to find out whether they still do, so that
    /// readiness recovers without waiting for a client's write.
    pub async fn check_writes(&self, within: std::time::Duration) -> Result<(), StoreError> {
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

    /// Audit records waiting for the writer: each group commit writes some.
    pub fn audit_queue(&self) -> &Arc<audit::AuditQueue> {
        &self.audit
    }

    /// Runs `f` on the writer thread, in the next group commit; answers after it.
    /// `f` runs inside the group's transaction, and may run again if another job of
    /// its group fails (see writer/group.rs): it must not act outside the database.
    pub async fn write<T, F>(&self, mut f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.write(move |c, _| f(c)).await
    }

    /// Like [`Db::write`], with what the writer keeps in memory: its seat ledger, for
    /// every change to seats, and its confirmed client records. A job that fails makes
    /// the seat ledger reload from the table.
    pub async fn write_with<T, F>(&self, f: F) -> Result<T, StoreError>
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
    pub fn write_now<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        self.writer.run_alone(move |c, _| f(c))
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

/// Rows one sweep step deletes at most, per table. Every write waits for the
/// writer's current group, so a sweep that deleted a minute of expired grants at once
/// would hold up every grant behind it; it goes in steps instead.
pub const SWEEP_STEP: usize = 1_000;

/// Deletes the rows that `read` lists (id, created, expires_at, revoked_at, and
/// whether the row's session is gone) and that were dead (expired or revoked) before
/// `cutoff` or belong to no session, at most [`SWEEP_STEP`]. `read` lists the rows in
/// id order, which is creation order, so the read stops at the first row created
/// after the cutoff: nothing from there on can have been dead that long. A step reads
/// the rows it deletes and the few old rows still alive (sessions kept alive by
/// refreshes), not the whole table while every write waits behind it, as a plain
/// `WHERE expires_at < ? OR revoked_at < ?` would. (A clock stepped back only delays
/// a row's sweep: it is found on a later step.)
fn sweep_table(tx: &Connection, table: &str, read: &str, cutoff: i64) -> Result<usize, StoreError> {
    let mut st = tx.prepare_cached(read)?;
    let mut rows = st.query([])?;
    let mut ids = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, created, expires, revoked, orphan): (i64, i64, i64, Option<i64>, bool) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        if created >= cutoff {
            break;
        }
        if orphan || expires < cutoff || revoked.is_some_and(|at| at < cutoff) {
            ids.push(id);
            if ids.len() == SWEEP_STEP {
                break;
            }
        }
    }
    let mut delete = tx.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?;
    for id in &ids {
        delete.execute([id])?;
    }
    Ok(ids.len())
}

/// One step of deleting what can no longer matter: sessions and access tokens dead
/// for longer than `grace`, and the tokens of deleted sessions. Tokens have no
/// foreign key to their session (V6, V7), so nothing cascades: a session's tokens
/// are deleted here once it is gone. Returns the rows deleted and whether a table
/// may have more.
pub fn sweep(c: &mut Connection, now: i64, grace: i64) -> Result<(usize, bool), StoreError> {
    let cutoff = now - grace;
    let tx = immediate(c)?;
    let sessions = sweep_table(
        &tx,
        "sessions",
        "SELECT id, created_at, expires_at, revoked_at, 0 FROM sessions ORDER BY id",
        cutoff,
    )?;
    // After the sessions, so that the tokens of those just deleted go too.
    let tokens = sweep_table(
        &tx,
        "access_tokens",
        "SELECT a.id, a.issued_at, a.expires_at, a.revoked_at, s.id IS NULL
             FROM access_tokens a LEFT JOIN sessions s ON s.id = a.session_id ORDER BY a.id",
        cutoff,
    )?;
    // A refresh token lives as long as its session: a used one is kept for reuse
    // detection (never expired here).
    let refresh = sweep_table(
        &tx,
        "refresh_tokens",
        "SELECT r.id, r.issued_at, 9223372036854775807, NULL, s.id IS NULL
             FROM refresh_tokens r LEFT JOIN sessions s ON s.id = r.session_id ORDER BY r.id",
        cutoff,
    )?;
    tx.commit()?;
    Ok((
        sessions + tokens + refresh,
        [sessions, tokens, refresh].contains(&SWEEP_STEP),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{new_token, token_hash, token_key};

    /// The demo-less minimum for sessions: one user.
    fn with_user() -> Connection {
        let c = open_migrated(Path::new(":memory:")).unwrap();
        c.execute_batch(
            r#"INSERT INTO USERS (ID, NICKNAME, "PASSWORD", CREATED_AT) VALUES (7, 'u', 'x', 0);"#,
        )
        .unwrap();
        c
    }

    /// The sweep reads the rows it deletes and stops at the first one created after
    /// the cutoff: its work does not grow with the live rows behind them.
    #[test]
    fn the_sweep_does_not_read_the_live_rows() {
        let work = |live: i64| -> u64 {
            let mut c = with_user();
            c.execute_batch(&format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)
                 INSERT INTO sessions (user_id, scope, licensed, created_at, expires_at)
                     SELECT 7, 'view', 0, 0, 100 FROM n;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {live})
                 INSERT INTO sessions (user_id, scope, licensed, created_at, expires_at)
                     SELECT 7, 'view', 0, 5000, 9000 FROM n;
                 INSERT INTO access_tokens (hash, session_id, scope, issued_at, expires_at)
                     SELECT randomblob(32), id, 'view', created_at, expires_at FROM sessions;
                 INSERT INTO refresh_tokens (hash, session_id, issued_at)
                     SELECT randomblob(32), id, created_at FROM sessions;"
            ))
            .unwrap();
            let steps = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = steps.clone();
            c.progress_handler(
                100,
                Some(move || {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    false
                }),
            )
            .unwrap();
            // 10 sessions and their 10 access and 10 refresh tokens.
            assert_eq!(sweep(&mut c, 1000, 100).unwrap(), (30, false));
            c.progress_handler(100, None::<fn() -> bool>).unwrap();
            steps.load(std::sync::atomic::Ordering::Relaxed)
        };
        let (few, many) = (work(10), work(20_000));
        assert!(
            many <= few + few / 2 + 5,
            "{few} steps with 10 live rows, {many} with 20,000"
        );
    }

    /// Dead (expired or revoked) before the grace period: gone, with its tokens;
    /// expired within the grace period, or alive: kept.
    #[test]
    fn the_sweep_deletes_what_died_before_the_grace_period() {
        let mut c = with_user();
        c.execute_batch(
            "INSERT INTO sessions (id, user_id, scope, licensed, created_at, expires_at, revoked_at)
                 VALUES (1, 7, 'view', 0, 0, 100, NULL),
                        (2, 7, 'view', 0, 0, 100, 50),
                        (3, 7, 'view', 0, 0, 5000, 50),
                        (4, 7, 'view', 0, 0, 950, NULL),
                        (5, 7, 'view', 0, 0, 5000, NULL);
             INSERT INTO access_tokens (hash, session_id, scope, issued_at, expires_at)
                 VALUES (x'01', 1, 'view', 0, 100), (x'02', 3, 'view', 0, 5000),
                        (x'03', 4, 'view', 0, 950), (x'04', 5, 'view', 0, 200);
             INSERT INTO refresh_tokens (hash, session_id, issued_at)
                 VALUES (x'11', 1, 0), (x'12', 5, 0);",
        )
        .unwrap();
        let (deleted, more) = sweep(&mut c, 1000, 100).unwrap();
        assert!(!more);
        let ids = |sql: &str| -> Vec<i64> {
            let mut st = c.prepare(sql).unwrap();
            let v = st.query_map([], |r| r.get(0)).unwrap();
            v.map(Result::unwrap).collect()
        };
        assert_eq!(ids("SELECT id FROM sessions ORDER BY id"), [4, 5]);
        assert_eq!(
            ids("SELECT session_id FROM access_tokens ORDER BY id"),
            [4],
            "sessions 1 and 3's went with them; session 5's expired before the cutoff"
        );
        assert_eq!(ids("SELECT session_id FROM refresh_tokens"), [5]);
        assert_eq!(
            deleted, 7,
            "sessions 1, 2 and 3, the access tokens of 1, 3 and 5, the refresh token of 1"
        );
    }

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

        let grant = sessions::find_access(&c, &token_key(&access), 10)
            .unwrap()
            .expect("a pre-V4 access token still works");
        assert_eq!((grant.client_id.as_str(), grant.session_id), ("old", 3));
        assert!(sessions::find_access(&c, &token_key(&"B".repeat(43)), 10)
            .unwrap()
            .is_none());

        let (a, r) = (new_token(), new_token());
        let pair = sessions::IssuedPair {
            access_hash: a.hash,
            refresh_hash: r.hash,
            access_expires_at: 310,
            refresh_expires_at: 1210,
        };
        let mut seats = seats::SeatLedger::default();
        let out = sessions::refresh(
            &mut c,
            &mut seats,
            &token_key(&refresh),
            7,
            &pair,
            10,
            |t| Ok::<_, ()>(t.scope.clone()),
        )
        .unwrap()
        .unwrap();
        let sessions::RefreshOutcome::Rotated { ids, .. } = out else {
            panic!("a pre-V4 refresh token rotates: {out:?}");
        };
        assert_eq!((ids.access, ids.refresh), (2, 2), "new rows follow the old");
        assert!(
            sessions::find_access(&c, &token_key(&a.text(ids.access)), 10)
                .unwrap()
                .is_some()
        );
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
            |t| Ok::<_, ()>(t.scope.clone()),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(again, sessions::RefreshOutcome::Reused));
    }
}
