//! One batch's transaction: read in one flight, decide each grant in arrival
//! order (decide.rs), write in a second flight, commit.
use super::decide::{refresh, Presented, Seats, Writes};
use super::{Decided, Job, R};
use crate::store::model::*;
use crate::store::postgres::PostgresStore;
use crate::store::StoreError;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// Where each statement of [`READS`] and [`WRITES`] is among the prepared ones.
const USERS: usize = 0;
const TOKENS: usize = 1;
const IDS: usize = 2;
const LICENCE: usize = 3;
const COUNT: usize = 4;
const SESSIONS: usize = READS.len();
const REFRESH_TOKENS: usize = SESSIONS + 1;
const ACCESS_TOKENS: usize = SESSIONS + 2;
const USED: usize = SESSIONS + 3;
const EXTEND: usize = SESSIONS + 4;
const REVOKE: usize = SESSIONS + 5;

/// The batch's statements, in the order a batch sends them.
const READS: [&str; 5] = [
    r#"SELECT u.id, u."PASSWORD", u.apiuser, u.enabled,
              ARRAY(SELECT s.name FROM user_scopes us JOIN scopes s ON s.name = us.scope
                    WHERE us.user_id = u.id ORDER BY s.name COLLATE "C"),
              ARRAY(SELECT s.licensed FROM user_scopes us JOIN scopes s ON s.name = us.scope
                    WHERE us.user_id = u.id ORDER BY s.name COLLATE "C")
       FROM users u WHERE u.id = ANY($1) ORDER BY u.id FOR SHARE OF u"#,
    "SELECT r.id, r.hash, r.session_id, r.used_at IS NOT NULL, s.user_id, s.scope, s.expires_at,
            s.revoked_at IS NOT NULL, s.licensed
     FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
     WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE",
    // The sequences by name: V4 rebuilt the token tables and theirs kept `_v4`.
    "SELECT nextval('sessions_id_seq'), nextval('access_tokens_v4_id_seq'),
            nextval('refresh_tokens_v4_id_seq')
     FROM generate_series(1, $1::bigint)",
    "SELECT seats, held_bound FROM licence WHERE id = 1 FOR UPDATE",
    // Only when the bound would not fit the batch: the exact count, which becomes
    // the new bound (migration V11).
    "UPDATE licence SET held_bound = (SELECT count(*) FROM sessions
         WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > $1)
     WHERE id = 1
     RETURNING held_bound, (SELECT min(expires_at) FROM sessions
         WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > $1)",
];
/// Read only by a batch with a signed grant in it (API.md §10).
pub(in crate::store::postgres) const CURRENT_KEY: &str =
    "SELECT id FROM signing_keys WHERE retired_at IS NULL";
pub(super) const WRITES: [&str; 6] = [
    "INSERT INTO sessions (id, user_id, scope, licensed, created_at, expires_at)
     SELECT i, u, s, l, $5, e
     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::int[], $6::bigint[]) AS t(i, u, s, l, e)",
    "INSERT INTO refresh_tokens (id, hash, session_id, issued_at)
     SELECT i, h, s, $4 FROM UNNEST($1::bigint[], $2::bytea[], $3::bigint[]) AS t(i, h, s)",
    "INSERT INTO access_tokens (id, hash, session_id, scope, issued_at, expires_at)
     SELECT i, h, s, c, $5, e
     FROM UNNEST($1::bigint[], $2::bytea[], $3::bigint[], $4::text[], $6::bigint[]) AS t(i, h, s, c, e)",
    "UPDATE refresh_tokens SET used_at = $2 WHERE id = ANY($1)",
    "UPDATE sessions s SET expires_at = t.e FROM UNNEST($1::bigint[], $2::bigint[]) AS t(i, e)
     WHERE s.id = t.i",
    "UPDATE sessions SET revoked_at = $2 WHERE id = ANY($1) AND revoked_at IS NULL",
];

/// The parameters of `WRITES[0]`: the sessions `w` opens.
pub(super) fn new_sessions<'a>(w: &'a Writes, now: &'a i64) -> [&'a (dyn ToSql + Sync); 6] {
    [
        &w.s_id,
        &w.s_user,
        &w.s_scope,
        &w.s_licensed,
        now,
        &w.s_expires,
    ]
}

/// The parameters of `WRITES[1]`: the refresh tokens `w` issues.
pub(super) fn new_refresh_tokens<'a>(w: &'a Writes, now: &'a i64) -> [&'a (dyn ToSql + Sync); 4] {
    [&w.t_refresh, &w.t_refresh_hash, &w.t_session, now]
}

/// The parameters of `WRITES[2]`: the access tokens `w` issues.
pub(super) fn new_access_tokens<'a>(w: &'a Writes, now: &'a i64) -> [&'a (dyn ToSql + Sync); 6] {
    [
        &w.t_access,
        &w.t_access_hash,
        &w.t_session,
        &w.t_scope,
        now,
        &w.t_access_expires,
    ]
}

