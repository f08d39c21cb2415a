//! The group commit: the gathered jobs and some waiting audit records in one
//! transaction, committed once.
//!
//! A job that fails (or panics) must leave nothing half-written. Jobs run without a
//! savepoint each (its statement journal would copy every page a job is about to
//! change): when one fails, the whole group's transaction is rolled back, the failed
//! job is answered with its error, and the others run again from the start in a fresh
//! transaction. So a job may run more than once, and must act on nothing but the
//! database and the [`WriterState`] (which is reloaded after a rollback). Failures are
//! rare (a full disk, a bug), so the re-runs cost little; a group in which every job
//! fails runs each job once.
//!
//! Audit records: requests queue theirs ([`AuditQueue`]), and every group takes up to
//! [`AUDIT_PER_GROUP`] of those waiting into its transaction, so they cost no commit
//! of their own. Records taken stay with the writer until a commit has them.
use super::jobs::Job;
use super::watched::Watched;
use super::{Thread, WriterState, AUDIT_PER_GROUP, SLOW_TO_LOG, WRITE_FAULTS};
use crate::store::sqlite::audit::AuditQueue;
use crate::store::AuditRecord;
use crate::store::StoreError;
use rusqlite::Connection;
use std::sync::Arc;
use std::time::Instant;

/// The audit records the writer adds to its groups.
pub(super) struct Audit {
    pub(super) queue: Arc<AuditQueue>,
    /// Taken from `queue` for a group; kept for the next if its commit failed.
    pub(super) records: Vec<AuditRecord>,
}

