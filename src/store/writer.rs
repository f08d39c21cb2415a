//! The single writer: one thread owns the writer connection and commits in groups.
//!
//! Every change tollgate makes goes to this thread as a job. The thread takes every
//! job that is waiting (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE`
//! transaction, each inside its own savepoint (a job that fails is rolled back alone),
//! commits once, and only then answers each job. A grant is therefore acknowledged
//! only once it is in the WAL, as before, but a burst of grants shares one commit:
//! one WAL append of the pages they touched instead of one per grant.
//!
//! Jobs run one after another on one thread, so they never contend with each other,
//! and the writer's [`SeatLedger`] needs no lock. A job that wants no transaction
//! (a WAL checkpoint) runs alone, between groups.
//!
//! Checkpoints: SQLite's automatic checkpoint runs inside a commit, so every grant
//! of that group, and every grant queued behind it, waited for its copying and its
//! two fsyncs (about 6 ms on the benchmark's disk, by strace). With a checkpoint
//! interval, this thread checkpoints itself, after it has answered a group, at most
//! that often: a checkpoint then holds up only what arrives while it runs, and, being
//! on the writer's own connection while nothing else writes, it copies every frame,
//! so the next transaction starts the WAL over.
//!
//! Tried and measured worse: a checkpointer thread on a connection of its own. It
//! never catches up with a writer that never stops, so the writer had to finish its
//! checkpoints for the WAL to restart; and in the mixed benchmark (reads, grants,
//! refreshes) the grants' p99 went to 80 ms-1.1 s, against 4 ms with this.
use super::seats::SeatLedger;
use super::users::ConfirmedClients;
use crate::error::StoreError;
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the writer thread keeps in memory beside its connection; jobs see it.
#[derive(Debug, Default)]
pub struct WriterState {
    pub seats: SeatLedger,
    pub clients: ConfirmedClients,
}

/// How often, at most, the writer checkpoints the WAL between groups.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// Checkpoints slower than this are logged at debug level.
const SLOW_CHECKPOINT: Duration = Duration::from_millis(5);

/// At most this many jobs share one commit.
pub const MAX_BATCH: usize = 128;

/// What a job does once its group's commit is known: `Ok` if it committed.
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
type Work = Box<dyn FnOnce(&mut Connection, &mut WriterState) -> Outcome + Send>;

/// A job's own result, and how to answer it after the commit.
struct Outcome {
    failed: bool,
    reply: Reply,
}

enum Job {
    /// Runs in a savepoint inside the group transaction.
    Grouped(Work),
    /// Runs outside any transaction, on its own.
    Alone(Work),
}

/// The handle: cheap to clone; the thread stops when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`. With `checkpoint_every`, it checkpoints the
    /// WAL itself between groups (see above); without, SQLite's automatic checkpoint
    /// stays on.
    pub fn start(conn: Connection, checkpoint_every: Option<Duration>) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel();
        if checkpoint_every.is_some() {
            conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        }
        std::thread::Builder::new()
            .name("tollgate-writer".into())
            .spawn(move || run(conn, rx, checkpoint_every))
            .map_err(|e| StoreError::Invalid(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    /// Queues `f` for the next group commit at once; the future answers after that
    /// commit.
    pub fn write<T, F>(&self, f: F) -> impl std::future::Future<Output = Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Job::Grouped(work(f, move |r| {
            let _ = tx.send(r);
        })));
        async move {
            sent.map_err(|_| StoreError::Cancelled)?;
            rx.await.map_err(|_| StoreError::Cancelled)?
        }
    }

    /// Runs `f` alone, outside any transaction, and waits for it on this thread.
    pub fn run_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.jobs
            .send(Job::Alone(work(f, move |r| {
                let _ = tx.send(r);
            })))
            .map_err(|_| StoreError::Cancelled)?;
        rx.recv().map_err(|_| StoreError::Cancelled)?
    }
}

/// Wraps `f` as a job whose answer goes to `answer` once the commit is known.
fn work<T, F>(f: F, answer: impl FnOnce(Result<T, StoreError>) + Send + 'static) -> Work
where
    T: Send + 'static,
    F: FnOnce(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(move |c, state| {
        let result = match catch_unwind(AssertUnwindSafe(|| f(c, state))) {
            Ok(r) => r,
            Err(_) => {
                log::error!("a database job panicked; it was rolled back");
                Err(StoreError::Cancelled)
            }
        };
        Outcome {
            failed: result.is_err(),
            reply: Box::new(move |committed| {
                answer(match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Invalid(format!("the group commit failed: {e}"))),
                })
            }),
        }
    })
}

