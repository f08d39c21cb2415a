//! The single writer: one thread owns the writer connection and commits in groups.
//!
//! Every change tollgate makes goes to this thread as a job. The thread takes every
//! job that is waiting (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE`
//! transaction, commits once, and only then answers each job. A grant is therefore
//! acknowledged only once it is in the WAL, but a burst of grants shares one commit:
//! one WAL append of the pages they touched instead of one per grant.
//!
//! Jobs run one after another on one thread, so they never contend with each other,
//! and the writer's [`SeatLedger`] needs no lock. A job that wants no transaction
//! (a WAL checkpoint) runs alone, between groups.
//!
//! - `jobs`: a job and where its answer goes;
//! - `group`: the group commit, with audit records, and what a failed job does to it
//!   (a job may run more than once);
//! - `checkpointer`: copies the WAL into the database beside this thread;
//! - `watched`: the database file, watched for removal while serving.
//!
//! The measurements behind this design are in bench/README.md ("Why the writer is
//! built this way").
mod checkpointer;
#[cfg(test)]
mod fixtures;
mod group;
mod jobs;
mod watched;

pub use checkpointer::{CHECKPOINT_EVERY, RESTART_EVERY, RESTART_FRAMES};

use super::audit::AuditQueue;
use super::seats::SeatLedger;
use super::users::ConfirmedClients;
use crate::store::StoreError;
use checkpointer::Checkpointer;
use group::{commit_group, Audit};
use jobs::{job, Queued};
use rusqlite::Connection;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use watched::Watched;

/// What the writer thread keeps in memory beside its connection; jobs see it.
#[derive(Debug, Default)]
pub struct WriterState {
    pub seats: SeatLedger,
    pub clients: ConfirmedClients,
    pub keys: super::keys::CurrentKey,
}

impl WriterState {
    /// After a rollback, or a change to users, seats or sessions outside the grants:
    /// what it knows may be stale, so both
    /// reload from the tables when next used.
    pub(crate) fn forget(&mut self) {
        self.seats.invalidate();
        self.clients.invalidate();
        self.keys.invalidate();
    }
}

/// Checkpoints and commits slower than this are logged at debug level.
const SLOW_TO_LOG: Duration = Duration::from_millis(5);

/// At most this many jobs share one commit.
pub const MAX_BATCH: usize = 128;

/// At most this many audit records are added to one group commit.
pub const AUDIT_PER_GROUP: usize = 256;

/// The handle: cheap to clone; the thread stops when the last handle is dropped.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Queued>,
    health: Arc<Health>,
}

/// Whether writes have been failing for a reason outside tollgate (see
/// [`StoreError::is_unavailable`]), for readiness: set by a failed job, `BEGIN` or
/// `COMMIT`, cleared by the next commit that wrote something.
#[derive(Debug, Default)]
pub struct Health {
    fault: Mutex<Option<String>>,
}

impl Health {
    /// Why writes are failing, if they are.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn failed(&self, why: String) {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    fn recovered(&self) {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if fault.take().is_some() {
            log::warn!("database writes succeed again");
        }
    }
}

/// The writer thread stopped: nothing can be written until a restart.
fn stopped() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".into())
}

/// Repeated write failures are logged at most this often.
static WRITE_FAULTS: crate::log_limit::Limited =
    crate::log_limit::Limited::new(Duration::from_secs(10));

impl Writer {
    /// Starts the writer thread on `conn`. With `side` (a second connection to the
    /// same file), a checkpointer thread on it copies the WAL (see `checkpointer`);
    /// without, SQLite's automatic checkpoint stays on. Every group commit takes some of the
    /// records waiting in `audit`.
    /// `file`, when given, is watched: see [`Watched`].
    pub fn start(
        conn: Connection,
        side: Option<Connection>,
        audit: Arc<AuditQueue>,
        file: Option<&std::path::Path>,
    ) -> Result<Self, StoreError> {
        Self::start_with(conn, side, audit, file, RESTART_EVERY, RESTART_FRAMES)
    }

