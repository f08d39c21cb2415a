//! Audit records from the server, buffered in memory and written in batches by a
//! background task, so that a grant never waits for its audit row.
use crate::store::audit::{self, AuditRecord};
use crate::store::Db;
use std::sync::Mutex;

/// Past this many unwritten records (the database is stuck), new ones are dropped.
const MAX_PENDING: usize = 100_000;

/// Records per write job. Every job in a group commit waits for the whole group, so
/// a backlog goes to the writer in slices, one after the other, each sharing its
/// commit with the grants of that moment rather than holding them all up at once.
const CHUNK: usize = 256;

#[derive(Default)]
pub struct AuditLog {
    pending: Mutex<Vec<AuditRecord>>,
}

impl AuditLog {
    pub fn record(&self, r: AuditRecord) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() < MAX_PENDING {
            p.push(r);
        } else if p.len() == MAX_PENDING {
            log::warn!("audit trail backlog full: dropping records until the database catches up");
        }
    }

    fn take(&self) -> Vec<AuditRecord> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Writes what is pending, off the async workers, in slices of [`CHUNK`].
    pub async fn flush(&self, db: &Db) {
        let mut rows = self.take();
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(CHUNK));
            if let Err(e) = db.write(move |c| audit::insert_many(c, &rows)).await {
                log::warn!("audit trail write failed: {e}");
            }
            rows = rest;
        }
    }

    /// Writes what is pending on this thread: for shutdown.
    pub fn flush_now(&self, db: &Db) {
        let rows = self.take();
        if !rows.is_empty() {
            if let Err(e) = db.write_now(move |c| audit::insert_many(c, &rows)) {
                log::warn!("audit trail write at shutdown failed: {e}");
            }
        }
    }
}
