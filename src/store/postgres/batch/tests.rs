//! Group commit against a real PostgreSQL (fixtures.rs says which, and when these
//! are skipped).
use super::fixtures::*;
use super::*;
use crate::store::Store;
use std::collections::HashSet;

/// One batch of licensed grants, one of which cannot be written (a trigger
/// refuses its session) and one of a stale client record:
/// the failing grant fails alone, the stale one is told so, and of the others
/// exactly as many as there are seats get one.
#[tokio::test]
async fn a_failing_grant_sinks_only_itself_and_seats_stay_exact() {
    let Some((_db, pg)) = store("failing").await else {
        return;
    };
    pg.set_seats(3).await.unwrap();
    boom_on_scope_boom(&pg).await;
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    let mut stale = demo.clone();
    stale.enabled = !stale.enabled;
    let mut jobs = Vec::new();
    let mut good = Vec::new();
    for i in 0..8 {
        let (job, rx) = open(&demo, "all view", true);
        jobs.push(job);
        good.push(rx);
        if i == 2 {
            let (job, bad) = open(&demo, "boom", false);
            jobs.push(job);
            let (job, stale_rx) = open(&stale, "all view", true);
            jobs.push(job);
            good.push(stale_rx);
            run(&pg, std::mem::take(&mut jobs)).await;
            assert!(answer(bad).await.is_err());
        }
    }
    run(&pg, jobs).await;
    let mut outcomes = Vec::new();
    for rx in good {
        outcomes.push(answer(rx).await.unwrap());
    }
    let opened = outcomes
        .iter()
        .filter(|o| matches!(o, Some(OpenOutcome::Opened { .. })))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Some(OpenOutcome::NoSeat { .. })))
        .count();
    let stale = outcomes.iter().filter(|o| o.is_none()).count();
    assert_eq!((opened, refused, stale), (3, 5, 1), "{outcomes:?}");
    assert_eq!(pg.seats().await.unwrap().held, 3);
}

/// A refresh token presented twice in one batch rotates once; the second use is
/// reuse and revokes the session, as one after the other would.
#[tokio::test]
async fn a_refresh_token_twice_in_one_batch_rotates_once_then_revokes() {
    let Some((_db, pg)) = store("twice").await else {
        return;
    };
    pg.set_seats(1).await.unwrap();
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    let t = tokens();
    let Some(OpenOutcome::Opened { session_id, ids }) = pg
        .open_session(&demo, "all view".into(), true, t)
        .await
        .unwrap()
    else {
        panic!("no session");
    };
    let key = TokenKey {
        id: Some(ids.refresh),
        hash: t.refresh_hash,
    };
    let mut jobs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..2 {
        let (reply, rx) = oneshot::channel();
        jobs.push(Job::Refresh {
            client: demo.clone(),
            presented: key,
            tokens: tokens(),
            narrow: Box::new(|s: &str| Ok(s.to_owned())),
            reply,
        });
        rxs.push(rx);
    }
    // A licensed grant after them in the same batch: the reuse freed the only seat.
    let (job, after) = open(&demo, "all view", true);
    jobs.push(job);
    run(&pg, jobs).await;
    let mut outcomes = Vec::new();
    for rx in rxs {
        outcomes.push(answer(rx).await.unwrap().unwrap());
    }
    assert!(
        matches!(&outcomes[0], RefreshOutcome::Rotated { session_id: s, .. } if *s == session_id),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], RefreshOutcome::Reused);
    assert!(matches!(
        answer(after).await.unwrap(),
        Some(OpenOutcome::Opened { .. })
    ));
    let live = pg.live_sessions().await.unwrap();
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, session_id);
}

