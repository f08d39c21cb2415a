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
mod tests;
