//! The single writer: one thread owns the writer connection and commits in groups.
//!
//! Every change tollgate makes goes to this thread as a job. The thread takes every
//! job that is waiting (up to [`MAX_BATCH`]), runs them in one `BEGIN IMMEDIATE`
//! transaction, commits once, and only then answers each job. A grant is therefore
//! acknowledged only once it is in the WAL, but a burst of grants shares one commit:
//! one WAL append of the pages they touched instead of one per grant.
//!
//! A job that fails (or panics) must leave nothing half-written. Jobs used to run
//! each in a savepoint for that, and the savepoints' statement journal (a copy of
//! every page a job was about to change) and their bookkeeping were 12 % of a view
//! grant's CPU. Jobs run bare now: when one fails, the whole group's transaction is
//! rolled back, the failed job is answered with its error, and the others run again
//! from the start in a fresh transaction. So a job may run more than once, and must
//! act on nothing but the database and the [`WriterState`] (which is reloaded after a
//! rollback). Failures are rare (a full disk, a bug), so the re-runs cost nothing in
//! practice; a group in which every job fails runs each job once.
//!
//! Audit records: requests queue theirs ([`AuditQueue`]), and every group takes up to
//! [`AUDIT_PER_GROUP`] of those waiting into its transaction, so they cost no commit
//! of their own. (A flush task once wrote them in jobs of their own, in bursts four
//! times a second; this measured 0-10 % more grants per second and 0.1-0.4 ms less
//! grant p99.) Records taken stay with the writer until a commit has them.
//!
//! Jobs run one after another on one thread, so they never contend with each other,
//! and the writer's [`SeatLedger`] needs no lock. A job that wants no transaction
//! (a WAL checkpoint) runs alone, between groups.
//!
//! Checkpoints: SQLite's automatic checkpoint runs inside a commit, so every grant
//! of that group, and every grant queued behind it, waited for its copying and its
//! fsyncs. A checkpointer thread on a connection of its own copies the WAL into the
//! database every [`CHECKPOINT_EVERY`] while this thread goes on committing, and
//! syncs the database after each pass. It never reaches the WAL's end under constant
//! writes, and the WAL can only start over from its beginning once every frame in it
//! has been copied: so every [`RESTART_EVERY`], or sooner past [`RESTART_FRAMES`],
//! this thread copies the frames the checkpointer's latest pass left, after
//! answering a group, and its next transaction restarts the WAL. Only that short
//! copy and its syncs hold grants up.
//!
//! Measured before (bench/README.md): this thread checkpointing every 20 ms by itself
//! held grants up for 2-4.6 ms each time on the benchmark's disk (the grants' p99).
//! An earlier checkpointer thread without its own database sync measured worse: the
//! database file was synced only when this thread checkpointed, so its checkpoints
//! synced every page the checkpointer had copied since the last restart.
use super::audit::{AuditQueue, AuditRecord};
use super::seats::SeatLedger;
use super::users::ConfirmedClients;
use crate::error::StoreError;
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// What the writer thread keeps in memory beside its connection; jobs see it.
#[derive(Debug, Default)]
pub struct WriterState {
    pub seats: SeatLedger,
    pub clients: ConfirmedClients,
}

impl WriterState {
    /// After a rollback: what it knows may be of changes that were undone, so both
    /// reload from the tables when next used.
    fn forget(&mut self) {
        self.seats.invalidate();
        self.clients.invalidate();
    }
}

/// How often the checkpointer thread copies the WAL into the database.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// How often it looks when its last look found nothing new.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(250);

/// The writer finishes a checkpoint itself, so that the WAL restarts, at least this
/// often.
pub const RESTART_EVERY: Duration = Duration::from_millis(500);

/// Past this many frames in the WAL (about 32 MiB), the writer's restart is due
/// sooner.
pub const RESTART_FRAMES: i64 = 8192;

/// Checkpoints and commits slower than this are logged at debug level.
const SLOW_TO_LOG: Duration = Duration::from_millis(5);

/// At most this many jobs share one commit.
pub const MAX_BATCH: usize = 128;

/// At most this many audit records are added to one group commit.
pub const AUDIT_PER_GROUP: usize = 256;

/// A job: run (a group's job may run several times, see above), then answered once.
trait Job: Send {
    /// Runs the job; false if it failed. The result of its last run is kept for
    /// [`Job::answer`].
    fn run(&mut self, c: &mut Connection, state: &mut WriterState) -> bool;
    /// Answers with the last run's result if `committed` is `Ok` (or if that run
    /// failed), else with the commit's failure.
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
    /// The last run's error, if it says the database is unavailable.
    fn fault(&self) -> Option<String>;
    /// Answers with `e` without having run.
    fn refuse(self: Box<Self>, e: StoreError);
}

