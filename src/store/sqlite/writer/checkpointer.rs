//! The checkpointer: a thread of its own copies the WAL into the database, and the
//! writer restarts the WAL now and then between groups.
//!
//! SQLite's automatic checkpoint runs inside a commit, so every grant of that group,
//! and every grant queued behind it, would wait for its copying and its fsyncs. The
//! checkpointer thread, on a connection of its own, copies the WAL into the database
//! every [`CHECKPOINT_EVERY`] while the writer goes on committing, and syncs the
//! database after each pass, so that the writer's checkpoint is not left to sync every
//! page copied since the last restart. It never reaches the WAL's end under constant
//! writes, and the WAL can only start over from its beginning once every frame in it
//! has been copied: so every [`RESTART_EVERY`], or sooner past [`RESTART_FRAMES`],
//! the writer copies the frames the checkpointer's latest pass left, after answering
//! a group, and its next transaction restarts the WAL. Only that short copy and its
//! syncs hold grants up.
use super::{SLOW_TO_LOG, WRITE_FAULTS};
use rusqlite::Connection;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The checkpointer thread's handle, owned by the writer thread; dropping it stops
/// the thread.
pub(super) struct Checkpointer {
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
    /// The writer's checkpoints that copied every frame, so that its next
    /// transaction restarts the WAL.
    restarts: AtomicU64,
}

impl Checkpointer {
    pub(super) fn start(
        side: Connection,
        restart_every: Duration,
        restart_frames: i64,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            gate: Mutex::new(()),
            passes: AtomicU64::new(0),
            frames: AtomicI64::new(0),
            restarts: AtomicU64::new(0),
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
                        if let Err(e) = crate::store::sqlite::fsync::sync_main_db(&side) {
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
    pub(super) fn restart_if_due(&mut self, c: &Connection) {
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
        if let Some((log, copied)) = checkpoint(c, "writer") {
            if log == copied {
                self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.shared.frames.store(0, Ordering::Relaxed);
        self.restarted = Instant::now();
        self.due_after = None;
    }

    /// The writer's checkpoints so far that left the WAL ready to restart.
    #[cfg(test)]
    fn restarts(&self) -> u64 {
        self.shared.restarts.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::Checkpointer;
    use rusqlite::Connection;
    use std::time::{Duration, Instant};

    /// The WAL header's salts, which change each time the WAL restarts.
    fn salts(wal: &std::path::Path) -> Option<[u8; 8]> {
        use std::io::Read;
        let mut header = [0; 24];
        std::fs::File::open(wal)
            .ok()?
            .read_exact(&mut header)
            .ok()?;
        header[16..].try_into().ok()
    }

    /// Under writes that never pause, the checkpointer thread never reaches the
    /// WAL's end, so only the writer's own checkpoints restart it. The test writes,
    /// as the writer thread does (a transaction, then `restart_if_due`), until the
    /// writer has left the WAL ready to restart three times, and the WAL has
    /// restarted; a slow disk makes it take longer, not fail. Without the writer's
    /// checkpoints it fails at the deadline.
    #[test]
    fn the_writer_restarts_the_wal_under_constant_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let open = || {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                .unwrap();
            c
        };
        let mut c = open();
        c.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (x BLOB)")
            .unwrap();
        // Due by size only (1,000 frames, 4 MB), never by time.
        let mut ck = Checkpointer::start(open(), Duration::from_secs(3600), 1_000).unwrap();
        let wal = path.with_extension("db-wal");
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut restarted = 0;
        let mut last = salts(&wal);
        while ck.restarts() < 3 || restarted == 0 {
            let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
            assert!(
                Instant::now() < deadline && size < 1 << 30,
                "a WAL of {size} bytes: {} writer checkpoints that left it ready to \
                 restart, {restarted} restarts",
                ck.restarts()
            );
            // 200 rows of 1 KB in one transaction: about 50 frames.
            let tx = c.transaction().unwrap();
            for _ in 0..200 {
                tx.execute("INSERT INTO t VALUES (zeroblob(1000))", [])
                    .unwrap();
            }
            tx.commit().unwrap();
            let now = salts(&wal);
            // The WAL header's first write is not a restart.
            if now != last {
                restarted += usize::from(last.is_some());
                last = now;
            }
            ck.restart_if_due(&c);
        }
    }
}
