//! Time is a parameter: handlers read `clock.now()` once and pass `now` down.
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to; shared by clones.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// Unix seconds as RFC 3339 UTC, e.g. `2026-11-23T16:02:28Z`.
pub fn rfc3339(t: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The longest duration any option takes: a hundred years, so that `now` plus it
/// cannot overflow.
const MAX_DURATION: i64 = 100 * 365 * 86_400;

/// `300` (seconds), `30s`, `15m`, `12h`, `7d` -> seconds (at least one).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{s:?}: expected seconds or a number and a unit (s, m, h, d), e.g. 300, 30s, 5m, 12h or 7d"
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).filter(|v| *v > 0).ok_or_else(bad)?;
    if secs > MAX_DURATION {
        return Err(format!("{s:?}: at most 100 years (36500d)"));
    }
    Ok(secs)
}
