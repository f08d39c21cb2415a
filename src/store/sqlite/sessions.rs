//! Sessions (licence seats), refresh tokens and access tokens.
//!
//! API.md §2: a licensed session holds a seat while `revoked_at IS NULL AND
//! expires_at > now`. Counting held seats and inserting the session happen in one
//! `BEGIN IMMEDIATE` transaction, so the count cannot go stale between the two.

use super::immediate;
use super::seats::SeatLedger;
use crate::crypto::{TokenHash, TokenKey};
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// The token pair a grant issues, already hashed, with their lifetimes.
pub struct IssuedPair {
    pub access_hash: TokenHash,
    pub refresh_hash: TokenHash,
    pub access_expires_at: i64,
    pub refresh_expires_at: i64,
    /// The signing key of a signed access token.
    pub key: Option<i64>,
}

pub struct NewSession {
    pub user_id: i64,
    /// Space-separated, sorted.
    pub scope: String,
    pub licensed: bool,
    pub tokens: IssuedPair,
}

pub fn seats_total(c: &Connection) -> Result<i64, StoreError> {
    Ok(c.prepare_cached("SELECT seats FROM licence WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Sets the pool size; held sessions keep their seats if it shrinks below them.
pub fn set_seats(c: &Connection, seats: i64) -> Result<(), StoreError> {
    c.execute("UPDATE licence SET seats = ?1 WHERE id = 1", [seats])?;
    Ok(())
}

pub fn seats_held(c: &Connection, now: i64) -> Result<i64, StoreError> {
    Ok(c
        .prepare_cached(
            "SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > ?1",
        )?
        .query_row([now], |r| r.get(0))?)
}

/// The lookup of a presented token (see [`TokenKey`]), as SQL over a table's alias:
/// `?1` the row id (NULL for a token from before row ids), `?2` the hash.
macro_rules! by_key {
    ($table:literal, $alias:literal) => {
        concat!(
            $alias,
            ".id = coalesce(?1, (SELECT id FROM ",
            $table,
            " WHERE hash = ?2 AND legacy = 1)) AND ",
            $alias,
            ".hash = ?2"
        )
    };
}
pub(crate) use by_key;

fn insert_tokens(
    tx: &Connection,
    session_id: i64,
    scope: &str,
    t: &IssuedPair,
    now: i64,
) -> Result<TokenIds, StoreError> {
    tx.prepare_cached(
        "INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![&t.refresh_hash[..], session_id, now])?;
    let refresh = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO access_tokens (hash, session_id, scope, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        &t.access_hash[..],
        session_id,
        scope,
        now,
        t.access_expires_at
    ])?;
    Ok(TokenIds {
        access: tx.last_insert_rowid(),
        refresh,
        issued_at: now,
        key: t.key,
    })
}

/// Opens a session for a grant, taking a seat if it is licensed. The seat check
/// runs inside the write transaction, against the writer's [`SeatLedger`].
pub fn open(
    c: &mut Connection,
    s: &NewSession,
    now: i64,
    seats: &mut SeatLedger,
) -> Result<OpenOutcome, StoreError> {
    let tx = immediate(c)?;
    if s.licensed {
        seats.sync(&tx, now)?;
        let total = seats_total(&tx)?;
        if seats.held(now) >= total {
            let retry_after = if total > 0 {
                seats.first_frees_in(now)
            } else {
                None
            };
            return Ok(OpenOutcome::NoSeat { retry_after });
        }
    }
    tx.prepare_cached(
        "INSERT INTO sessions (user_id, scope, licensed, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        s.user_id,
        s.scope,
        s.licensed,
        now,
        s.tokens.refresh_expires_at
    ])?;
    let session_id = tx.last_insert_rowid();
    let ids = insert_tokens(&tx, session_id, &s.scope, &s.tokens, now)?;
    tx.commit()?;
    if s.licensed {
        seats.insert(s.tokens.refresh_expires_at);
    }
    Ok(OpenOutcome::Opened { session_id, ids })
}

/// Looks up, checks and rotates a refresh token in one transaction.
/// `decide` sees the scope the live session was granted and returns the scope for
/// the new access token,
/// or an error (e.g. widening) that aborts without changing anything.
pub fn refresh<E>(
    c: &mut Connection,
    seats: &mut SeatLedger,
    presented: &TokenKey,
    client_user_id: i64,
    new: &IssuedPair,
    now: i64,
    decide: impl FnOnce(&str) -> Result<String, E>,
) -> Result<Result<RefreshOutcome, E>, StoreError> {
    let tx = immediate(c)?;
    let row = tx
        .prepare_cached(concat!(
            "SELECT r.session_id, r.used_at, s.user_id, s.scope, s.expires_at, s.revoked_at, r.id,
                    s.licensed
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE ",
            by_key!("refresh_tokens", "r")
        ))?
        .query_row(params![presented.id, &presented.hash[..]], |r| {
            Ok((
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, bool>(7)?,
            ))
        })
        .optional()?;
    let Some((token_id, session_id, used_at, user_id, scope, expires_at, revoked_at, licensed)) =
        row
    else {
        return Ok(Ok(RefreshOutcome::Invalid));
    };
    // Another client's token is left alone: it proves nothing about its owner.
    if user_id != client_user_id || revoked_at.is_some() || expires_at <= now {
        return Ok(Ok(RefreshOutcome::Invalid));
    }
    if used_at.is_some() {
        let ended = revoke_session_tx(&tx, session_id, now)?;
        tx.commit()?;
        if let Some((true, expires_at)) = ended {
            seats.remove(expires_at);
        }
        return Ok(Ok(RefreshOutcome::Reused));
    }
    let access_scope = match decide(&scope) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    tx.prepare_cached("UPDATE refresh_tokens SET used_at = ?2 WHERE id = ?1")?
        .execute(params![token_id, now])?;
    tx.prepare_cached("UPDATE sessions SET expires_at = ?2 WHERE id = ?1")?
        .execute(params![session_id, new.refresh_expires_at])?;
    let ids = insert_tokens(&tx, session_id, &access_scope, new, now)?;
    tx.commit()?;
    if licensed {
        seats.slide(expires_at, new.refresh_expires_at);
    }
    Ok(Ok(RefreshOutcome::Rotated {
        session_id,
        scope: access_scope,
        ids,
    }))
}

/// Revokes the session if it was not already; then says whether it was licensed and
/// when its seat would have freed.
fn revoke_session_tx(
    tx: &Connection,
    session_id: i64,
    now: i64,
) -> Result<Option<(bool, i64)>, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL
             RETURNING licensed, expires_at",
        )?
        .query_row(params![session_id, now], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Ends a session: its seat frees and all its tokens die. Returns whether it was live.
/// `seats` is the writer's ledger when the server calls; admin commands pass None.
pub fn revoke_session(
    c: &mut Connection,
    session_id: i64,
    now: i64,
    seats: Option<&mut SeatLedger>,
) -> Result<bool, StoreError> {
    let tx = immediate(c)?;
    let ended = revoke_session_tx(&tx, session_id, now)?;
    tx.commit()?;
    if let (Some(seats), Some((true, expires_at))) = (seats, ended) {
        seats.remove(expires_at);
    }
    Ok(ended.is_some())
}

/// Ends every live session, or every live session of one user: their seats free
/// and their tokens die. Returns how many ended. For admin commands: the server's
/// seat ledger notices another connection's commit and reloads.
pub fn revoke_live(
    c: &mut Connection,
    user_id: Option<i64>,
    now: i64,
) -> Result<usize, StoreError> {
    let tx = immediate(c)?;
    let ended = tx.execute(
        "UPDATE sessions SET revoked_at = ?1
         WHERE revoked_at IS NULL AND expires_at > ?1 AND (?2 IS NULL OR user_id = ?2)",
        params![now, user_id],
    )?;
    tx.commit()?;
    Ok(ended)
}

/// Live sessions, seat holders first, then by expiry.
pub fn list_live(c: &Connection, now: i64) -> Result<Vec<SessionRow>, StoreError> {
    let mut st = c.prepare(
        "SELECT s.id, u.NICKNAME, s.scope, s.licensed, s.created_at, s.expires_at
         FROM sessions s JOIN USERS u ON u.ID = s.user_id
         WHERE s.revoked_at IS NULL AND s.expires_at > ?1
         ORDER BY s.licensed DESC, s.expires_at, s.id",
    )?;
    let rows = st
        .query_map([now], |r| {
            Ok(SessionRow {
                id: r.get(0)?,
                client_id: r.get(1)?,
                scope: r.get(2)?,
                seat: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
