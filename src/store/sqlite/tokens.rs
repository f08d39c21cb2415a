//! Tokens looked up by key (row id and hash) for revocation (RFC 7009) and introspection (RFC 7662).
use super::seats::SeatLedger;
use super::sessions::by_key;
use super::sessions::revoke_session;
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// Finds a token of either kind; `hint` only decides which table is searched first.
pub fn find_any(
    c: &Connection,
    key: &TokenKey,
    hint: Option<TokenKind>,
    now: i64,
) -> Result<Option<FoundToken>, StoreError> {
    let order = match hint {
        Some(TokenKind::Refresh) => [TokenKind::Refresh, TokenKind::Access],
        _ => [TokenKind::Access, TokenKind::Refresh],
    };
    for kind in order {
        if let Some(t) = find_kind(c, key, kind, now)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

fn find_kind(
    c: &Connection,
    key: &TokenKey,
    kind: TokenKind,
    now: i64,
) -> Result<Option<FoundToken>, StoreError> {
    // Both arms yield: session, user, nickname, scope, issued, expires, token-level liveness.
    let sql = match kind {
        TokenKind::Access => {
            concat!(
                "SELECT s.id, u.ID, u.NICKNAME, a.scope, a.issued_at, min(a.expires_at, s.expires_at),
                    a.revoked_at IS NULL AND a.expires_at > ?3,
                    s.revoked_at IS NULL AND s.expires_at > ?3 AND u.ENABLED = 1, a.id
                 FROM access_tokens a JOIN sessions s ON s.id = a.session_id JOIN USERS u ON u.ID = s.user_id
                 WHERE ",
                by_key!("access_tokens", "a")
            )
        }
        TokenKind::Refresh => {
            concat!(
                "SELECT s.id, u.ID, u.NICKNAME, s.scope, r.issued_at, s.expires_at,
                    r.used_at IS NULL,
                    s.revoked_at IS NULL AND s.expires_at > ?3 AND u.ENABLED = 1, r.id
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN USERS u ON u.ID = s.user_id
                 WHERE ",
                by_key!("refresh_tokens", "r")
            )
        }
    };
    Ok(c.prepare_cached(sql)?
        .query_row(params![key.id, &key.hash[..], now], |r| {
            Ok(FoundToken {
                kind,
                id: r.get(8)?,
                session_id: r.get(0)?,
                user_id: r.get(1)?,
                client_id: r.get(2)?,
                scope: r.get(3)?,
                issued_at: r.get(4)?,
                expires_at: r.get(5)?,
                active: r.get::<_, bool>(6)? && r.get::<_, bool>(7)?,
            })
        })
        .optional()?)
}

/// Kills one access token, by row id.
pub fn revoke_access(c: &Connection, id: i64, now: i64) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE access_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, now])?;
    Ok(())
}

/// RFC 7009 §2.1: revokes `owner`'s token of either kind.
pub fn revoke(
    c: &mut Connection,
    seats: &mut SeatLedger,
    key: &TokenKey,
    hint: Option<TokenKind>,
    owner: i64,
    now: i64,
) -> Result<Revoked, StoreError> {
    Ok(match find_any(c, key, hint, now)? {
        Some(t) if t.user_id == owner => match t.kind {
            TokenKind::Refresh => {
                revoke_session(c, t.session_id, now, Some(seats))?;
                Revoked::Session(t.session_id)
            }
            TokenKind::Access => {
                revoke_access(c, t.id, now)?;
                Revoked::AccessToken(t.session_id)
            }
        },
        _ => Revoked::Nothing,
    })
}
