//! Group commit on PostgreSQL: the grants of one instance that wait at the same
//! moment share one transaction and one commit, as the SQLite writer's do.
//!
//! A dispatcher task takes every grant waiting (up to [`MAX_BATCH`]) and runs them
//! as one batch; one batch is in flight at a time (see [`CONNECTIONS`]), and grants
//! that arrive meanwhile gather for the next. A batch reads what it needs in one
//! pipelined flight (the clients' rows FOR SHARE, the presented refresh tokens FOR
//! UPDATE in id order, the licence row FOR UPDATE and the held-seat count once, row ids from the
//! sequences), decides each grant in arrival order against that state, writes
//! everything in a second flight of set-based statements, and commits. A grant is
//! answered only once that commit is durable (durable.rs). A batch that only opens
//! sessions, once the instance holds row ids read ahead, goes in one flight
//! instead: its outcome is known in advance if its clients' rows and the seat bound
//! are as expected, and it sends those expectations with its writes and the commit
//! (one_flight.rs).
//!
//! The rules of the one-grant path (surface.rs) hold: the licence row lock makes the
//! count exact across instances; a stale client is answered None and nothing of it is
//! written; a refresh token presented twice in one batch rotates once and then revokes
//! its session. When a batch fails because of what it wrote (a constraint, a
//! trigger, a bug), it is rolled back and each of its grants runs again alone, so
//! one failing grant fails only itself; when it fails because the database is
//! absent or too slow (see [`StoreError::is_unavailable`]), every grant of it is
//! refused as unavailable at once. A grant waits for its batch no longer than a
//! request waits for a pooled connection.
//!
//! The batches run on the thread that drives their connections (driver.rs), over a
//! pool of their own.
use super::PostgresStore;
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::StoreError;
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

mod commit;
mod decide;
mod durable;
mod one_flight;

use commit::commit_batch;
pub(super) use commit::CURRENT_KEY;

type R<T> = Result<T, StoreError>;

/// At most this many grants share one commit.
pub(super) const MAX_BATCH: usize = 128;
/// The batches' connections: one batch of an instance is in flight at a time, and
/// a flush (durable.rs) runs only between batches. With one, the grants that arrive
/// while a batch runs all go in the next, and the batches queue less on the licence
/// row; two in flight (one reading while the other commits) made smaller batches
/// that cost PostgreSQL more per grant (bench/README.md).
pub(super) const CONNECTIONS: usize = 1;

/// A grant waiting for its batch.
pub(super) enum Job {
    Open {
        client: ClientRecord,
        scope: String,
        licensed: bool,
        tokens: NewTokens,
        reply: oneshot::Sender<R<Option<OpenOutcome>>>,
    },
    Refresh {
        client: ClientRecord,
        presented: TokenKey,
        tokens: NewTokens,
        narrow: Narrow,
        reply: oneshot::Sender<R<Option<RefreshOutcome>>>,
    },
}

impl Job {
    fn signed(&self) -> bool {
        match self {
            Job::Open { tokens, .. } | Job::Refresh { tokens, .. } => tokens.signed,
        }
    }

    fn client(&self) -> &ClientRecord {
        match self {
            Job::Open { client, .. } | Job::Refresh { client, .. } => client,
        }
    }

    /// Answers with the batch's decision.
    fn answer(self, decided: Decided) {
        match (self, decided) {
            (Job::Open { reply, .. }, Decided::Open(o)) => {
                let _ = reply.send(Ok(o));
            }
            (Job::Refresh { reply, .. }, Decided::Refresh(o)) => {
                let _ = reply.send(Ok(o));
            }
            (job, _) => job.refuse(StoreError::Invalid("batch answer mismatch".into())),
        }
    }

    fn refuse(self, e: StoreError) {
        match self {
            Job::Open { reply, .. } => {
                let _ = reply.send(Err(e));
            }
            Job::Refresh { reply, .. } => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Runs alone, in a transaction of its own (after its batch failed).
    async fn run_alone(self, pg: &PostgresStore) {
        match self {
            Job::Open {
                client,
                scope,
                licensed,
                tokens,
                reply,
            } => {
                let _ = reply.send(pg.open_one(&client, scope, licensed, tokens).await);
            }
            Job::Refresh {
                client,
                presented,
                tokens,
                narrow,
                reply,
            } => {
                let _ = reply.send(pg.refresh_one(&client, presented, tokens, narrow).await);
            }
        }
    }
}

/// One grant's outcome, decided inside the batch.
enum Decided {
    Open(Option<OpenOutcome>),
    Refresh(Option<RefreshOutcome>),
}

/// The handle of an instance's dispatcher; it starts on the first grant, on the
/// driving thread (driver.rs), and again if its runtime has gone.
#[derive(Default)]
pub(super) struct Batcher {
    jobs: Mutex<Option<mpsc::UnboundedSender<(Instant, Job)>>>,
    /// Row ids taken from the sequences ahead of need, each a session's, an access
    /// token's and a refresh token's: a batch that has its ids before it starts can
    /// send its writes with its expectations (one_flight.rs).
    ids: Mutex<Vec<[i64; 3]>>,
    /// Batches committed in one flight.
    one_flights: std::sync::atomic::AtomicU64,
    /// The connecting user may not write a logical decoding message: flushes
    /// rewrite the licence row instead (durable.rs).
    flush_by_licence: std::sync::atomic::AtomicBool,
}

/// Row ids an instance reads ahead of need, at most.
const IDS_AHEAD: usize = 4 * MAX_BATCH;

fn stopped() -> StoreError {
    StoreError::Unavailable("the grant batcher has stopped".into())
}

impl Batcher {
    /// Queues `job` for the next batch.
    pub(super) fn submit(&self, pg: &PostgresStore, job: Job) -> R<()> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let sender = match jobs.as_ref().filter(|s| !s.is_closed()) {
            Some(s) => s.clone(),
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                super::driver::spawn(dispatch(pg.clone(), rx));
                *jobs = Some(tx.clone());
                tx
            }
        };
        sender.send((Instant::now(), job)).map_err(|_| stopped())
    }
}

