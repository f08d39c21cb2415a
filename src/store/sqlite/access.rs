//! The lookup of a presented access token: what it grants, or why it grants nothing.
use super::sessions::by_key;
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// A live access token: not expired or revoked, its session live, its user enabled.
pub fn find_access(
    c: &Connection,
    key: &TokenKey,
    now: i64,
) -> Result<Option<AccessGrant>, StoreError> {
    Ok(c.prepare_cached(concat!(
        "SELECT u.NICKNAME, a.scope, a.expires_at, a.issued_at, s.id, s.expires_at, s.licensed
             FROM access_tokens a
             JOIN sessions s ON s.id = a.session_id
             JOIN USERS u ON u.ID = s.user_id
             WHERE a.revoked_at IS NULL AND a.expires_at > ?3
               AND s.revoked_at IS NULL AND s.expires_at > ?3 AND u.ENABLED = 1 AND ",
        by_key!("access_tokens", "a")
    ))?
    .query_row(params![key.id, &key.hash[..], now], |r| {
        Ok(AccessGrant {
            client_id: r.get(0)?,
            scope: r.get(1)?,
            expires_at: r.get(2)?,
            issued_at: r.get(3)?,
            session_id: r.get(4)?,
            session_expires_at: r.get(5)?,
            seat: r.get(6)?,
        })
    })
    .optional()?)
}

/// A live access token's grant, or why the token is not live: the presenter holds
/// the token, so saying whether it expired or was revoked tells nobody else anything.
pub fn find_access_or_why(
    c: &Connection,
    key: &TokenKey,
    now: i64,
) -> Result<Result<AccessGrant, &'static str>, StoreError> {
    if let Some(grant) = find_access(c, key, now)? {
        return Ok(Ok(grant));
    }
    let row = c
        .prepare_cached(concat!(
            "SELECT a.revoked_at IS NOT NULL, a.expires_at <= ?3, s.id IS NULL,
                    s.revoked_at IS NOT NULL, coalesce(s.expires_at <= ?3, 1),
                    coalesce(u.ENABLED, 0) = 0
             FROM access_tokens a
             LEFT JOIN sessions s ON s.id = a.session_id
             LEFT JOIN USERS u ON u.ID = s.user_id
             WHERE ",
            by_key!("access_tokens", "a")
        ))?
        .query_row(params![key.id, &key.hash[..], now], |r| {
            Ok([
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ])
        })
        .optional()?;
    let why = match row {
        None => "the access token is unknown",
        Some([true, ..]) => "the access token was revoked",
        Some([_, _, true, ..]) => "the access token's session has ended",
        Some([_, _, _, true, ..]) => {
            "the access token's session was revoked (its refresh token was revoked or reused, or an administrator ended it)"
        }
        Some([_, true, ..]) => "the access token expired; refresh it or request a new one",
        Some([_, _, _, _, true, _]) => {
            "the access token's session expired; request a new token"
        }
        Some(_) => "the access token's client is disabled",
    };
    Ok(Err(why))
}
