//! When a batch's grants are answered, against a real PostgreSQL (batch/fixtures.rs
//! says which, and when these are skipped).
use super::super::fixtures::{boom_on_scope_boom, open, store};
use super::super::{answer, run_batch, R};
use crate::store::model::*;
use crate::store::Store;

/// A batch that commits without waiting for the disk is not answered until a later
/// commit that waits has returned: the next batch's, or, when that one fails, a
/// flush of its own.
#[tokio::test]
async fn a_batch_that_did_not_wait_for_the_disk_is_answered_after_a_later_flush() {
    let Some((_db, pg)) = store("unflushed").await else {
        return;
    };
    boom_on_scope_boom(&pg).await;
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    let opened = |o: R<Option<OpenOutcome>>| matches!(o, Ok(Some(OpenOutcome::Opened { .. })));
    let mut unflushed = Vec::new();

    let (job, mut first) = open(&demo, "view", false);
    run_batch(&pg, vec![job], false, &mut unflushed).await;
    assert_eq!(unflushed.len(), 1);
    assert!(first.try_recv().is_err(), "answered before a flush");
    assert_eq!(pg.live_sessions().await.unwrap().len(), 1, "not committed");
    let (job, second) = open(&demo, "view", false);
    run_batch(&pg, vec![job], true, &mut unflushed).await;
    assert!(unflushed.is_empty());
    assert!(opened(answer(first).await) && opened(answer(second).await));

    let (job, mut third) = open(&demo, "view", false);
    run_batch(&pg, vec![job], false, &mut unflushed).await;
    assert!(third.try_recv().is_err(), "answered before a flush");
    let (job, bad) = open(&demo, "boom", false);
    run_batch(&pg, vec![job], true, &mut unflushed).await;
    assert!(unflushed.is_empty());
    assert!(answer(bad).await.is_err());
    assert!(opened(answer(third).await));
    assert_eq!(pg.live_sessions().await.unwrap().len(), 3);
}
