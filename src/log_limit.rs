//! Log lines that a lasting fault (a full disk, a vanished file) would repeat many
//! times a second, written at most once per interval with a count of those held back.
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limited {
    every: Duration,
    /// When a line was last written, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Limited {
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Whether a line may be written now; if so, the text to append about the lines
    /// held back since the last one ("" when none were).
    pub fn admit(&self) -> Option<String> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (last, held) = &mut *state;
        if last.is_some_and(|t| now.duration_since(t) < self.every) {
            *held += 1;
            return None;
        }
        let note = match *held {
            0 => String::new(),
            n => format!(" ({n} more like it in the last {} s)", self.every.as_secs()),
        };
        *last = Some(now);
        *held = 0;
        Some(note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_held_back() {
        let l = Limited::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.admit_at(t0).as_deref(), Some(""));
        for i in 1..=50 {
            assert_eq!(l.admit_at(t0 + Duration::from_millis(i * 20)), None);
        }
        assert_eq!(
            l.admit_at(t0 + Duration::from_secs(10)).as_deref(),
            Some(" (50 more like it in the last 10 s)")
        );
        assert_eq!(l.admit_at(t0 + Duration::from_secs(11)), None);
    }
}
