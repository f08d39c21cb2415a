//! Background upkeep of the database while the server runs: the sweep of dead rows
//! and the audit flush, each a loop the server spawns and aborts when it stops.
use crate::audit::AuditLog;
use crate::clock::SharedClock;
use crate::store::{self, Db};
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
pub async fn audit_loop(db: Db, audit: AuditLog) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tick.tick().await;
        audit.flush(&db).await;
    }
}

/// Every `sweep.interval`, deletes what can no longer matter ([`store::sweep`]) and
/// audit rows past their retention.
pub async fn sweep_loop(db: Db, clock: SharedClock, sweep: Sweep) {
    let mut tick = tokio::time::interval(sweep.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = clock.now();
        let retention = sweep.audit_retention;
        let grace = sweep.grace.unwrap_or(SWEEP_GRACE_SECS);
        // In steps, each its own write, so that grants share the writer meanwhile.
        let mut removed = 0;
        loop {
            let step = db
                .write(move |c| {
                    let (n, more) = store::sweep(c, now, grace)?;
                    let pruned = store::audit::prune(c, now - retention, store::SWEEP_STEP)?;
                    Ok((n + pruned, more || pruned == store::SWEEP_STEP))
                })
                .await;
            match step {
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
