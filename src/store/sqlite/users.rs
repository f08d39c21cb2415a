//! USERS and their allowed scopes.
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// The PBKDF2 iteration count that most API users' stored secrets use: what checking
/// the secret of an unknown client must cost too, so that timing does not tell.
pub fn typical_iterations(c: &Connection) -> Result<Option<u32>, StoreError> {
    let mut counts = std::collections::HashMap::<u32, usize>::new();
    let mut st = c.prepare("SELECT \"PASSWORD\" FROM users WHERE apiuser = 1")?;
    let hashes = st.query_map([], |r| r.get::<_, String>(0))?;
    for hash in hashes {
        if let Some(n) = crate::crypto::iterations(&hash?) {
            *counts.entry(n).or_default() += 1;
        }
    }
    Ok(counts
        .into_iter()
        .max_by_key(|(n, count)| (*count, *n))
        .map(|(n, _)| n))
}

pub fn find_client(c: &Connection, nickname: &str) -> Result<Option<ClientRecord>, StoreError> {
    client_where(
        c,
        r#"SELECT ID, "PASSWORD", APIUSER, ENABLED FROM USERS WHERE NICKNAME = ?1"#,
        nickname,
    )
}

fn find_client_by_id(c: &Connection, id: i64) -> Result<Option<ClientRecord>, StoreError> {
    client_where(
        c,
        r#"SELECT ID, "PASSWORD", APIUSER, ENABLED FROM USERS WHERE ID = ?1"#,
        id,
    )
}

fn client_where(
    c: &Connection,
    sql: &str,
    key: impl rusqlite::ToSql,
) -> Result<Option<ClientRecord>, StoreError> {
    let row = c
        .prepare_cached(sql)?
        .query_row([key], |r| {
            Ok(ClientRecord {
                id: r.get(0)?,
                password_hash: r.get(1)?,
                api_user: r.get(2)?,
                enabled: r.get(3)?,
                scopes: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut rec) = row else { return Ok(None) };
    let mut st = c.prepare_cached(
        "SELECT s.name, s.licensed FROM user_scopes us JOIN scopes s ON s.name = us.scope
         WHERE us.user_id = ?1 ORDER BY s.name",
    )?;
    rec.scopes = st
        .query_map([rec.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Some(rec))
}

/// Client records the writer has checked against the table, valid until another
/// connection (an admin command) commits: SQLite's `PRAGMA data_version` tells.
/// The server itself never changes users, so its own commits cannot stale them.
#[derive(Debug, Default)]
pub struct ConfirmedClients {
    version: Option<i64>,
    by_id: std::collections::HashMap<i64, ClientRecord>,
}

impl ConfirmedClients {
    /// Forgets what it knows: the next `confirm` reads the table. After a rollback.
    pub fn invalidate(&mut self) {
        self.version = None;
    }

    /// Whether `r` is still what the table says, as of this transaction. Call inside
    /// the write transaction, so nothing can change between the check and the write.
    pub fn confirm(&mut self, c: &Connection, r: &ClientRecord) -> Result<bool, StoreError> {
        let version: i64 = c
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.version != Some(version) {
            self.by_id.clear();
            self.version = Some(version);
        }
        if self.by_id.get(&r.id) == Some(r) {
            return Ok(true);
        }
        match find_client_by_id(c, r.id)? {
            Some(fresh) if fresh == *r => {
                if self.by_id.len() >= 10_000 {
                    self.by_id.clear();
                }
                self.by_id.insert(fresh.id, fresh);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

pub fn create(c: &Connection, u: &NewUser, now: i64) -> Result<i64, StoreError> {
    c.execute(
        r#"INSERT INTO USERS (NICKNAME, "PASSWORD", APIUSER, ENABLED, CREATED_AT) VALUES (?1, ?2, ?3, 1, ?4)"#,
        params![u.nickname, u.password_hash, u.api_user, now],
    )?;
    let id = c.last_insert_rowid();
    for s in &u.scopes {
        c.execute(
            "INSERT INTO user_scopes (user_id, scope) VALUES (?1, ?2)",
            params![id, s],
        )?;
    }
    Ok(id)
}

pub fn list(c: &Connection, now: i64) -> Result<Vec<UserSummary>, StoreError> {
    let mut st = c.prepare(
        r#"SELECT u.NICKNAME, u.APIUSER, u.ENABLED,
                  (SELECT group_concat(scope, ' ') FROM (SELECT scope FROM user_scopes WHERE user_id = u.ID ORDER BY scope)),
                  (SELECT count(*) FROM sessions s WHERE s.user_id = u.ID AND s.revoked_at IS NULL AND s.expires_at > ?1),
                  u.CREATED_AT
           FROM USERS u ORDER BY u.NICKNAME"#,
    )?;
    let rows = st
        .query_map([now], |r| {
            let scopes: Option<String> = r.get(3)?;
            Ok(UserSummary {
                nickname: r.get(0)?,
                api_user: r.get(1)?,
                enabled: r.get(2)?,
                scopes: scopes
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                live_sessions: r.get(4)?,
                created_at: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn id_of(c: &Connection, nickname: &str) -> Result<Option<i64>, StoreError> {
    Ok(c.query_row(
        "SELECT ID FROM USERS WHERE NICKNAME = ?1",
        [nickname],
        |r| r.get(0),
    )
    .optional()?)
}

/// Enables or disables a user; disabling ends its live sessions (API.md §1).
/// Returns the number of sessions ended.
pub fn set_enabled(
    c: &mut Connection,
    id: i64,
    enabled: bool,
    now: i64,
) -> Result<usize, StoreError> {
    let tx = super::immediate(c)?;
    tx.execute(
        "UPDATE USERS SET ENABLED = ?2 WHERE ID = ?1",
        params![id, enabled],
    )?;
    let ended = if enabled {
        0
    } else {
        tx.execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
            params![id, now],
        )?
    };
    tx.commit()?;
    Ok(ended)
}

/// Replaces a user's allowed scopes. Live sessions keep the scope they were
/// granted; the next grant or refresh sees the new set.
pub fn set_scopes(c: &mut Connection, id: i64, scopes: &[String]) -> Result<(), StoreError> {
    let tx = super::immediate(c)?;
    tx.execute("DELETE FROM user_scopes WHERE user_id = ?1", [id])?;
    for s in scopes {
        tx.execute(
            "INSERT INTO user_scopes (user_id, scope) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![id, s],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Deletes a user with its sessions (so its tokens stop working and its seats free);
/// the sweep deletes the tokens. Returns the number of live sessions that ended.
pub fn remove(c: &mut Connection, id: i64, now: i64) -> Result<usize, StoreError> {
    let tx = super::immediate(c)?;
    let live: i64 = tx.query_row(
        "SELECT count(*) FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
        params![id, now],
        |r| r.get(0),
    )?;
    tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id])?;
    tx.execute("DELETE FROM user_scopes WHERE user_id = ?1", [id])?;
    tx.execute("DELETE FROM USERS WHERE ID = ?1", [id])?;
    tx.commit()?;
    Ok(live.try_into().unwrap_or_default())
}

pub fn set_password(c: &Connection, id: i64, hash: &str) -> Result<(), StoreError> {
    c.execute(
        r#"UPDATE USERS SET "PASSWORD" = ?2 WHERE ID = ?1"#,
        params![id, hash],
    )?;
    Ok(())
}
