//! Jobs: what the writer thread runs, and where each answer goes.
use super::WriterState;
use crate::store::StoreError;
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A job: run (a group's job may run several times, see `group`), then answered once.
pub(super) trait Job: Send {
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

pub(super) fn job<T, F, R>(f: F, reply: R) -> Box<dyn Job>
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

pub(super) enum Queued {
    /// Runs inside the group transaction.
    Grouped(Box<dyn Job>),
    /// Runs outside any transaction, on its own, once.
    Alone(Box<dyn Job>),
}
