//! The writer's ledger of held licence seats (API.md §2).
//!
//! Counting held seats in SQL walks every live licensed session, so a licensed grant
//! would cost O(seats held). The single writer connection keeps the held seats in
//! memory instead, counted per second of expiry: counting is pruning the expired
//! front, and the earliest expiry is the `Retry-After`. Every change the server makes
//! goes through that one connection and updates the ledger after it commits; a change
//! made by any other connection (an admin command) moves SQLite's `PRAGMA
//! data_version`, and the ledger reloads from the table. The table stays the truth.
use crate::store::StoreError;
use rusqlite::Connection;
use std::collections::btree_map::{BTreeMap, Entry};

/// Held seats as counts per second of expiry, not one entry per session: the memory is
/// bounded by the refresh TTL in seconds however many seats the licence has. A refresh
/// or revocation names the second its session's seat was counted under, which it reads
/// from the session's row in the same transaction.
#[derive(Debug, Default)]
pub struct SeatLedger {
    /// `PRAGMA data_version` when the ledger was last known to match the table.
    version: Option<i64>,
    /// Live licensed sessions by the second their seat frees: how many free then.
    by_expiry: BTreeMap<i64, u32>,
    /// The sum of `by_expiry`.
    held: i64,
    /// Every seat freeing at or before this second has been pruned (or was never loaded).
    pruned_through: i64,
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
        self.held = 0;
        self.pruned_through = now;
        let mut st = c.prepare_cached(
            "SELECT expires_at, count(*) FROM sessions
             WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > ?1 GROUP BY expires_at",
        )?;
        let rows = st.query_map([now], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, u32>(1)?)))?;
        for row in rows {
            let (exp, n) = row?;
            self.by_expiry.insert(exp, n);
            self.held += i64::from(n);
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
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() > now {
                break;
            }
            self.held -= i64::from(entry.remove());
        }
        self.pruned_through = self.pruned_through.max(now);
        self.held
    }

    /// Seconds until the earliest held seat frees.
    pub fn first_frees_in(&self, now: i64) -> Option<i64> {
        self.by_expiry
            .first_key_value()
            .map(|(exp, _)| (exp - now).max(1))
    }

    /// A licensed session was opened, its seat held until `expires_at`.
    pub fn insert(&mut self, expires_at: i64) {
        *self.by_expiry.entry(expires_at).or_insert(0) += 1;
        self.held += 1;
    }

    /// A refresh moved a licensed session's expiry from `from` to `to`.
    pub fn slide(&mut self, from: i64, to: i64) {
        if self.remove(from) {
            self.insert(to);
        }
    }

    /// A live licensed session that would have freed its seat at `expires_at` ended.
    /// Returns whether a seat was counted there (not if it had expired and was pruned).
    pub fn remove(&mut self, expires_at: i64) -> bool {
        if expires_at <= self.pruned_through {
            return false;
        }
        match self.by_expiry.entry(expires_at) {
            Entry::Occupied(mut e) => {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
                self.held -= 1;
                true
            }
            Entry::Vacant(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SeatLedger;

    #[test]
    fn counts_prune_expired_seats_and_track_slides() {
        let mut l = SeatLedger::default();
        l.insert(100);
        l.insert(200);
        l.insert(200);
        assert_eq!(l.held(50), 3);
        assert_eq!(l.first_frees_in(50), Some(50));
        l.slide(100, 300);
        assert_eq!(l.first_frees_in(50), Some(150));
        assert_eq!(l.held(250), 1, "both seats freeing at 200 are gone at 250");
        assert!(!l.remove(200), "an expired seat is not removed twice");
        assert!(l.remove(300));
        assert_eq!(l.held(250), 0);
        l.slide(999, 1200);
        assert_eq!(l.held(0), 0, "sliding a seat that is not held adds nothing");
        assert_eq!(l.first_frees_in(0), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Open(i64),
        Refresh(usize, i64),
        Revoke(usize),
        Advance(i64),
        Count,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (1i64..6).prop_map(Op::Open),
            (any::<usize>(), 1i64..6).prop_map(|(i, t)| Op::Refresh(i, t)),
            any::<usize>().prop_map(Op::Revoke),
            (0i64..3).prop_map(Op::Advance),
            Just(Op::Count),
        ]
    }

    proptest::proptest! {
        /// The counts agree with a plain map of every live licensed session, whatever
        /// the order of grants, refreshes, revocations, expiries and counts.
        #[test]
        fn agrees_with_a_map_of_sessions(ops in proptest::collection::vec(op(), 1..200)) {
            let mut l = SeatLedger::default();
            // session -> expiry, for sessions not revoked (expired ones stay, as in the table)
            let mut model: Vec<Option<i64>> = Vec::new();
            let mut now = 0i64;
            for op in ops {
                match op {
                    Op::Open(ttl) => {
                        l.insert(now + ttl);
                        model.push(Some(now + ttl));
                    }
                    Op::Refresh(i, ttl) if !model.is_empty() => {
                        let i = i % model.len();
                        // Only a live session's refresh token is accepted.
                        if let Some(exp) = model[i].filter(|&e| e > now) {
                            l.slide(exp, now + ttl);
                            model[i] = Some(now + ttl);
                        }
                    }
                    Op::Revoke(i) if !model.is_empty() => {
                        let i = i % model.len();
                        if let Some(exp) = model[i].take() {
                            l.remove(exp);
                        }
                    }
                    Op::Advance(d) => now += d,
                    Op::Count => {
                        let live: Vec<i64> = model.iter().flatten().copied().filter(|&e| e > now).collect();
                        proptest::prop_assert_eq!(l.held(now), live.len() as i64);
                        proptest::prop_assert_eq!(
                            l.first_frees_in(now),
                            live.iter().min().map(|e| (e - now).max(1))
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}
