//! A batch of new sessions in one round trip: when every grant of a batch opens a
//! session (no refresh, no signed token) and the instance holds enough row ids
//! already, the batch's outcome is known before anything is read, provided that
//! its clients' rows are as the grants saw them and its licensed grants fit under
//! the seat bound. The batch sends those two expectations, its writes and `COMMIT`
//! in one flight. An expectation that does not hold raises SQLSTATE TG001
//! (migration V15), which aborts the transaction, so that the writes after it do
//! nothing and `COMMIT` rolls back; the batch then runs the long way (commit.rs),
//! which reads first and decides each grant.
use super::commit::{new_access_tokens, new_refresh_tokens, new_sessions};
use super::decide::Writes;
use super::{Decided, Job, R};
use crate::store::model::*;
use crate::store::postgres::rows::flag;
use crate::store::postgres::PostgresStore;
use std::sync::atomic::Ordering;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// Holds when the clients' rows, locked FOR SHARE as the long way's read locks
/// them, are those the grants were decided for: password, flags and scopes alike.
/// A scope is written `name licensed`; names have no spaces (RFC 6749 §3.3).
const CLIENTS_AS_SEEN: &str = r#"SELECT tollgate_expect(count(*) = cardinality($1::bigint[]), 'clients')
FROM (SELECT u.id, t.sc FROM users u
        JOIN UNNEST($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[])
             AS t(id, pw, api, en, sc) ON u.id = t.id
      WHERE u."PASSWORD" = t.pw AND u.apiuser = t.api AND u.enabled = t.en
      ORDER BY u.id FOR SHARE OF u) x
WHERE x.sc = coalesce((SELECT string_agg(s.name || ' ' || s.licensed, ' ' ORDER BY s.name COLLATE "C")
                       FROM user_scopes us JOIN scopes s ON s.name = us.scope
                       WHERE us.user_id = x.id), '')"#;
/// Holds when `$1` more licensed sessions fit under the seat bound, with the
/// licence row locked until the batch commits (commit.rs READS[3]).
const SEATS_FIT: &str = "SELECT tollgate_expect(fits, 'seats')
FROM (SELECT held_bound + $1 <= seats AS fits FROM licence WHERE id = 1 FOR UPDATE) l";

/// A client as [`CLIENTS_AS_SEEN`] compares it.
fn scopes_text(c: &ClientRecord) -> String {
    let mut text = String::new();
    for (name, licensed) in &c.scopes {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(name);
        text.push_str(if *licensed { " 1" } else { " 0" });
    }
    text
}

/// The batch's outcomes once committed in one flight; None when it cannot go this
/// way or an expectation did not hold (its transaction then rolled back, and the
/// connection is idle).
pub(super) async fn try_one_flight(
    pg: &PostgresStore,
    c: &deadpool_postgres::Client,
    jobs: &[Job],
    begin: &str,
) -> R<Option<Vec<Decided>>> {
    if jobs
        .iter()
        .any(|j| !matches!(j, Job::Open { tokens, .. } if !tokens.signed))
    {
        return Ok(None);
    }
    let Some(ids) = pg.batch.take_ids(jobs.len()) else {
        return Ok(None);
    };
    let now = pg.now();

    // Every distinct client record the grants saw, in id order.
    let mut clients: Vec<&ClientRecord> = jobs.iter().map(Job::client).collect();
    clients.sort_by_key(|c| c.id);
    clients.dedup_by(|a, b| a == b);
    let c_id: Vec<i64> = clients.iter().map(|c| c.id).collect();
    let c_pw: Vec<&str> = clients.iter().map(|c| c.password_hash.as_str()).collect();
    let c_api: Vec<i32> = clients.iter().map(|c| flag(c.api_user)).collect();
    let c_en: Vec<i32> = clients.iter().map(|c| flag(c.enabled)).collect();
    let c_sc: Vec<String> = clients.iter().map(|c| scopes_text(c)).collect();

    let mut w = Writes::default();
    let mut pair_ids = ids.iter().map(|[_, access, refresh]| (*access, *refresh));
    let mut decided = Vec::with_capacity(jobs.len());
    let mut wanted: i64 = 0;
    for (job, [session_id, _, _]) in jobs.iter().zip(&ids) {
        let Job::Open {
            client,
            scope,
            licensed,
            tokens,
            ..
        } = job
        else {
            return Ok(None);
        };
        wanted += i64::from(*licensed);
        let opened = w.open(
            *session_id,
            &mut pair_ids,
            client.id,
            scope,
            *licensed,
            tokens,
            now,
        )?;
        decided.push(Decided::Open(Some(opened)));
    }

    let clients_st = c.prepare_cached(CLIENTS_AS_SEEN).await?;
    let seats_st = c.prepare_cached(SEATS_FIT).await?;
    let [sessions_st, refresh_st, access_st] = [
        c.prepare_cached(super::commit::WRITES[0]).await?,
        c.prepare_cached(super::commit::WRITES[1]).await?,
        c.prepare_cached(super::commit::WRITES[2]).await?,
    ];
    let begin = async { c.batch_execute(begin).await };
    let clients = async {
        let p: [&(dyn ToSql + Sync); 5] = [&c_id, &c_pw, &c_api, &c_en, &c_sc];
        c.execute(&clients_st, &p).await
    };
    let seats = async {
        if wanted == 0 {
            return Ok(0);
        }
        c.execute(&seats_st, &[&wanted]).await
    };
    let sessions = async { c.execute(&sessions_st, &new_sessions(&w, &now)).await };
    let refresh = async { c.execute(&refresh_st, &new_refresh_tokens(&w, &now)).await };
    let access = async { c.execute(&access_st, &new_access_tokens(&w, &now)).await };
    let commit = async { c.batch_execute("COMMIT").await };
    // Answers are taken in the order sent (commit.rs): the first failure is the one
    // reported, not the aborted transaction the statements after it found.
    let (began, clients, seats, sessions, refresh, access, commit) =
        tokio::join!(begin, clients, seats, sessions, refresh, access, commit);
    began?;
    for checked in [clients, seats] {
        match checked {
            Ok(_) => {}
            // The transaction is aborted; the COMMIT sent with it rolled it back.
            Err(e) if e.code().map(SqlState::code) == Some(UNEXPECTED) => {
                commit?;
                // Unused: the long way may take them.
                pg.batch.keep_ids(ids.into_iter());
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    sessions?;
    refresh?;
    access?;
    commit?;
    pg.batch.one_flights.fetch_add(1, Ordering::Relaxed);
    Ok(Some(decided))
}

/// SQLSTATE of `tollgate_expect` (migration V15).
const UNEXPECTED: &str = "TG001";
