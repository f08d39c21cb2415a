//! Audit records waiting to be written, oldest first: every engine queues them and
//! writes them with a later commit, so a grant's record does not cost a commit of its own.
use crate::store::model::AuditRecord;
use std::sync::Mutex;

/// Past this many unwritten records (the database is stuck), new ones are dropped.
const MAX_PENDING: usize = 100_000;

/// Records not yet written, oldest first. The SQLite writer takes some into every
/// group commit; the PostgreSQL engine writes them in batches (`flush_audit`).
#[derive(Debug, Default)]
pub struct AuditQueue {
    pending: Mutex<Vec<AuditRecord>>,
}

impl AuditQueue {
    pub fn push(&self, r: AuditRecord) {
        let mut p = self.lock();
        if p.len() < MAX_PENDING {
            p.push(r);
        } else if p.len() == MAX_PENDING {
            log::warn!("audit trail backlog full: dropping records until the database catches up");
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Moves the oldest `n` records at most to the end of `into`.
    pub fn take_into(&self, n: usize, into: &mut Vec<AuditRecord>) {
        let mut p = self.lock();
        let n = n.min(p.len());
        into.extend(p.drain(..n));
    }

    pub fn take_all(&self) -> Vec<AuditRecord> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AuditRecord>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}
