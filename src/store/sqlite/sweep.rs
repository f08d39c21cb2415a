//! Deleting what can no longer matter, in steps: sessions and tokens dead for
//! longer than the grace period, and the tokens of deleted sessions.
use super::{immediate, StoreError};
use rusqlite::Connection;

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
    use crate::store::sqlite::open_migrated;
    use std::path::Path;

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
}