/// A job and where its answer goes.
struct Pending<T, F, R> {
    f: F,
    result: Option<Result<T, StoreError>>,
    reply: R,
}

impl<T, F, R> Job for Pending<T, F, R>
where
    T: Send + 'static,
    F: FnMut(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    R: FnOnce(Result<T, StoreError>) + Send + 'static,
{
    fn run(&mut self, c: &mut Connection, state: &mut WriterState) -> bool {
        let r = guarded(|| (self.f)(c, state));
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        (self.reply)(match (self.result, committed) {
            (None, _) => Err(StoreError::Cancelled),
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)), Err(e)) if e.is_unavailable() => Err(StoreError::Unavailable(format!(
                "the group commit failed: {e}"
            ))),
            (Some(Ok(_)), Err(e)) => {
                Err(StoreError::Invalid(format!("the group commit failed: {e}")))
            }
        });
    }

    fn fault(&self) -> Option<String> {
        match &self.result {
            Some(Err(e)) if e.is_unavailable() => Some(e.to_string()),
            _ => None,
        }
    }

    fn refuse(self: Box<Self>, e: StoreError) {
        (self.reply)(Err(e));
    }
}

fn job<T, F, R>(f: F, reply: R) -> Box<dyn Job>
where
    T: Send + 'static,
    F: FnMut(&mut Connection, &mut WriterState) -> Result<T, StoreError> + Send + 'static,
    R: FnOnce(Result<T, StoreError>) + Send + 'static,
{
    Box::new(Pending {
        f,
        result: None,
        reply,
    })
}

/// Runs `f`, turning a panic into an error (the caller rolls back what it wrote).
fn guarded<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        log::error!("a database job panicked; it was rolled back");
        Err(StoreError::Cancelled)
    })
}

enum Queued {
    /// Runs inside the group transaction.
    Grouped(Box<dyn Job>),
    /// Runs outside any transaction, on its own, once.
    Alone(Box<dyn Job>),
}

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

/// The database file as the writer opened it: a path that names another file (or
/// none) means the file was removed or replaced while serving, and every write
/// would go to a file nobody can open again.
struct Watched {
    path: std::path::PathBuf,
    id: Option<(u64, u64)>,
}

impl Watched {
    fn new(path: &std::path::Path) -> Self {
        Self {
            path: path.to_owned(),
            id: file_id(path),
        }
    }

    /// Why the path no longer names the file the writer has open.
    fn gone(&self) -> Option<String> {
        if self.id.is_none() || file_id(&self.path) == self.id {
            return None;
        }
        Some(format!(
            "the database file {} was removed or replaced while serving; writes are refused \
             until tollgate is restarted on a database file",
            self.path.display()
        ))
    }
}

