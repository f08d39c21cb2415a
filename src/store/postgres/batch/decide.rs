//! A batch's grants decided in arrival order against what the batch read: the
//! rows each refresh finds and leaves, the seats held, and what the batch writes
//! (commit.rs sends it).
use super::R;
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::postgres::rows::flag;
use crate::store::StoreError;
use std::collections::{HashMap, HashSet};
use subtle::ConstantTimeEq;

/// A presented refresh token's row, as the batch found it and then changed it.
pub(super) struct Presented {
    pub(super) hash: Vec<u8>,
    pub(super) session_id: i64,
    pub(super) used: bool,
    pub(super) user_id: i64,
    pub(super) scope: String,
    pub(super) expires_at: i64,
    pub(super) revoked: bool,
    pub(super) licensed: bool,
}

/// What the batch writes.
#[derive(Default)]
pub(super) struct Writes {
    /// The signing key current in the batch's transaction, for signed access tokens.
    pub(super) key: Option<i64>,
    // sessions
    pub(super) s_id: Vec<i64>,
    pub(super) s_user: Vec<i64>,
    pub(super) s_scope: Vec<String>,
    pub(super) s_licensed: Vec<i32>,
    pub(super) s_expires: Vec<i64>,
    // token pairs
    pub(super) t_session: Vec<i64>,
    pub(super) t_scope: Vec<String>,
    pub(super) t_access: Vec<i64>,
    pub(super) t_access_hash: Vec<Vec<u8>>,
    pub(super) t_access_expires: Vec<i64>,
    pub(super) t_refresh: Vec<i64>,
    pub(super) t_refresh_hash: Vec<Vec<u8>>,
    // refreshes
    pub(super) used: Vec<i64>,
    pub(super) extended: HashMap<i64, i64>,
    pub(super) revoked: HashSet<i64>,
}

impl Writes {
    /// A new session for `client` and its first token pair.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn open(
        &mut self,
        session_id: i64,
        pair_ids: &mut impl Iterator<Item = (i64, i64)>,
        client: i64,
        scope: &str,
        licensed: bool,
        tokens: &NewTokens,
        now: i64,
    ) -> R<OpenOutcome> {
        self.s_id.push(session_id);
        self.s_user.push(client);
        self.s_scope.push(scope.to_owned());
        self.s_licensed.push(flag(licensed));
        self.s_expires.push(now + tokens.refresh_ttl);
        let ids = self.pair(pair_ids, tokens, now)?;
        push_hashes(self, session_id, scope.to_owned(), tokens, now);
        Ok(OpenOutcome::Opened { session_id, ids })
    }

    pub(super) fn pair(
        &mut self,
        ids: &mut impl Iterator<Item = (i64, i64)>,
        t: &NewTokens,
        now: i64,
    ) -> R<TokenIds> {
        let (access, refresh) = ids
            .next()
            .ok_or_else(|| StoreError::Invalid("too few row ids for a batch".into()))?;
        self.t_access.push(access);
        self.t_refresh.push(refresh);
        Ok(TokenIds {
            access,
            refresh,
            issued_at: now,
            key: if t.signed { self.key } else { None },
        })
    }
}

/// Held seats as the batch's grants change them.
pub(super) struct Seats {
    pub(super) total: i64,
    pub(super) held: i64,
    pub(super) first_expiry: Option<i64>,
}

/// Queues a new token pair's hashes and the access token's expiry for `session_id`.
fn push_hashes(w: &mut Writes, session_id: i64, scope: String, t: &NewTokens, now: i64) {
    w.t_session.push(session_id);
    w.t_scope.push(scope);
    w.t_access_hash.push(t.access_hash.to_vec());
    w.t_refresh_hash.push(t.refresh_hash.to_vec());
    w.t_access_expires.push(now + t.access_ttl);
}

/// One refresh, decided against the batch's view of its token and session
/// (surface.rs `refresh_one` is the same rule alone).
#[allow(clippy::too_many_arguments)]
pub(super) fn refresh(
    w: &mut Writes,
    presented: &mut HashMap<i64, Presented>,
    pair_ids: &mut impl Iterator<Item = (i64, i64)>,
    seats: Option<&mut Seats>,
    client: &ClientRecord,
    key: &TokenKey,
    tokens: &NewTokens,
    narrow: &Narrow,
    now: i64,
) -> R<RefreshOutcome> {
    let Some(token_id) = key.id else {
        return Ok(RefreshOutcome::Invalid);
    };
    let Some(p) = presented.get(&token_id) else {
        return Ok(RefreshOutcome::Invalid);
    };
    if !bool::from(p.hash.as_slice().ct_eq(&key.hash[..])) {
        return Ok(RefreshOutcome::Invalid);
    }
    let session_id = p.session_id;
    // The session as this batch left it (a token of the same session may come first).
    let session_revoked = p.revoked || w.revoked.contains(&session_id);
    // Another client's token is left alone: it proves nothing about its owner.
    if p.user_id != client.id || session_revoked || p.expires_at <= now {
        return Ok(RefreshOutcome::Invalid);
    }
    if p.used {
        w.revoked.insert(session_id);
        if let (true, Some(s)) = (p.licensed, seats) {
            s.held -= 1;
        }
        return Ok(RefreshOutcome::Reused);
    }
    let access_scope = match narrow(&p.scope) {
        Ok(s) => s,
        Err(why) => return Ok(RefreshOutcome::Refused(why)),
    };
    let expires = now + tokens.refresh_ttl;
    if let Some(p) = presented.get_mut(&token_id) {
        p.used = true;
        p.expires_at = expires;
    }
    w.used.push(token_id);
    w.extended.insert(session_id, expires);
    let ids = w.pair(pair_ids, tokens, now)?;
    push_hashes(w, session_id, access_scope.clone(), tokens, now);
    Ok(RefreshOutcome::Rotated {
        session_id,
        scope: access_scope,
        ids,
    })
}
