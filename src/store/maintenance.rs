//! Background upkeep of the database while the server runs: the sweep of dead rows
//! and the audit flush, each a loop the server spawns and aborts when it stops.
use super::SharedStore;
use std::time::Duration;

/// Sessions and tokens dead for longer than this are deleted by the sweep.
pub const SWEEP_GRACE_SECS: i64 = 3600;

/// When the sweep runs and what it keeps.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    /// Time between sweeps.
    pub interval: Duration,
    /// Seconds rows are kept after they died; [`SWEEP_GRACE_SECS`] when None.
    pub grace: Option<i64>,
    /// Seconds audit rows are kept.
    pub audit_retention: i64,
}

/// Audit rows are written in batches, a few times a second.
pub async fn audit_loop(store: SharedStore) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        if let Err(e) = store.flush_audit().await {
            log::warn!("audit trail write failed: {e}");
        }
    }
}

/// Every `sweep.interval`, deletes what can no longer matter and audit rows past
/// their retention ([`super::Store::sweep_step`]).
pub async fn sweep_loop(store: SharedStore, sweep: Sweep) {
    let mut tick = tokio::time::interval(sweep.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let retention = sweep.audit_retention;
        let grace = sweep.grace.unwrap_or(SWEEP_GRACE_SECS);
        // In steps, each its own write, so that grants share the writer meanwhile.
        let mut removed = 0;
        loop {
            match store.sweep_step(grace, retention).await {
                Ok((n, more)) => {
                    removed += n;
                    if !more {
                        break;
                    }
                }
                Err(e) => {
                    log::warn!("sweep failed: {e}");
                    break;
                }
            }
        }
        if removed > 0 {
            log::debug!("sweep removed {removed} dead sessions, tokens and audit rows");
        }
    }
}
