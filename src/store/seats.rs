//! The writer's ledger of held licence seats (API.md §2).
//!
//! Counting held seats in SQL walks every live licensed session, so a licensed grant
//! would cost O(seats held). The single writer connection keeps the held seats in
//! memory instead, ordered by expiry: counting is pruning the expired front, and the
//! earliest expiry is the `Retry-After`. Every change the server makes goes through
//! that one connection and updates the ledger after it commits; a change made by any
//! other connection (an admin command) moves SQLite's `PRAGMA data_version`, and the
//! ledger reloads from the table. The table stays the truth.
use crate::error::StoreError;
use rusqlite::Connection;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct SeatLedger {
    /// `PRAGMA data_version` when the ledger was last known to match the table.
    version: Option<i64>,
    by_expiry: BTreeSet<(i64, i64)>,
    expiry_of: HashMap<i64, i64>,
}

impl SeatLedger {
    /// Reloads if another connection has committed since the last look. Call inside
    /// the write transaction, so nothing can change between the look and the write.
    pub fn sync(&mut self, c: &Connection, now: i64) -> Result<(), StoreError> {
        let version: i64 = c
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.version == Some(version) {
            return Ok(());
        }
        self.by_expiry.clear();
        self.expiry_of.clear();
        let mut st = c.prepare_cached(
            "SELECT id, expires_at FROM sessions WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > ?1",
        )?;
        let rows = st.query_map([now], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (id, exp) = row?;
            self.insert(id, exp);
        }
        self.version = Some(version);
        Ok(())
    }

    /// Forgets what it knows: the next `sync` reloads. For a failed transaction.
    pub fn invalidate(&mut self) {
        self.version = None;
    }

    /// Seats held now.
    pub fn held(&mut self, now: i64) -> i64 {
        while let Some(&(exp, id)) = self.by_expiry.first() {
            if exp > now {
                break;
            }
            self.by_expiry.pop_first();
            self.expiry_of.remove(&id);
        }
        self.by_expiry.len() as i64
    }

    /// Seconds until the earliest held seat frees.
    pub fn first_frees_in(&self, now: i64) -> Option<i64> {
        self.by_expiry.first().map(|(exp, _)| (exp - now).max(1))
    }

    pub fn insert(&mut self, session_id: i64, expires_at: i64) {
        self.remove(session_id);
        self.by_expiry.insert((expires_at, session_id));
        self.expiry_of.insert(session_id, expires_at);
    }

    /// A refresh moved a held seat's expiry; unlicensed sessions are not in the ledger.
    pub fn slide(&mut self, session_id: i64, expires_at: i64) {
        if self.expiry_of.contains_key(&session_id) {
            self.insert(session_id, expires_at);
        }
    }

    pub fn remove(&mut self, session_id: i64) {
        if let Some(exp) = self.expiry_of.remove(&session_id) {
            self.by_expiry.remove(&(exp, session_id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SeatLedger;

    #[test]
    fn counts_prune_expired_seats_and_track_slides() {
        let mut l = SeatLedger::default();
        l.insert(1, 100);
        l.insert(2, 200);
        assert_eq!(l.held(50), 2);
        assert_eq!(l.first_frees_in(50), Some(50));
        l.slide(1, 300);
        assert_eq!(l.first_frees_in(50), Some(150));
        assert_eq!(l.held(250), 1);
        l.remove(1);
        assert_eq!(l.held(250), 0);
        l.slide(7, 999);
        assert_eq!(l.held(0), 0, "sliding an unknown session adds nothing");
    }
}
