//! Reader threads: each owns one read-only connection and takes read jobs from one
//! shared queue.
//!
//! A reader thread takes job after job while there are any: a burst of requests
//! costs a wake or two, not one each, as Tokio's blocking pool (`web::block`), which
//! wakes a thread per job, would.
//! Readers in WAL mode never wait for the writer.
use crate::store::StoreError;
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// At most this many reads share one read transaction.
const MAX_BURST: usize = 64;

/// Runs the jobs taken from the queue in one read transaction: one snapshot and one
/// round of WAL read locks (fcntl calls) for all of them, not one per statement.
///
/// The transaction begins only after every job in the burst was queued, so each job
/// sees every commit that was acknowledged before its request was made: a client
/// that has just been granted a token and presents it finds it.
fn run_burst(c: &Connection, burst: &mut Vec<Job>) {
    let grouped = burst.len() > 1 && c.execute_batch("BEGIN").is_ok();
    for job in burst.drain(..) {
        job(c);
    }
    if grouped {
        if let Err(e) = c.execute_batch("COMMIT") {
            log::warn!("ending a read transaction failed: {e}");
            let _ = c.execute_batch("ROLLBACK");
        }
    }
}

/// The handle: cheap to clone; the threads stop when the last handle is dropped.
#[derive(Clone)]
pub struct Readers {
    jobs: mpsc::Sender<Job>,
}

impl Readers {
    /// Starts one thread per connection.
    pub fn start(conns: Vec<Connection>) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for (i, c) in conns.into_iter().enumerate() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("tollgate-read-{i}"))
                .spawn(move || {
                    let mut burst = Vec::with_capacity(MAX_BURST);
                    loop {
                        // One thread waits on the queue at a time; the others on the lock.
                        {
                            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
                            match rx.recv() {
                                Ok(job) => burst.push(job),
                                Err(_) => return,
                            }
                            while burst.len() < MAX_BURST {
                                match rx.try_recv() {
                                    Ok(job) => burst.push(job),
                                    Err(_) => break,
                                }
                            }
                        }
                        run_burst(&c, &mut burst);
                    }
                })
                .map_err(|e| StoreError::Invalid(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Self { jobs })
    }

    /// Queues `f` at once; the future answers when a reader has run it.
    pub fn read<T, F>(&self, f: F) -> impl std::future::Future<Output = Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move |c: &Connection| {
            let result = catch_unwind(AssertUnwindSafe(|| f(c))).unwrap_or_else(|_| {
                log::error!("a database read panicked");
                Err(StoreError::Cancelled)
            });
            let _ = tx.send(result);
        }));
        async move {
            sent.map_err(|_| StoreError::Cancelled)?;
            rx.await.map_err(|_| StoreError::Cancelled)?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_run_and_a_panic_does_not_stop_the_readers() {
        let r = Readers::start(vec![Connection::open_in_memory().unwrap()]).unwrap();
        let panics = r.read(|_| -> Result<(), StoreError> { panic!("a bug in a read") });
        assert!(matches!(panics.await, Err(StoreError::Cancelled)));
        let n: i64 = r
            .read(|c| Ok(c.query_row("SELECT 6 * 7", [], |row| row.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 42);
    }

    /// A read queued after a commit sees that commit, even when the reader was busy
    /// inside a read of its own while the commit happened.
    #[tokio::test]
    async fn a_read_sees_every_commit_made_before_it_was_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        let r = Readers::start(vec![Connection::open(&path).unwrap()]).unwrap();
        let count = |c: &Connection| -> Result<i64, StoreError> {
            Ok(c.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?)
        };
        let (go, wait) = mpsc::channel::<()>();
        let (started, has_started) = mpsc::channel::<()>();
        // A read that has taken its snapshot and is still running.
        let busy = r.read(move |c| {
            let n = count(c)?;
            started.send(()).unwrap();
            wait.recv().unwrap();
            Ok(n)
        });
        has_started.recv().unwrap();
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let after = r.read(count);
        go.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), 0);
        assert_eq!(
            after.await.unwrap(),
            1,
            "the read queued after the commit sees it"
        );
    }
}