#[cfg(unix)]
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::path::Path) -> Option<(u64, u64)> {
    None
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
    /// same file), a checkpointer thread on it copies the WAL (see above); without,
    /// SQLite's automatic checkpoint stays on. Every group commit takes some of the
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
    /// commit. `f` may run more than once (see above).
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

/// The audit records the writer adds to its groups.
struct Audit {
    queue: Arc<AuditQueue>,
    /// Taken from `queue` for a group; kept for the next if its commit failed.
    records: Vec<AuditRecord>,
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

/// The checkpointer thread's handle, owned by the writer thread; dropping it stops
/// the thread.
struct Checkpointer {
    shared: Arc<Shared>,
    /// A restart falls due this long after the last, or sooner past this many frames.
    restart_every: Duration,
    restart_frames: i64,
    /// When the writer last checkpointed.
    restarted: Instant,
    /// Once a restart is due: the checkpointer's count of passes then. The writer
    /// waits for one more pass, so that it is left only the frames since.
    due_after: Option<u64>,
    _stop: mpsc::Sender<()>,
}

struct Shared {
    /// Held by whichever thread checkpoints.
    gate: Mutex<()>,
    /// Passes the checkpointer thread has finished.
    passes: AtomicU64,
    /// Frames in the WAL as the checkpointer last found them.
    frames: AtomicI64,
}

impl Checkpointer {
    fn start(
        side: Connection,
        restart_every: Duration,
        restart_frames: i64,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            gate: Mutex::new(()),
            passes: AtomicU64::new(0),
            frames: AtomicI64::new(0),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let s = shared.clone();
        std::thread::Builder::new()
            .name("tollgate-checkpoint".into())
            .spawn(move || {
                let mut wait = CHECKPOINT_EVERY;
                let mut last = None;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                    let _held = s.gate.lock().unwrap_or_else(|p| p.into_inner());
                    let now = checkpoint(&side, "checkpointer");
                    // An idle server: nothing new to copy or sync, and fewer wake-ups.
                    wait = if now.is_some() && now == last {
                        CHECKPOINT_IDLE
                    } else {
                        CHECKPOINT_EVERY
                    };
                    if let Some((frames, _)) = now.filter(|_| now != last) {
                        s.frames.store(frames, Ordering::Relaxed);
                        // SQLite synced the database only if the copy reached the
                        // WAL's end (rare while the writer appends); else the pages
                        // copied would all wait for the writer's checkpoint to sync.
                        if let Err(e) = super::fsync::sync_main_db(&side) {
                            log::warn!("checkpointer: {e}");
                        }
                    }
                    last = now;
                    s.passes.fetch_add(1, Ordering::Release);
                }
            })?;
        Ok(Self {
            shared,
            restart_every,
            restart_frames,
            restarted: Instant::now(),
            due_after: None,
            _stop: stop,
        })
    }

    /// On the writer thread, between groups: once a restart is due and the
    /// checkpointer has finished a pass since, copies the frames that pass left so
    /// that the next transaction restarts the WAL.
    fn restart_if_due(&mut self, c: &Connection) {
        let passes = self.shared.passes.load(Ordering::Acquire);
        let Some(after) = self.due_after else {
            if self.restarted.elapsed() >= self.restart_every
                || self.shared.frames.load(Ordering::Relaxed) >= self.restart_frames
            {
                self.due_after = Some(passes);
            }
            return;
        };
        if passes == after {
            return;
        }
        // The checkpointer is between passes nearly always; if not, the next group.
        let Ok(_held) = self.shared.gate.try_lock() else {
            return;
        };
        checkpoint(c, "writer");
        self.shared.frames.store(0, Ordering::Relaxed);
        self.restarted = Instant::now();
        self.due_after = None;
    }
}

/// A passive checkpoint, logged at debug level if slow; the frames in the WAL and
/// the frames copied from it so far.
fn checkpoint(c: &Connection, by: &str) -> Option<(i64, i64)> {
    let started = Instant::now();
    match c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((log, copied)) => {
            if started.elapsed() > SLOW_TO_LOG {
                log::debug!(
                    "slow WAL checkpoint ({by}): {copied} of {log} frames in {:?}",
                    started.elapsed()
                );
            }
            Some((log, copied))
        }
        Err(e) => {
            if let Some(held) = WRITE_FAULTS.admit() {
                log::warn!("WAL checkpoint ({by}) failed: {e}{held}");
            }
            None
        }
    }
}

/// Runs the gathered jobs in one transaction, with audit records waiting in
/// `audit` (see [`AUDIT_PER_GROUP`]), commits, then answers each job. When a job
/// fails, rolls back, answers it, and runs the rest again (see above).
fn commit_group(
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
            match super::audit::insert_rows(c, records) {
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
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A writer on a fresh database, and a count of its commits.
    fn writer() -> (Writer, Arc<AtomicUsize>) {
        let (w, commits, _) = audited_writer(false);
        (w, commits)
    }

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

    /// A writer on a fresh database (with an audit table or not), a count of its
    /// commits, and its audit queue.
    fn audited_writer(audit_table: bool) -> (Writer, Arc<AtomicUsize>, Arc<AuditQueue>) {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        if audit_table {
            c.execute_batch(
                "CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL,
                     event TEXT NOT NULL, outcome TEXT NOT NULL, client_id TEXT, remote TEXT,
                     detail TEXT NOT NULL)",
            )
            .unwrap();
        }
        let commits = Arc::new(AtomicUsize::new(0));
        let n = commits.clone();
        c.commit_hook(Some(move || {
            n.fetch_add(1, Ordering::SeqCst);
            false
        }))
        .unwrap();
        let queue = Arc::new(AuditQueue::default());
        let w = Writer::start(c, None, queue.clone(), None).unwrap();
        (w, commits, queue)
    }

    fn record(at: i64) -> AuditRecord {
        AuditRecord {
            at,
            event: "grant.client_credentials".into(),
            outcome: "ok".into(),
            client_id: None,
            remote: None,
            detail: String::new(),
        }
    }

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
    /// the writer goes on. (It once retried them for ever.)
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

    fn insert(
        x: i64,
    ) -> impl Fn(&mut Connection, &mut WriterState) -> Result<(), StoreError> + Copy {
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
        use crate::store::sessions::{self, IssuedPair, NewSession, OpenOutcome};
        let c = crate::store::open_migrated(std::path::Path::new(":memory:")).unwrap();
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

    /// Under writes that never pause, the checkpointer never reaches the WAL's end,
    /// and only the writer's own checkpoints restart it (without them the WAL holds
    /// everything written: 120 MB here; it once reached 3.3 GB in the benchmark).
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
        // Due by size only (1,000 frames, 4 MB), never by time.
        let w = Writer::start_with(
            c,
            Some(open()),
            Default::default(),
            None,
            Duration::from_secs(3600),
            1_000,
        )
        .unwrap();
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