    fn start_with(
        conn: Connection,
        side: Option<Connection>,
        audit: Arc<AuditQueue>,
        file: Option<&std::path::Path>,
        restart_every: Duration,
        restart_frames: i64,
    ) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel();
        let spawn_err =
            |e: std::io::Error| StoreError::Invalid(format!("cannot start a database thread: {e}"));
        let checkpoints = match side {
            Some(side) => {
                conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
                Some(Checkpointer::start(side, restart_every, restart_frames).map_err(spawn_err)?)
            }
            None => None,
        };
        let health = Arc::new(Health::default());
        let thread = Thread {
            checkpoints,
            health: health.clone(),
            watched: file.map(Watched::new),
        };
        std::thread::Builder::new()
            .name("tollgate-writer".into())
            .spawn(move || run(conn, rx, thread, audit))
            .map_err(spawn_err)?;
        Ok(Self { jobs, health })
    }

    /// Whether writes are failing now, and why.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Queues `f` for the next group commit at once; the future answers after that
    /// commit. `f` may run more than once (see `group`).
    pub fn write<T, F>(&self, f: F) -> impl std::future::Future<Output = Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Queued::Grouped(job(f, move |r| {
            let _ = tx.send(r);
        })));
        async move {
            sent.map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        }
    }

    /// Runs `f` alone, outside any transaction, and waits for it on this thread.
    pub fn run_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let mut f = Some(f);
        let once = move |c: &mut Connection, s: &mut WriterState| match f.take() {
            Some(f) => f(c, s),
            None => Err(StoreError::Cancelled),
        };
        self.jobs
            .send(Queued::Alone(job(once, move |r| {
                let _ = tx.send(r);
            })))
            .map_err(|_| stopped())?;
        rx.recv().map_err(|_| stopped())?
    }
}

/// What the writer thread keeps beside its connection and jobs.
struct Thread {
    checkpoints: Option<Checkpointer>,
    health: Arc<Health>,
    watched: Option<Watched>,
}

fn run(mut c: Connection, rx: mpsc::Receiver<Queued>, mut thread: Thread, audit: Arc<AuditQueue>) {
    let mut audit = Audit {
        queue: audit,
        records: Vec::with_capacity(AUDIT_PER_GROUP),
    };
    let mut state = WriterState::default();
    let mut group = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Queued::Alone(mut alone) => {
                    // Alone jobs end the group: run what is gathered first.
                    commit_group(&mut c, &mut state, &mut group, &mut audit, &thread);
                    if !alone.run(&mut c, &mut state) {
                        state.forget();
                    }
                    alone.answer(Ok(()));
                }
                Queued::Grouped(j) => group.push(j),
            }
            if group.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit_group(&mut c, &mut state, &mut group, &mut audit, &thread);
        // The group has been answered; what queues meanwhile waits for this.
        if let Some(ck) = &mut thread.checkpoints {
            ck.restart_if_due(&c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::writer;
    use super::*;

    use std::time::Instant;

    /// Once the writer thread is gone (here: an answer that panics, outside any
    /// job's guard), writes fail at once as unavailable instead of hanging.
    #[tokio::test]
    async fn writes_to_a_dead_writer_fail_at_once_as_unavailable() {
        let (w, _) = writer();
        let killer = job(
            |_: &mut Connection, _: &mut WriterState| Ok(()),
            |_: Result<(), StoreError>| panic!("the writer thread dies here"),
        );
        w.jobs.send(Queued::Grouped(killer)).unwrap();
        let started = Instant::now();
        loop {
            match w.write(|_, _| Ok(())).await {
                Err(e) => {
                    assert!(e.is_unavailable(), "{e}");
                    assert!(e.to_string().contains("stopped"), "{e}");
                    break;
                }
                Ok(()) => assert!(started.elapsed() < Duration::from_secs(5)),
            }
        }
    }
}