/// Runs the gathered jobs in one transaction, with audit records waiting in
/// `audit` (see [`AUDIT_PER_GROUP`]), commits, then answers each job. When a job
/// fails, rolls back, answers it, and runs the rest again (see above).
pub(super) fn commit_group(
    c: &mut Connection,
    state: &mut WriterState,
    group: &mut Vec<Box<dyn Job>>,
    audit: &mut Audit,
    thread: &Thread,
) {
    if group.is_empty() {
        return;
    }
    if let Some(why) = thread.watched.as_ref().and_then(Watched::gone) {
        if let Some(held) = WRITE_FAULTS.admit() {
            log::error!("{why}; {} writes refused{held}", group.len());
        }
        thread.health.failed(why.clone());
        for job in group.drain(..) {
            job.refuse(StoreError::Unavailable(why.clone()));
        }
        return;
    }
    let records = &mut audit.records;
    // Records kept from a group whose commit failed go first, and alone.
    if records.is_empty() {
        audit.queue.take_into(AUDIT_PER_GROUP, records);
    }
    // What the group's transaction changed, to tell a commit that wrote from one that
    // did not (a recovery shows only in the former).
    let mut changes = 0;
    while !group.is_empty() {
        if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
            let why = format!("could not begin a write transaction: {e}");
            if let Some(held) = WRITE_FAULTS.admit() {
                log::warn!("{why}; {} jobs refused{held}", group.len());
            }
            thread.health.failed(why.clone());
            for job in group.drain(..) {
                job.refuse(StoreError::Unavailable(why.clone()));
            }
            state.forget();
            return;
        }
        changes = c.total_changes();
        let failed = group.iter_mut().position(|j| !j.run(c, state));
        if failed.is_none() {
            if records.is_empty() {
                break;
            }
            match crate::store::sqlite::audit::insert_rows(c, records) {
                Ok(()) => break,
                // Dropped, and the jobs run again without them: a record that cannot
                // be written would otherwise stop every group.
                Err(e) => {
                    if let Some(held) = WRITE_FAULTS.admit() {
                        log::warn!(
                            "audit trail write failed, {} records lost: {e}{held}",
                            records.len()
                        );
                    }
                    records.clear();
                }
            }
        }
        // SQLite may have rolled back already (some I/O errors do): then this fails.
        let _ = c.execute_batch("ROLLBACK");
        state.forget();
        if let Some(failed) = failed {
            let job = group.remove(failed);
            if let Some(why) = job.fault() {
                thread.health.failed(why);
            }
            job.answer(Ok(()));
        }
    }
    if group.is_empty() {
        return;
    }
    let started = Instant::now();
    let committed = c.execute_batch("COMMIT").map_err(StoreError::from);
    if started.elapsed() > SLOW_TO_LOG {
        log::debug!(
            "slow group commit: {} jobs, {} audit records in {:?}",
            group.len(),
            records.len(),
            started.elapsed()
        );
    }
    match &committed {
        Ok(()) => {
            records.clear();
            if c.total_changes() != changes {
                thread.health.recovered();
            }
        }
        Err(e) => {
            if let Some(held) = WRITE_FAULTS.admit() {
                log::warn!(
                    "group commit failed, {} jobs rolled back: {e}{held}",
                    group.len()
                );
            }
            if e.is_unavailable() {
                thread.health.failed(format!("commit failed: {e}"));
            }
            let _ = c.execute_batch("ROLLBACK");
            state.forget();
        }
    }
    for job in group.drain(..) {
        job.answer(committed.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{audited_writer, hold, insert, record, rows, writer};
    use super::super::Writer;
    use crate::store::StoreError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Audit records waiting when a group runs share its commit, and are written once
    /// when a failed job makes the group run again.
    #[tokio::test]
    async fn waiting_audit_records_share_a_group_commit_and_survive_a_rerun() {
        let (w, commits, queue) = audited_writer(true);
        let go = hold(&w);
        for at in 0..3 {
            queue.push(record(at));
        }
        let ok = w.write(insert(1));
        let fails = w.write(|c, s| {
            insert(2)(c, s)?;
            Err::<(), _>(StoreError::Invalid("refused".into()))
        });
        go.send(()).unwrap();
        let (ok, fails) = tokio::join!(ok, fails);
        assert!(ok.is_ok() && fails.is_err());
        assert_eq!(commits.load(Ordering::SeqCst), 1);
        let ats: Vec<i64> = w
            .run_alone(|c, _| {
                let mut st = c.prepare("SELECT at FROM audit ORDER BY id")?;
                let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok(v)
            })
            .unwrap();
        assert_eq!(ats, [0, 1, 2]);
        assert!(queue.is_empty());
    }

    /// Records that cannot be written are dropped; the group's jobs still commit and
    /// the writer goes on.
    #[tokio::test]
    async fn audit_records_that_cannot_be_written_do_not_stop_the_writer() {
        let (w, commits, queue) = audited_writer(false);
        queue.push(record(0));
        w.write(insert(1)).await.unwrap();
        w.write(insert(2)).await.unwrap();
        assert_eq!(rows(&w), vec![1, 2]);
        assert_eq!(commits.load(Ordering::SeqCst), 2);
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn a_failed_or_panicking_job_is_rolled_back_alone_in_its_group() {
        let (w, commits) = writer();
        let go = hold(&w);
        let fails = w.write(move |c, s| {
            insert(1)(c, s)?;
            Err::<(), _>(StoreError::Invalid("refused".into()))
        });
        let panics = w.write(move |c, s| {
            insert(2)(c, s)?;
            panic!("a bug in a job");
            #[allow(unreachable_code)]
            Ok(())
        });
        let a = w.write(insert(3));
        let b = w.write(insert(4));
        let both = async {
            go.send(()).unwrap();
            tokio::join!(fails, panics, a, b)
        };
        let (fails, panics, a, b) = both.await;
        assert!(matches!(fails, Err(StoreError::Invalid(_))));
        assert!(matches!(panics, Err(StoreError::Cancelled)));
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(commits.load(Ordering::SeqCst), 1, "four jobs, one commit");
        assert_eq!(
            rows(&w),
            vec![3, 4],
            "only the jobs that succeeded are kept"
        );
        w.write(insert(5)).await.unwrap();
        assert_eq!(rows(&w), vec![3, 4, 5], "the writer goes on after a panic");
    }

    /// A job gathered before a failing one runs again in a fresh transaction after the
    /// rollback: its row is kept once, and its answer is that of the run committed.
    #[tokio::test]
    async fn the_jobs_beside_a_failed_one_run_again_and_are_kept_once() {
        let (w, commits) = writer();
        let go = hold(&w);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let before = w.write(move |c, s| {
            insert(1)(c, s)?;
            Ok(counted.fetch_add(1, Ordering::SeqCst) + 1)
        });
        let fails = w.write(move |c, s| {
            insert(2)(c, s)?;
            Err::<(), _>(StoreError::Invalid("refused".into()))
        });
        let after = w.write(insert(3));
        go.send(()).unwrap();
        let (before, fails, after) = tokio::join!(before, fails, after);
        assert_eq!(before.unwrap(), 2, "answered with the second run's result");
        assert!(fails.is_err() && after.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(commits.load(Ordering::SeqCst), 1);
        assert_eq!(rows(&w), vec![1, 3]);
    }

    /// A licensed grant run again after a rollback counts its seat once: the writer's
    /// ledger forgets the run that was undone. (Remembered, the one seat would look
    /// held by the first run, and the grant would be refused its own seat.)
    #[tokio::test]
    async fn a_grant_run_again_after_a_rollback_holds_one_seat() {
        use crate::store::sqlite::sessions::{self, IssuedPair, NewSession};
        use crate::store::OpenOutcome;
        let c = crate::store::sqlite::open_migrated(std::path::Path::new(":memory:")).unwrap();
        c.execute_batch(
            r#"INSERT INTO USERS (ID, NICKNAME, "PASSWORD", CREATED_AT) VALUES (7, 'u', 'x', 0);
               UPDATE licence SET seats = 1;"#,
        )
        .unwrap();
        let w = Writer::start(c, None, Default::default(), None).unwrap();
        let grant = |n: u8| {
            w.write(move |c, s| {
                let session = NewSession {
                    user_id: 7,
                    scope: "all".into(),
                    licensed: true,
                    tokens: IssuedPair {
                        access_hash: [n; 32],
                        refresh_hash: [n + 100; 32],
                        access_expires_at: 1600,
                        refresh_expires_at: 2200,
                        key: None,
                    },
                };
                sessions::open(c, &session, 1000, &mut s.seats)
            })
        };
        let go = hold(&w);
        let first = grant(1);
        let fails = w.write(|_, _| Err::<(), _>(StoreError::Invalid("refused".into())));
        let second = grant(2);
        go.send(()).unwrap();
        let (first, fails, second) = tokio::join!(first, fails, second);
        assert!(matches!(first.unwrap(), OpenOutcome::Opened { .. }));
        assert!(fails.is_err());
        assert_eq!(
            second.unwrap(),
            OpenOutcome::NoSeat {
                retry_after: Some(1200)
            }
        );
        let held: i64 = w
            .run_alone(|c, _| {
                Ok(c.query_row(
                    "SELECT count(*) FROM sessions WHERE licensed = 1",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(held, 1);
    }
}
