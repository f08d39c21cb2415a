//! Brute-force throttling of client authentication, per (remote address, client id)
//! and per remote address.
//!
//! After `max_failures` failed authentications within `window` seconds, the pair is
//! blocked; each further block doubles, up to `cap`. Another address presenting the
//! same client id is not affected, so an attacker cannot lock a legitimate client out.
//! An address is also blocked, for every client id, after `address_failures`
//! failures within the window, whatever ids they named: one address cannot try
//! unlimited client ids.
//!
//! Both tables are bounded. When one is full, what no longer matters goes first
//! (entries neither blocked nor inside their window), then the least recently seen
//! entries that are not blocked, and only then the blocks that end soonest. Each
//! eviction frees a quarter of the table, so a flood pays for one scan per many
//! failures. Client ids are kept as keyed 64-bit hashes, so an entry's size does not
//! depend on what a client sent.
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Failures per (address, client id) before the pair is blocked.
    pub max_failures: u32,
    /// Failures per address, over all client ids, before the address is blocked.
    pub address_failures: u32,
    /// Seconds over which failures are counted.
    pub window: i64,
    /// First block, seconds; doubles with each further block.
    pub base_block: i64,
    /// Longest block, seconds.
    pub cap: i64,
    /// Most entries in each table.
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            address_failures: 50,
            window: 300,
            base_block: 30,
            cap: 900,
            max_entries: 100_000,
        }
    }
}

/// A block that a failure started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub seconds: i64,
    /// The whole address is blocked, not only the client id it named.
    pub whole_address: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    failures: u32,
    window_start: i64,
    blocked_until: i64,
    /// Blocks served so far: the exponent of the next one.
    strikes: u32,
    last_seen: i64,
}

impl Entry {
    fn blocked(&self, now: i64) -> bool {
        self.blocked_until > now
    }

    /// Counts a failure; returns the block it started, if any.
    fn fail(&mut self, cfg: &ThrottleConfig, limit: u32, now: i64) -> Option<i64> {
        self.last_seen = now;
        if now - self.window_start >= cfg.window {
            self.window_start = now;
            self.failures = 0;
        }
        self.failures += 1;
        if self.failures < limit {
            return None;
        }
        let block = cfg
            .base_block
            .saturating_mul(1i64 << self.strikes.min(30))
            .min(cfg.cap)
            .max(1);
        self.blocked_until = now + block;
        self.strikes += 1;
        self.failures = 0;
        self.window_start = now;
        Some(block)
    }
}

/// One bounded table of entries.
struct Table<K> {
    map: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    fn blocked_for(&self, key: &K, now: i64) -> Option<i64> {
        self.map
            .get(key)
            .filter(|e| e.blocked(now))
            .map(|e| e.blocked_until - now)
    }

    /// The entry for `key`, making room first if the table is full.
    fn entry(
        &mut self,
        key: K,
        cfg: &ThrottleConfig,
        now: i64,
        evictions: &AtomicUsize,
    ) -> &mut Entry {
        if !self.map.contains_key(&key) && self.map.len() >= cfg.max_entries {
            self.evict(cfg, now);
            evictions.fetch_add(1, Ordering::Relaxed);
        }
        self.map.entry(key).or_default()
    }

    /// Frees at least a quarter of the table: see the module's documentation.
    fn evict(&mut self, cfg: &ThrottleConfig, now: i64) {
        let target = cfg.max_entries - cfg.max_entries.div_ceil(4);
        self.map
            .retain(|_, e| e.blocked(now) || now - e.window_start < cfg.window);
        let excess = self.map.len().saturating_sub(target);
        self.drop_first(excess, |e| !e.blocked(now), |e| e.last_seen);
        let excess = self.map.len().saturating_sub(target);
        self.drop_first(excess, |_| true, |e| e.blocked_until);
    }