/// Batches committed in one flight so far.
fn one_flights(pg: &PostgresStore) -> u64 {
    pg.batch
        .one_flights
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs one grant the long way, which reads row ids ahead for the batches after it.
async fn read_ids_ahead(pg: &PostgresStore, client: &ClientRecord) {
    let (job, rx) = open(client, "view", false);
    run(pg, vec![job]).await;
    assert!(matches!(
        answer(rx).await.unwrap(),
        Some(OpenOutcome::Opened { .. })
    ));
}

/// A batch of new sessions, licensed and not, commits in one flight once the
/// instance holds row ids: every grant is answered with its own ids, and what is
/// stored is what was answered.
#[tokio::test]
async fn new_sessions_commit_in_one_flight_once_ids_are_held() {
    let Some((_db, pg)) = store("one_flight").await else {
        return;
    };
    pg.set_seats(5).await.unwrap();
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    let viewer = pg.find_client("viewer").await.unwrap().unwrap();
    read_ids_ahead(&pg, &demo).await;
    let before = one_flights(&pg);
    let mut jobs = Vec::new();
    let mut rxs = Vec::new();
    for (client, scope, licensed) in [
        (&demo, "all view", true),
        (&viewer, "view", false),
        (&demo, "all", true),
        (&demo, "view", false),
    ] {
        let (job, rx) = open(client, scope, licensed);
        jobs.push(job);
        rxs.push(rx);
    }
    run(&pg, jobs).await;
    assert_eq!(one_flights(&pg), before + 1);
    let mut sessions = Vec::new();
    let (mut access, mut refresh) = (HashSet::new(), HashSet::new());
    for rx in rxs {
        let Some(OpenOutcome::Opened { session_id, ids }) = answer(rx).await.unwrap() else {
            panic!("not opened");
        };
        sessions.push(session_id);
        assert!(access.insert(ids.access) && refresh.insert(ids.refresh));
    }
    let live = pg.live_sessions().await.unwrap();
    assert_eq!(live.len(), 5, "{live:?}");
    for id in &sessions {
        assert!(live.iter().any(|s| s.id == *id), "session {id} not stored");
    }
    assert_eq!(pg.seats().await.unwrap().held, 2);
}

/// A client record changed since the grants saw it: the one-flight batch rolls
/// back and runs the long way, where the stale grant is told so and nothing of it
/// is written, and the others open.
#[tokio::test]
async fn a_stale_client_sends_a_one_flight_batch_the_long_way() {
    let Some((_db, pg)) = store("one_flight_stale").await else {
        return;
    };
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    read_ids_ahead(&pg, &demo).await;
    let before = one_flights(&pg);
    let mut stale_scopes = demo.clone();
    stale_scopes.scopes.retain(|(name, _)| name == "view");
    let mut stale_secret = demo.clone();
    stale_secret.password_hash.push('x');
    let (fresh, fresh_rx) = open(&demo, "view", false);
    let (old, old_rx) = open(&stale_scopes, "view", false);
    let (other, other_rx) = open(&stale_secret, "view", false);
    run(&pg, vec![fresh, old, other]).await;
    assert_eq!(one_flights(&pg), before);
    assert!(matches!(
        answer(fresh_rx).await.unwrap(),
        Some(OpenOutcome::Opened { .. })
    ));
    assert_eq!(answer(old_rx).await.unwrap(), None);
    assert_eq!(answer(other_rx).await.unwrap(), None);
    assert_eq!(pg.live_sessions().await.unwrap().len(), 2);
}

/// More licensed grants than the seat bound leaves room for: the one-flight batch
/// rolls back, and the long way counts the seats exactly.
#[tokio::test]
async fn licensed_grants_over_the_bound_go_the_long_way_and_stay_exact() {
    let Some((_db, pg)) = store("one_flight_seats").await else {
        return;
    };
    pg.set_seats(2).await.unwrap();
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    read_ids_ahead(&pg, &demo).await;
    let before = one_flights(&pg);
    let (jobs, rxs): (Vec<_>, Vec<_>) = (0..3).map(|_| open(&demo, "all", true)).unzip();
    run(&pg, jobs).await;
    assert_eq!(one_flights(&pg), before);
    let mut outcomes = Vec::new();
    for rx in rxs {
        outcomes.push(answer(rx).await.unwrap());
    }
    let opened = outcomes
        .iter()
        .filter(|o| matches!(o, Some(OpenOutcome::Opened { .. })))
        .count();
    assert_eq!(opened, 2, "{outcomes:?}");
    assert!(
        matches!(outcomes[2], Some(OpenOutcome::NoSeat { .. })),
        "{outcomes:?}"
    );
    assert_eq!(pg.seats().await.unwrap().held, 2);
}

fn ids_held(pg: &PostgresStore) -> usize {
    pg.batch.ids.lock().unwrap().len()
}

/// A batch that goes the long way takes its row ids from those the instance
/// holds, and reads more only when it holds fewer than a full batch's.
#[tokio::test]
async fn the_long_way_takes_held_ids_and_reads_ahead_only_when_few() {
    let Some((_db, pg)) = store("ids_ahead").await else {
        return;
    };
    let demo = pg.find_client("demo").await.unwrap().unwrap();
    assert_eq!(ids_held(&pg), 0);
    read_ids_ahead(&pg, &demo).await;
    assert_eq!(ids_held(&pg), IDS_AHEAD);
    let refresh = |presented: TokenKey| {
        let (reply, rx) = oneshot::channel();
        let job = Job::Refresh {
            client: demo.clone(),
            presented,
            tokens: tokens(),
            narrow: Box::new(|s: &str| Ok(s.to_owned())),
            reply,
        };
        (job, rx)
    };
    let t = tokens();
    let Some(OpenOutcome::Opened { ids, .. }) = pg
        .open_session(&demo, "view".into(), false, t)
        .await
        .unwrap()
    else {
        panic!("no session");
    };
    assert_eq!(ids_held(&pg), IDS_AHEAD - 1);
    let (job, rx) = refresh(TokenKey {
        id: Some(ids.refresh),
        hash: t.refresh_hash,
    });
    run(&pg, vec![job]).await;
    let Some(RefreshOutcome::Rotated { ids: rotated, .. }) = answer(rx).await.unwrap() else {
        panic!("not rotated");
    };
    assert_eq!(ids_held(&pg), IDS_AHEAD - 2);
    // Fewer than a full batch's held: the next batch reads up to IDS_AHEAD again.
    pg.batch.take_ids(IDS_AHEAD - 2 - (MAX_BATCH - 1)).unwrap();
    assert_eq!(ids_held(&pg), MAX_BATCH - 1);
    let (job, rx) = refresh(TokenKey {
        id: Some(rotated.refresh),
        hash: tokens().refresh_hash,
    });
    run(&pg, vec![job]).await;
    assert_eq!(answer(rx).await.unwrap(), Some(RefreshOutcome::Invalid));
    assert_eq!(ids_held(&pg), IDS_AHEAD);
}
