//! Brute-force throttling of client authentication, per (remote address, client id).
//!
//! After `max_failures` failed authentications within `window` seconds, the pair is
//! blocked; each further block doubles, up to `cap`. Another address presenting the
//! same client id is not affected, so an attacker cannot lock a legitimate client out.
//! The table is bounded: a flood of random client ids evicts old entries.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub max_failures: u32,
    /// Seconds over which failures are counted.
    pub window: i64,
    /// First block, seconds; doubles with each further block.
    pub base_block: i64,
    /// Longest block, seconds.
    pub cap: i64,
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: 300,
            base_block: 30,
            cap: 900,
            max_entries: 10_000,
        }
    }
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

pub struct Throttle {
    cfg: ThrottleConfig,
    table: Mutex<HashMap<(IpAddr, String), Entry>>,
}

impl Throttle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        Self {
            cfg,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` while the pair is blocked.
    pub fn check(&self, ip: IpAddr, client_id: &str, now: i64) -> Result<(), i64> {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match table.get(&(ip, client_id.to_owned())) {
            Some(e) if e.blocked_until > now => Err(e.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed authentication; returns the block it started, if any.
    pub fn failed(&self, ip: IpAddr, client_id: &str, now: i64) -> Option<i64> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ip, client_id.to_owned());
        if !table.contains_key(&key) && table.len() >= self.cfg.max_entries {
            self.evict(&mut table, now);
        }
        let cfg = self.cfg;
        let e = table.entry(key).or_default();
        e.last_seen = now;
        if now - e.window_start >= cfg.window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures += 1;
        if e.failures < cfg.max_failures {
            return None;
        }
        let block = cfg
            .base_block
            .saturating_mul(1i64 << e.strikes.min(30))
            .min(cfg.cap)
            .max(1);
        e.blocked_until = now + block;
        e.strikes += 1;
        e.failures = 0;
        e.window_start = now;
        Some(block)
    }

    /// A successful authentication forgets the pair's failures.
    pub fn succeeded(&self, ip: IpAddr, client_id: &str) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.remove(&(ip, client_id.to_owned()));
    }

    /// Drops what no longer matters; if that is not enough, the least recently seen half.
    fn evict(&self, table: &mut HashMap<(IpAddr, String), Entry>, now: i64) {
        let window = self.cfg.window;
        table.retain(|_, e| e.blocked_until > now || now - e.window_start < window);
        if table.len() >= self.cfg.max_entries {
            let mut seen: Vec<i64> = table.values().map(|e| e.last_seen).collect();
            let mid = seen.len() / 2;
            let (_, median, _) = seen.select_nth_unstable(mid);
            let median = *median;
            table.retain(|_, e| e.last_seen > median);
        }
    }

    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn five_failures_block_with_doubling_up_to_the_cap() {
        let t = Throttle::new(ThrottleConfig::default());
        for _ in 0..4 {
            assert_eq!(t.failed(ip(1), "demo", 0), None);
        }
        assert_eq!(t.failed(ip(1), "demo", 0), Some(30));
        assert_eq!(t.check(ip(1), "demo", 10), Err(20));
        assert!(
            t.check(ip(2), "demo", 10).is_ok(),
            "another address is not blocked"
        );
        assert!(t.check(ip(1), "other", 10).is_ok());
        assert!(t.check(ip(1), "demo", 30).is_ok());
        let mut last = 0;
        for round in 0..8 {
            for _ in 0..5 {
                if let Some(b) = t.failed(ip(1), "demo", 1000 * (round + 1)) {
                    last = b;
                }
            }
        }
        assert_eq!(last, 900);
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
    fn the_table_stays_bounded_under_a_flood_of_client_ids() {
        let t = Throttle::new(ThrottleConfig {
            max_entries: 100,
            ..Default::default()
        });
        for i in 0..10_000 {
            t.failed(ip(1), &format!("random-{i}"), i);
        }
        assert!(t.len() <= 100);
    }
}