impl Batcher {
    /// `n` ids ahead of need, if the instance holds that many.
    fn take_ids(&self, n: usize) -> Option<Vec<[i64; 3]>> {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let left = ids.len().checked_sub(n)?;
        Some(ids.split_off(left))
    }

    /// How many ids a batch reads ahead of need: none while the instance holds at
    /// least a full batch's, else enough to hold [`IDS_AHEAD`].
    fn ids_wanted_ahead(&self) -> usize {
        let held = self.ids.lock().unwrap_or_else(|e| e.into_inner()).len();
        if held >= MAX_BATCH {
            0
        } else {
            IDS_AHEAD - held
        }
    }

    /// Keeps ids read ahead of need.
    fn keep_ids(&self, more: impl Iterator<Item = [i64; 3]>) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(more);
    }
}

/// Awaits a job's answer.
pub(super) async fn answer<T>(rx: oneshot::Receiver<R<T>>) -> R<T> {
    rx.await.map_err(|_| stopped())?
}

async fn dispatch(pg: PostgresStore, mut rx: mpsc::UnboundedReceiver<(Instant, Job)>) {
    // Batches committed without waiting for the disk, not yet answered (durable.rs).
    let mut unflushed: Vec<durable::Committed> = Vec::new();
    loop {
        let first = if unflushed.is_empty() {
            rx.recv().await
        } else {
            match rx.try_recv() {
                Ok(job) => Some(job),
                // No batch follows at once to carry their flush: one of their own.
                Err(_) => {
                    durable::flush_and_answer(&pg, std::mem::take(&mut unflushed)).await;
                    continue;
                }
            }
        };
        let Some(first) = first else { return };
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        let mut next = Some(first);
        while let Some((queued, job)) = next.take() {
            // A grant waits for a batch as long as a request waits for a pooled
            // connection, no longer: a slow database cannot pile up waiting grants.
            if queued.elapsed() > pg.wait {
                job.refuse(StoreError::Unavailable(format!(
                    "no database connection within {} ms",
                    pg.wait.as_millis()
                )));
            } else {
                jobs.push(job);
            }
            if jobs.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if jobs.is_empty() {
            continue;
        }
        // A batch waits for the disk when it carries earlier batches' flush, and when
        // it is one grant alone: no grant is waiting to follow it, and a flush of
        // its own would be a second transaction.
        let durable = unflushed.len() >= durable::UNFLUSHED_AT_MOST || jobs.len() == 1;
        run_batch(&pg, jobs, durable, &mut unflushed).await;
    }
}

/// Repeated batch failures are logged at most this often.
static BATCH_FAULTS: crate::log_limit::Limited =
    crate::log_limit::Limited::new(std::time::Duration::from_secs(10));

/// Runs one batch. Its grants are answered once its commit is durable: at once
/// when it waited for the disk (with those of `unflushed`), else later (durable.rs).
async fn run_batch(
    pg: &PostgresStore,
    jobs: Vec<Job>,
    durable: bool,
    unflushed: &mut Vec<durable::Committed>,
) {
    let started = std::time::Instant::now();
    let committed = commit_batch(pg, &jobs, durable).await;
    log::trace!("batch of {} grants in {:?}", jobs.len(), started.elapsed());
    match committed {
        Ok(decided) => {
            unflushed.push(durable::Committed { jobs, decided });
            if durable {
                durable::answer(std::mem::take(unflushed));
            }
            return;
        }
        // Nothing to gain from running each alone: the database is absent or too
        // slow (a statement timed out, a lock was lost to a deadlock).
        Err(e) if no_connection(&e) || e.is_unavailable() => {
            let why = e.to_string();
            for job in jobs {
                job.refuse(StoreError::Unavailable(why.clone()));
            }
        }
        Err(e) => {
            if let Some(held) = BATCH_FAULTS.admit() {
                log::warn!(
                    "a batch of {} grants was rolled back ({e}); each runs again alone{held}",
                    jobs.len()
                );
            }
            let alone = jobs.into_iter().map(|j| j.run_alone(pg));
            futures_util::future::join_all(alone).await;
        }
    }
    // The batches before this one still wait for their flush.
    if !unflushed.is_empty() {
        durable::flush_and_answer(pg, std::mem::take(unflushed)).await;
    }
}

/// No connection to run on: running each grant alone would only wait again.
fn no_connection(e: &StoreError) -> bool {
    match e {
        StoreError::PostgresPool(_) => true,
        StoreError::Postgres(e) => e.is_closed(),
        _ => false,
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