    /// Drops up to `n` of the entries that `eligible` admits, lowest `rank` first.
    fn drop_first(
        &mut self,
        n: usize,
        eligible: impl Fn(&Entry) -> bool,
        rank: impl Fn(&Entry) -> i64,
    ) {
        let mut ranks: Vec<i64> = self
            .map
            .values()
            .filter(|e| eligible(e))
            .map(&rank)
            .collect();
        if ranks.is_empty() || n == 0 {
            return;
        }
        let n = n.min(ranks.len());
        let (_, cutoff, _) = ranks.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        // Entries ranked below the cutoff go; of those equal to it, only as many as needed.
        let mut at_cutoff = n - ranks.iter().filter(|r| **r < cutoff).count();
        self.map.retain(|_, e| {
            if !eligible(e) || rank(e) > cutoff {
                return true;
            }
            if rank(e) < cutoff {
                return false;
            }
            if at_cutoff > 0 {
                at_cutoff -= 1;
                return false;
            }
            true
        });
    }
}

pub struct Throttle {
    cfg: ThrottleConfig,
    /// Keys client ids to the pair table's hashes.
    ids: RandomState,
    pairs: Mutex<Table<(IpAddr, u64)>>,
    addresses: Mutex<Table<IpAddr>>,
    evictions: AtomicUsize,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            ids: RandomState::new(),
            pairs: Mutex::new(Table::new()),
            addresses: Mutex::new(Table::new()),
            evictions: AtomicUsize::new(0),
        }
    }

    fn pair(&self, ip: IpAddr, client_id: &str) -> (IpAddr, u64) {
        (ip, self.ids.hash_one(client_id))
    }

    /// `Err(seconds)` while the pair, or the whole address, is blocked.
    pub fn check(&self, ip: IpAddr, client_id: &str, now: i64) -> Result<(), i64> {
        let address = lock(&self.addresses).blocked_for(&ip, now);
        let pair = lock(&self.pairs).blocked_for(&self.pair(ip, client_id), now);
        match address.max(pair) {
            Some(secs) => Err(secs),
            None => Ok(()),
        }
    }

    /// Records a failed authentication; returns the block it started, if any.
    pub fn failed(&self, ip: IpAddr, client_id: &str, now: i64) -> Option<Block> {
        let cfg = &self.cfg;
        let key = self.pair(ip, client_id);
        let pair = lock(&self.pairs)
            .entry(key, cfg, now, &self.evictions)
            .fail(cfg, cfg.max_failures, now);
        let address = lock(&self.addresses)
            .entry(ip, cfg, now, &self.evictions)
            .fail(cfg, cfg.address_failures, now);
        match (address, pair) {
            (Some(seconds), _) => Some(Block {
                seconds,
                whole_address: true,
            }),
            (None, Some(seconds)) => Some(Block {
                seconds,
                whole_address: false,
            }),
            (None, None) => None,
        }
    }

    /// A successful authentication forgets the pair's failures. The address keeps
    /// its count: one valid credential must not reset the budget of guesses at others.
    pub fn succeeded(&self, ip: IpAddr, client_id: &str) {
        lock(&self.pairs).map.remove(&self.pair(ip, client_id));
    }

    /// Entries in the (address, client id) table.
    #[cfg(test)]
    fn entries(&self) -> usize {
        lock(&self.pairs).map.len()
    }

    /// Times a full table was cleared out, both tables together.
    pub fn evictions(&self) -> usize {
        self.evictions.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn pair_blocks(seconds: i64) -> Option<Block> {
        Some(Block {
            seconds,
            whole_address: false,
        })
    }

    #[test]
    fn five_failures_block_with_doubling_up_to_the_cap() {
        let t = Throttle::new(ThrottleConfig::default());
        for _ in 0..4 {
            assert_eq!(t.failed(ip(1), "demo", 0), None);
        }
        assert_eq!(t.failed(ip(1), "demo", 0), pair_blocks(30));
        assert_eq!(t.check(ip(1), "demo", 10), Err(20));
        assert!(
            t.check(ip(2), "demo", 10).is_ok(),
            "another address is not blocked"
        );
        assert!(t.check(ip(1), "other", 10).is_ok());
        assert!(t.check(ip(1), "demo", 30).is_ok());
        let mut last = None;
        for round in 0..8 {
            for _ in 0..5 {
                if let Some(b) = t.failed(ip(1), "demo", 1000 * (round + 1)) {
                    last = Some(b);
                }
            }
        }
        assert_eq!(last, pair_blocks(900));
    }

    #[test]
    fn success_forgets_and_old_failures_expire() {
        let t = Throttle::new(ThrottleConfig::default());
        for _ in 0..4 {
            t.failed(ip(1), "demo", 0);
        }
        t.succeeded(ip(1), "demo");
        assert_eq!(t.failed(ip(1), "demo", 1), None);
        for _ in 0..3 {
            t.failed(ip(1), "demo", 1);
        }
        assert_eq!(t.failed(ip(1), "demo", 400), None, "the window restarted");
    }

    #[test]
    fn strikes_keep_counting_when_the_address_fails_on_another_client_id_between() {
        let t = Throttle::new(ThrottleConfig::default());
        for _ in 0..5 {
            t.failed(ip(1), "demo", 0);
        }
        assert_eq!(t.failed(ip(1), "other", 40), None);
        for _ in 0..4 {
            assert_eq!(t.failed(ip(1), "demo", 40), None);
        }
        assert_eq!(
            t.failed(ip(1), "demo", 40),
            pair_blocks(60),
            "the second block doubles"
        );
    }

    #[test]
    fn one_address_cannot_try_unlimited_client_ids() {
        let t = Throttle::new(ThrottleConfig::default());
        for i in 0..49 {
            assert_eq!(t.failed(ip(1), &format!("random-{i}"), 0), None);
        }
        assert_eq!(
            t.failed(ip(1), "random-49", 0),
            Some(Block {
                seconds: 30,
                whole_address: true
            })
        );
        assert_eq!(t.check(ip(1), "never-tried", 1), Err(29));
        assert!(t.check(ip(2), "never-tried", 1).is_ok());
        t.succeeded(ip(1), "demo");
        assert!(
            t.check(ip(1), "demo", 1).is_err(),
            "a success does not lift the address's block"
        );
    }

    fn small(max_entries: usize) -> Throttle {
        Throttle::new(ThrottleConfig {
            max_entries,
            address_failures: u32::MAX,
            ..Default::default()
        })
    }

    /// Fails `id` until one more failure would block it: true if it had no
    /// failures counted (its entry was evicted or never existed).
    fn counted_from_zero(t: &Throttle, ip: IpAddr, id: &str, now: i64) -> bool {
        for _ in 0..3 {
            t.failed(ip, id, now);
        }
        t.failed(ip, id, now).is_none()
    }

    #[test]
    fn a_full_table_drops_the_least_recently_seen_ordinary_entries_first() {
        let t = small(8);
        for i in 0..8 {
            t.failed(ip(1), &format!("id-{i}"), i);
        }
        assert_eq!(t.evictions(), 0);
        t.failed(ip(1), "id-8", 8);
        assert_eq!(t.evictions(), 1);
        // A quarter of 8 went: the two seen least recently.
        assert!(counted_from_zero(&t, ip(1), "id-0", 9));
        assert!(counted_from_zero(&t, ip(1), "id-1", 9));
        assert!(
            !counted_from_zero(&t, ip(1), "id-7", 9),
            "id-7 kept its first failure, so its fifth blocks"
        );
    }

    #[test]
    fn an_entry_whose_window_has_just_ended_goes_before_one_still_counting() {
        let t = small(4);
        let at = |s: i64| 1_000_000 + s;
        t.failed(ip(1), "old-window", at(0));
        t.failed(ip(1), "old-window", at(299));
        t.failed(ip(1), "counting", at(10));
        t.failed(ip(1), "c", at(295));
        t.failed(ip(1), "d", at(296));
        // At 300 the first entry's window (0..300) has ended: it is what no longer
        // matters, although it was seen more recently than "counting".
        t.failed(ip(1), "e", at(300));
        assert!(
            !counted_from_zero(&t, ip(1), "counting", at(300)),
            "\"counting\" kept its failure, so its fifth blocks"
        );
    }

    fn blocking(max_entries: usize) -> Throttle {
        Throttle::new(ThrottleConfig {
            max_entries,
            address_failures: u32::MAX,
            base_block: 1000,
            cap: 10_000,
            ..Default::default()
        })
    }

    fn block(t: &Throttle, id: &str, at: i64) {
        for _ in 0..5 {
            t.failed(ip(1), id, at);
        }
    }

    #[test]
    fn eviction_frees_exactly_its_batch_when_entries_were_seen_at_the_same_second() {
        let t = small(8);
        t.failed(ip(1), "id-0", 1_000_000);
        for i in 1..8 {
            t.failed(ip(1), &format!("id-{i}"), 1_000_001);
        }
        t.failed(ip(1), "id-8", 1_000_001);
        assert_eq!(t.evictions(), 1);
        assert_eq!(t.entries(), 7, "a quarter of 8 went, not more");
    }

    #[test]
    fn the_only_ordinary_entry_goes_before_any_block() {
        let t = blocking(4);
        for (i, at) in [(0, 10), (1, 20), (2, 30)] {
            block(&t, &format!("id-{i}"), at);
        }
        t.failed(ip(1), "ordinary", 35);
        t.failed(ip(1), "new", 40);
        for i in 0..3 {
            assert!(t.check(ip(1), &format!("id-{i}"), 41).is_err(), "id-{i}");
        }
        assert!(counted_from_zero(&t, ip(1), "ordinary", 41));
    }

    #[test]
    fn when_every_entry_is_blocked_a_quarter_of_the_blocks_go() {
        let t = blocking(8);
        for i in 0..8 {
            block(&t, &format!("id-{i}"), 10 * i);
        }
        block(&t, "id-8", 80);
        let lifted: Vec<usize> = (0..8)
            .filter(|i| t.check(ip(1), &format!("id-{i}"), 81).is_ok())
            .collect();
        assert_eq!(lifted, vec![0, 1], "the two blocks ending soonest");
    }

    #[test]
    fn a_live_block_survives_a_flood_of_client_ids() {
        let t = small(100);
        for _ in 0..5 {
            t.failed(ip(1), "demo", 0);
        }
        for i in 0..10_000 {
            t.failed(ip(2), &format!("random-{i}"), 1 + i / 1000);
        }
        assert_eq!(
            t.check(ip(1), "demo", 29),
            Err(1),
            "the block is still there"
        );
        assert!(t.entries() <= 100);
    }

    #[test]
    fn eviction_frees_a_batch_not_one_entry_per_failure() {
        let t = small(100);
        for i in 0..10_000 {
            t.failed(ip(2), &format!("random-{i}"), 0);
        }
        // Each pass frees 25 entries; one entry per pass would be 9,900 passes.
        let passes = t.evictions();
        assert!((390..=400).contains(&passes), "{passes} evictions");
    }

    #[test]
    fn when_every_entry_is_blocked_the_blocks_ending_soonest_go() {
        let t = Throttle::new(ThrottleConfig {
            max_entries: 4,
            address_failures: u32::MAX,
            base_block: 1000,
            cap: 10_000,
            ..Default::default()
        });
        for (i, at) in [(0, 10), (1, 0), (2, 20), (3, 30)] {
            for _ in 0..5 {
                t.failed(ip(1), &format!("id-{i}"), at);
            }
        }
        for _ in 0..5 {
            t.failed(ip(1), "id-4", 40);
        }
        assert!(t.check(ip(1), "id-1", 41).is_ok(), "ended first: evicted");
        for i in [0, 2, 3, 4] {
            assert!(t.check(ip(1), &format!("id-{i}"), 41).is_err(), "id-{i}");
        }
    }
}
