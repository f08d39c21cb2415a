//! Audit records from the server. A request only queues its record: the writer adds
//! the records waiting to each group commit it runs anyway (store/writer/group.rs), so a
//! grant never waits for its audit row and no commit is spent on audit rows alone
//! while grants flow. When nothing else is written, a timer flushes them.
use crate::store::audit::{AuditQueue, AuditRecord};
use crate::store::writer::AUDIT_PER_GROUP;
use crate::store::Db;
use std::sync::Arc;

#[derive(Clone)]
pub struct AuditLog {
    queue: Arc<AuditQueue>,
}

impl AuditLog {
    /// The log of `db`'s audit trail.
    pub fn new(db: &Db) -> Self {
        Self {
            queue: db.audit_queue().clone(),
        }
    }

    pub fn record(&self, r: AuditRecord) {
        self.queue.push(r);
    }

    /// Writes what is waiting now, off the async workers: an empty job makes a group
    /// commit, which takes records with it. (Under load the queue is never empty, and
    /// the grants' own commits keep up with it: this only serves an idle writer.)
    pub async fn flush(&self, db: &Db) {
        for _ in 0..self.queue.len().div_ceil(AUDIT_PER_GROUP) {
            if let Err(e) = db.write(|_| Ok(())).await {
                log::warn!("audit trail write failed: {e}");
                return;
            }
        }
    }

    /// Writes what is waiting on this thread: for shutdown.
    pub fn flush_now(&self, db: &Db) {
        let rows = self.queue.take_all();
        if !rows.is_empty() {
            if let Err(e) = db.write_now(move |c| crate::store::audit::insert_many(c, &rows)) {
                log::warn!("audit trail write at shutdown failed: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush writes every waiting record, over several group commits, in order.
    #[tokio::test]
    async fn a_flush_writes_every_record_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("a.db"), 1).unwrap();
        let log = AuditLog::new(&db);
        let n = 2 * AUDIT_PER_GROUP + 7;
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
        assert!(log.queue.is_empty());
    }
}