/// Runs `jobs` in one transaction; their outcomes, in order, once committed: in one
/// flight when it can (one_flight.rs), else reading first. On a failure the
/// transaction is rolled back (or the connection dropped) before the connection
/// goes back to the pool.
pub(super) async fn commit_batch(
    pg: &PostgresStore,
    jobs: &[Job],
    durable: bool,
) -> R<Vec<Decided>> {
    let c = pg.batch_pool.get().await?;
    let begin = super::durable::begin(durable);
    let done = match super::one_flight::try_one_flight(pg, &c, jobs, begin).await {
        Ok(Some(decided)) => Ok(decided),
        Ok(None) => in_transaction(pg, &c, jobs, begin).await,
        Err(e) => Err(e),
    };
    if done.is_err() && c.batch_execute("ROLLBACK").await.is_err() {
        drop(deadpool_postgres::Object::take(c));
    }
    done
}

/// Two round trips and the commit's: `BEGIN` and every read in one flight, every
/// write and `COMMIT` in the next. Every statement is prepared before a flight is
/// sent, so that each flight's statements are sent, and run, in their written order
/// (the licence row locked before the seats are counted, `COMMIT` last). A write
/// that fails aborts the transaction and is seen here; `COMMIT` then rolls back.
async fn in_transaction(
    pg: &PostgresStore,
    c: &deadpool_postgres::Client,
    jobs: &[Job],
    begin: &str,
) -> R<Vec<Decided>> {
    let n = jobs.len();
    // The batch's row ids: those the instance holds if it holds enough, else read
    // with the batch's reads; and more ahead when the instance holds few.
    let held = pg.batch.take_ids(n);
    let to_read = (if held.is_some() { 0 } else { n } + pg.batch.ids_wanted_ahead()) as i64;
    let mut client_ids: Vec<i64> = jobs.iter().map(|j| j.client().id).collect();
    client_ids.sort_unstable();
    client_ids.dedup();
    let mut token_ids: Vec<i64> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Refresh { presented, .. } => presented.id,
            _ => None,
        })
        .collect();
    token_ids.sort_unstable();
    token_ids.dedup();
    let licensed = jobs
        .iter()
        .any(|j| matches!(j, Job::Open { licensed: true, .. }));
    // Read once for the whole batch, before the licence lock: a batch that waited
    // for the lock counts sessions that expired meanwhile as held, never the reverse.
    let now = pg.now();

    let mut st = Vec::with_capacity(READS.len() + WRITES.len());
    for sql in READS.iter().chain(WRITES.iter()) {
        st.push(c.prepare_cached(sql).await?);
    }
    let begin = async { c.batch_execute(begin).await };
    let users = async { c.query(&st[USERS], &[&client_ids]).await };
    let tokens = async {
        if token_ids.is_empty() {
            return Ok(Vec::new());
        }
        c.query(&st[TOKENS], &[&token_ids]).await
    };
    let ids = async {
        if to_read == 0 {
            return Ok(Vec::new());
        }
        c.query(&st[IDS], &[&to_read]).await
    };
    // Every licensed grant of every instance queues on this row lock, which holds
    // the pool's size and an upper bound of the seats held: every licensed session
    // inserted adds to it (a trigger, migration V11), and sessions only leave.
    let licence = async {
        if !licensed {
            return Ok(None);
        }
        c.query_one(&st[LICENCE], &[]).await.map(Some)
    };
    let key_st = match jobs.iter().any(Job::signed) {
        true => Some(c.prepare_cached(CURRENT_KEY).await?),
        false => None,
    };
    let key = async {
        match &key_st {
            Some(st) => Ok(c.query_opt(st, &[]).await?.map(|r| r.get::<_, i64>(0))),
            None => Ok::<_, tokio_postgres::Error>(None),
        }
    };
    // Every statement of a flight is sent at its first poll; the answers are taken
    // in the order sent, so that a failure is reported as itself, not as the
    // aborted transaction the statements after it found.
    let (began, users, tokens, ids, licence, key) =
        tokio::join!(begin, users, tokens, ids, licence, key);
    began?;
    let (users, tokens, ids, licence, key) = (users?, tokens?, ids?, licence?, key?);
    // The sequences handed these out whatever becomes of the transaction.
    let mut read = ids.iter().map(|r| [r.get(0), r.get(1), r.get(2)]);
    let ids: Vec<[i64; 3]> = match held {
        Some(held) => held,
        None => read.by_ref().take(n).collect(),
    };
    pg.batch.keep_ids(read);
    let mut seats = match licence {
        Some(row) => {
            let (total, bound): (i64, i64) = (row.get(0), row.get(1));
            let wanted = jobs
                .iter()
                .filter(|j| matches!(j, Job::Open { licensed: true, .. }))
                .count() as i64;
            if bound + wanted <= total {
                // Every licensed grant of the batch fits under the bound: no count.
                Some(Seats {
                    total,
                    held: bound,
                    first_expiry: None,
                })
            } else {
                // The count, under the lock, cannot go stale before the batch commits.
                let counted = c.query_one(&st[COUNT], &[&now]).await?;
                Some(Seats {
                    total,
                    held: counted.get(0),
                    first_expiry: counted.get(1),
                })
            }
        }
        None => None,
    };

    let current: HashMap<i64, ClientRecord> = users
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let names: Vec<String> = r.get(4);
            let licensed: Vec<i32> = r.get(5);
            let rec = ClientRecord {
                id,
                password_hash: r.get(1),
                api_user: r.get::<_, i32>(2) == 1,
                enabled: r.get::<_, i32>(3) == 1,
                scopes: names
                    .into_iter()
                    .zip(licensed.into_iter().map(|l| l == 1))
                    .collect(),
            };
            (id, rec)
        })
        .collect();
    let mut presented: HashMap<i64, Presented> = tokens
        .iter()
        .map(|r| {
            (
                r.get(0),
                Presented {
                    hash: r.get(1),
                    session_id: r.get(2),
                    used: r.get(3),
                    user_id: r.get(4),
                    scope: r.get(5),
                    expires_at: r.get(6),
                    revoked: r.get(7),
                    licensed: r.get::<_, i32>(8) == 1,
                },
            )
        })
        .collect();
    let mut session_ids = ids.iter().map(|[session, _, _]| *session);
    let mut pair_ids = ids.iter().map(|[_, access, refresh]| (*access, *refresh));

    let mut w = Writes {
        key,
        ..Writes::default()
    };
    let mut decided = Vec::with_capacity(jobs.len());
    for job in jobs {
        if current.get(&job.client().id) != Some(job.client()) {
            decided.push(match job {
                Job::Open { .. } => Decided::Open(None),
                Job::Refresh { .. } => Decided::Refresh(None),
            });
            continue;
        }
        let d = match job {
            Job::Open {
                client,
                scope,
                licensed,
                tokens,
                ..
            } => {
                if *licensed {
                    let s = seats
                        .as_mut()
                        .ok_or_else(|| StoreError::Invalid("licence not read".into()))?;
                    if s.held >= s.total {
                        let retry_after = if s.total > 0 {
                            s.first_expiry.map(|e| (e - now).max(1))
                        } else {
                            None
                        };
                        decided.push(Decided::Open(Some(OpenOutcome::NoSeat { retry_after })));
                        continue;
                    }
                    s.held += 1;
                }
                let session_id = session_ids
                    .next()
                    .ok_or_else(|| StoreError::Invalid("too few row ids for a batch".into()))?;
                Decided::Open(Some(w.open(
                    session_id,
                    &mut pair_ids,
                    client.id,
                    scope,
                    *licensed,
                    tokens,
                    now,
                )?))
            }
            Job::Refresh {
                client,
                presented: key,
                tokens,
                narrow,
                ..
            } => Decided::Refresh(Some(refresh(
                &mut w,
                &mut presented,
                &mut pair_ids,
                seats.as_mut(),
                client,
                key,
                tokens,
                narrow,
                now,
            )?)),
        };
        decided.push(d);
    }

    let extended: (Vec<i64>, Vec<i64>) = w.extended.iter().map(|(k, v)| (*k, *v)).unzip();
    let revoked: Vec<i64> = w.revoked.iter().copied().collect();
    let (opens, pairs, rotations) = (
        !w.s_id.is_empty(),
        !w.t_access.is_empty(),
        !w.used.is_empty(),
    );
    let sessions = async {
        if !opens {
            return Ok(0);
        }
        c.execute(&st[SESSIONS], &new_sessions(&w, &now)).await
    };
    let refresh = async {
        if !pairs {
            return Ok(0);
        }
        c.execute(&st[REFRESH_TOKENS], &new_refresh_tokens(&w, &now))
            .await
    };
    let access = async {
        if !pairs {
            return Ok(0);
        }
        c.execute(&st[ACCESS_TOKENS], &new_access_tokens(&w, &now))
            .await
    };
    let used = async {
        if !rotations {
            return Ok(0);
        }
        c.execute(&st[USED], &[&w.used, &now]).await
    };
    let extend = async {
        if !rotations {
            return Ok(0);
        }
        c.execute(&st[EXTEND], &[&extended.0, &extended.1]).await
    };
    let revoke = async {
        if revoked.is_empty() {
            return Ok(0);
        }
        c.execute(&st[REVOKE], &[&revoked, &now]).await
    };
    let commit = async { c.batch_execute("COMMIT").await };
    let written = tokio::join!(sessions, refresh, access, used, extend, revoke, commit);
    written.0?;
    written.1?;
    written.2?;
    written.3?;
    written.4?;
    written.5?;
    written.6?;
    Ok(decided)
}
