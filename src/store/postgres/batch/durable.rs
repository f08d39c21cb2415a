//! A batch is answered once its commit is durable, but not every batch waits for
//! the disk while holding its locks.
//!
//! A batch of more than one grant, with no earlier batch waiting to be answered,
//! commits with `synchronous_commit` off: `COMMIT` returns once the commit record
//! is in PostgreSQL's WAL buffers, its row locks (the licence row above all) are
//! released, and its grants are not answered yet. The next batch then commits as
//! the database is configured to (on by default, or a synchronous standby's
//! setting) and answers both: its commit record comes after the earlier one's in
//! the WAL, and PostgreSQL makes the WAL durable in order, so the earlier batch is
//! as durable as a commit of its own would have made it. One flush of the disk
//! serves two batches. When no batch follows at once, or one fails, a flush of
//! their own answers the batches still waiting: a transaction that writes one empty
//! transactional logical decoding message (prefix `tollgate`), since PostgreSQL
//! does not flush at the commit of a transaction that wrote nothing; where the
//! connecting user may not, one that rewrites the licence row as it is.
//!
//! What another instance may see before the flush, and then lose to a crash of the
//! database, is only what no client has been told of: a grant answered 200 never
//! depends on it, and any commit that builds on it (a reuse that revokes the
//! session, a count of seats held) comes after it in the WAL and is lost with it.
use super::{Decided, Job, R};
use crate::store::postgres::PostgresStore;
use crate::store::StoreError;
use std::sync::atomic::Ordering;
use tokio_postgres::error::SqlState;

/// Batches that commit without waiting for the disk before one that waits.
pub(super) const UNFLUSHED_AT_MOST: usize = 1;

/// How a batch's transaction begins: waiting for the disk at its commit or not.
pub(super) fn begin(durable: bool) -> &'static str {
    if durable {
        "BEGIN"
    } else {
        "BEGIN; SET LOCAL synchronous_commit TO off"
    }
}

/// The flush's statement: a write, so that its commit is flushed.
const FLUSH: &str = "SELECT pg_logical_emit_message(true, 'tollgate', '')";

/// A batch committed, and its grants' outcomes.
pub(super) struct Committed {
    pub(super) jobs: Vec<Job>,
    pub(super) decided: Vec<Decided>,
}

/// Answers batches whose commits are durable.
pub(super) fn answer(batches: Vec<Committed>) {
    for batch in batches {
        for (job, d) in batch.jobs.into_iter().zip(batch.decided) {
            job.answer(d);
        }
    }
}

/// Repeated flush failures are logged at most this often.
static FLUSH_FAULTS: crate::log_limit::Limited =
    crate::log_limit::Limited::new(std::time::Duration::from_secs(10));

/// Answers `batches` after a flush; when it fails their grants are refused as
/// unavailable, since their commits may not have reached the disk.
pub(super) async fn flush_and_answer(pg: &PostgresStore, batches: Vec<Committed>) {
    match flush(pg).await {
        Ok(()) => answer(batches),
        Err(e) => {
            if let Some(held) = FLUSH_FAULTS.admit() {
                log::warn!("committed grants could not be made durable ({e}){held}");
            }
            let why = format!("the commit could not be made durable: {e}");
            for batch in batches {
                for job in batch.jobs {
                    job.refuse(StoreError::Unavailable(why.clone()));
                }
            }
        }
    }
}

/// The flush where the connecting user may not run [`FLUSH`]: a write that
/// changes nothing, on a row every instance may write, held locked only until the
/// flush's commit.
const FLUSH_BY_LICENCE: &str = "UPDATE licence SET seats = seats WHERE id = 1";

/// Commits a transaction that writes, as the database is configured to commit.
async fn flush(pg: &PostgresStore) -> R<()> {
    let c = pg.batch_pool.get().await?;
    if !pg.batch.flush_by_licence.load(Ordering::Relaxed) {
        let written = match c.prepare_cached(FLUSH).await {
            Ok(st) => c.execute(&st, &[]).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(_) => return Ok(()),
            Err(e) if not_allowed(&e) => {
                log::warn!(
                    "the database user may not run pg_logical_emit_message ({e}); \
                     grants are flushed by rewriting the licence row instead"
                );
                pg.batch.flush_by_licence.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let st = c.prepare_cached(FLUSH_BY_LICENCE).await?;
    c.execute(&st, &[]).await?;
    Ok(())
}

/// The function is there but not for this user (a site that revoked it), or not
/// there at all.
fn not_allowed(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE) | Some(&SqlState::UNDEFINED_FUNCTION)
    )
}

#[cfg(test)]
mod tests;
