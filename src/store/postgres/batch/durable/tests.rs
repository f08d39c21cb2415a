//! When a batch's grants are answered, against a real PostgreSQL (batch/fixtures.rs
//! says which, and when these are skipped).
use super::super::fixtures::{boom_on_scope_boom, open, store, START};
use super::super::{answer, run_batch, R};
use crate::clock::ManualClock;
use crate::store::model::*;
use crate::store::postgres::{Options, PostgresStore};
use crate::store::Store;
use std::sync::atomic::Ordering;
use std::sync::Arc;

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

/// Where the connecting user may not write a logical decoding message (a site that
/// revoked `EXECUTE` on `pg_logical_emit_message`), a flush rewrites the licence
/// row instead, and the grants waiting for it are answered.
#[tokio::test]
async fn without_the_logical_message_a_flush_rewrites_the_licence_row() {
    let Some((db, pg)) = store("flush_by_licence").await else {
        return;
    };
    let role = format!("tollgate_flush_{}", std::process::id());
    db.admin_exec(&format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN"
    ))
    .await;
    pg.pool
        .get()
        .await
        .unwrap()
        .batch_execute(&format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};
             REVOKE EXECUTE ON FUNCTION pg_logical_emit_message(boolean, text, text) FROM PUBLIC;"
        ))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(START));
    // Migrated already, and this user may not create the migrations' table.
    let options = Options {
        migrate: false,
        ..Options::server(1)
    };
    let limited = PostgresStore::open(&db.url_as(&role), clock, &options)
        .await
        .unwrap();
    let demo = limited.find_client("demo").await.unwrap().unwrap();
    let mut unflushed = Vec::new();
    let (job, rx) = open(&demo, "view", false);
    run_batch(&limited, vec![job], false, &mut unflushed).await;
    super::flush_and_answer(&limited, std::mem::take(&mut unflushed)).await;
    let answered = answer(rx).await;
    let by_licence = limited.batch.flush_by_licence.load(Ordering::Relaxed);
    drop((limited, pg));
    drop(db);
    let admin = crate::store::postgres::testing::url();
    let (c, conn) = admin
        .parse::<tokio_postgres::Config>()
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await
        .unwrap();
    assert!(
        matches!(answered, Ok(Some(OpenOutcome::Opened { .. }))),
        "{answered:?}"
    );
    assert!(by_licence);
}
