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

/// Between two slices of one flush: time for the requests to run.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

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
        let mut rows = self.take().into_iter();
        let mut first = true;
        loop {
            let chunk: Vec<AuditRecord> = rows.by_ref().take(CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            // A pause between slices. Without it this task and the writer handed the
            // slices back and forth (a quarter-second's records, 40 slices, 11 ms),
            // and on a one-core server the scheduler ran only those two threads
            // meanwhile: every request waited, four times a second (`perf sched`).
            if !first {
                tokio::time::sleep(PAUSE).await;
            }
            first = false;
            if let Err(e) = db.write(move |c| audit::insert_many(c, &chunk)).await {
                log::warn!("audit trail write failed: {e}");
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush writes every pending record, over several slices, in order.
    #[tokio::test]
    async fn a_flush_writes_every_record_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("a.db"), 1).unwrap();
        let log = AuditLog::default();
        let n = 2 * CHUNK + 7;
        for at in 0..n as i64 {
            log.record(AuditRecord {
                at,
                event: "grant.client_credentials".into(),
                outcome: "ok".into(),
                client_id: Some("demo".into()),
                remote: None,
                detail: String::new(),
            });
        }
        log.flush(&db).await;
        let ats = db
            .read(|c| {
                let mut st = c.prepare("SELECT at FROM audit ORDER BY id")?;
                let v = st.query_map([], |r| r.get::<_, i64>(0))?;
                Ok(v.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(ats, (0..n as i64).collect::<Vec<_>>());
        assert!(log.take().is_empty());
    }
}