fn run(mut c: Connection, rx: mpsc::Receiver<Job>, checkpoint_every: Option<Duration>) {
    let mut state = WriterState::default();
    let mut group = Vec::with_capacity(MAX_BATCH);
    let mut checkpointed = Instant::now();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Alone(w) => {
                    // Alone jobs end the group: run what is gathered first.
                    commit_group(&mut c, &mut state, &mut group);
                    let out = w(&mut c, &mut state);
                    if out.failed {
                        state.seats.invalidate();
                    }
                    (out.reply)(Ok(()));
                }
                Job::Grouped(w) => group.push(w),
            }
            if group.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit_group(&mut c, &mut state, &mut group);
        // The group has been answered; what queues meanwhile waits for this.
        if checkpoint_every.is_some_and(|every| checkpointed.elapsed() >= every) {
            checkpointed = Instant::now();
            match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            }) {
                Ok((log, copied)) if checkpointed.elapsed() > SLOW_CHECKPOINT => log::debug!(
                    "slow WAL checkpoint: {copied} of {log} frames in {:?}",
                    checkpointed.elapsed()
                ),
                Ok(_) => {}
                Err(e) => log::warn!("WAL checkpoint failed: {e}"),
            }
        }
    }
}

/// Runs the gathered jobs in one transaction, commits, then answers each.
fn commit_group(c: &mut Connection, state: &mut WriterState, group: &mut Vec<Work>) {
    if group.is_empty() {
        return;
    }
    if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unrun answers each with `Cancelled`: nothing was written.
        log::warn!(
            "could not begin a write transaction, {} jobs refused: {e}",
            group.len()
        );
        group.clear();
        state.seats.invalidate();
        return;
    }
    let mut replies = Vec::with_capacity(group.len());
    for w in group.drain(..) {
        if let Some(out) = in_savepoint(c, state, w) {
            replies.push(out.reply);
        }
    }
    match c.execute_batch("COMMIT") {
        Ok(()) => {
            for reply in replies {
                reply(Ok(()));
            }
        }
        Err(e) => {
            let e = StoreError::from(e);
            log::warn!(
                "group commit failed, {} jobs rolled back: {e}",
                replies.len()
            );
            let _ = c.execute_batch("ROLLBACK");
            state.seats.invalidate();
            for reply in replies {
                reply(Err(&e));
            }
        }
    }
}

/// One job inside the group: a savepoint, released if the job succeeded and rolled
/// back if it failed, so a failed job leaves nothing half-written.
fn in_savepoint(c: &mut Connection, state: &mut WriterState, w: Work) -> Option<Outcome> {
    if let Err(e) = super::savepoint(c) {
        log::warn!("could not open a savepoint, a job refused: {e}");
        state.seats.invalidate();
        return None;
    }
    let out = w(c, state);
    if out.failed {
        state.seats.invalidate();
    }
    if let Err(e) = super::end_savepoint(c, !out.failed) {
        log::warn!("ending a job's savepoint failed: {e}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A writer on a fresh database, and a count of its commits.
    fn writer() -> (Writer, Arc<AtomicUsize>) {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let commits = Arc::new(AtomicUsize::new(0));
        let n = commits.clone();
        c.commit_hook(Some(move || {
            n.fetch_add(1, Ordering::SeqCst);
            false
        }))
        .unwrap();
        (Writer::start(c, None).unwrap(), commits)
    }

    /// Holds the writer thread until the returned sender is used, so that the jobs
    /// sent meanwhile are gathered into one group.
    fn hold(w: &Writer) -> mpsc::Sender<()> {
        let (go, wait) = mpsc::channel::<()>();
        let w = w.clone();
        std::thread::spawn(move || {
            w.run_alone(move |_, _| {
                let _ = wait.recv();
                Ok(())
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        go
    }

    fn insert(x: i64) -> impl FnOnce(&mut Connection, &mut WriterState) -> Result<(), StoreError> {
        move |c, _| {
            c.execute("INSERT INTO t VALUES (?1)", [x])?;
            Ok(())
        }
    }

    fn rows(w: &Writer) -> Vec<i64> {
        w.run_alone(|c, _| {
            let mut st = c.prepare("SELECT x FROM t ORDER BY x")?;
            let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(v)
        })
        .unwrap()
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

    /// Under writes that never pause, the writer's own checkpoints still restart the
    /// WAL (a checkpointer on another connection could not: it reached 3.3 GB once).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_restarts_under_constant_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let open = || {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                .unwrap();
            c
        };
        let c = open();
        c.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let w = Writer::start(c, Some(CHECKPOINT_EVERY)).unwrap();
        let wal = path.with_extension("db-wal");
        let mut max_wal = 0;
        for _ in 0..60 {
            // 2,000 rows of 1 KB, sent without waiting: the writer never idles.
            let jobs: Vec<_> = (0..2_000)
                .map(|_| {
                    w.write(|c, _| {
                        c.execute("INSERT INTO t VALUES (zeroblob(1000))", [])?;
                        Ok(())
                    })
                })
                .collect();
            for j in jobs {
                j.await.unwrap();
            }
            max_wal = max_wal.max(std::fs::metadata(&wal).unwrap().len());
        }
        // 120 MB went through the WAL (30,000 frames); restarted, it held a fraction.
        let bound = 40 << 20;
        assert!(
            max_wal < bound,
            "WAL reached {max_wal} bytes (bound {bound})"
        );
    }
}
