//! Group commit on PostgreSQL: the grants of one instance that wait at the same
//! moment share one transaction and one commit, as the SQLite writer's do.
//!
//! A dispatcher task takes every grant waiting (up to [`MAX_BATCH`]) and runs them
//! as one batch; up to [`CONCURRENT_BATCHES`] batches are in flight, and grants that
//! arrive meanwhile gather for the next. A batch reads what it needs in one pipelined
//! flight (the clients' rows FOR SHARE, the presented refresh tokens FOR UPDATE in id
//! order, the licence row FOR UPDATE and the held-seat count once, row ids from the
//! sequences), decides each grant in arrival order against that state, writes
//! everything in a second flight of set-based statements, and commits. A grant is
//! answered only after that commit.
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
use super::rows::flag;
use super::PostgresStore;
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::StoreError;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_postgres::types::ToSql;

type R<T> = Result<T, StoreError>;

/// At most this many grants share one commit.
pub(super) const MAX_BATCH: usize = 128;
/// Batches of one instance in flight at once: while one commits, the next reads.
pub(super) const CONCURRENT_BATCHES: usize = 2;

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
/// runtime of that grant, and again if that runtime has gone.
#[derive(Default)]
pub(super) struct Batcher {
    jobs: Mutex<Option<mpsc::UnboundedSender<(Instant, Job)>>>,
}

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
                tokio::spawn(dispatch(pg.clone(), rx));
                *jobs = Some(tx.clone());
                tx
            }
        };
        sender.send((Instant::now(), job)).map_err(|_| stopped())
    }
}

/// Awaits a job's answer.
pub(super) async fn answer<T>(rx: oneshot::Receiver<R<T>>) -> R<T> {
    rx.await.map_err(|_| stopped())?
}

async fn dispatch(pg: PostgresStore, mut rx: mpsc::UnboundedReceiver<(Instant, Job)>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
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
        let pg = pg.clone();
        tokio::spawn(async move {
            run_batch(&pg, jobs).await;
            drop(slot);
        });
    }
}

/// Repeated batch failures are logged at most this often.
static BATCH_FAULTS: crate::log_limit::Limited =
    crate::log_limit::Limited::new(std::time::Duration::from_secs(10));

async fn run_batch(pg: &PostgresStore, jobs: Vec<Job>) {
    let started = std::time::Instant::now();
    let committed = commit_batch(pg, &jobs).await;
    log::trace!("batch of {} grants in {:?}", jobs.len(), started.elapsed());
    match committed {
        Ok(decided) => {
            for (job, d) in jobs.into_iter().zip(decided) {
                job.answer(d);
            }
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
}

/// No connection to run on: running each grant alone would only wait again.
fn no_connection(e: &StoreError) -> bool {
    match e {
        StoreError::PostgresPool(_) => true,
        StoreError::Postgres(e) => e.is_closed(),
        _ => false,
    }
}

/// A presented refresh token's row, as the batch found it and then changed it.
struct Presented {
    hash: Vec<u8>,
    session_id: i64,
    used: bool,
    user_id: i64,
    scope: String,
    expires_at: i64,
    revoked: bool,
    licensed: bool,
}

/// What the batch writes.
#[derive(Default)]
struct Writes {
    // sessions
    s_id: Vec<i64>,
    s_user: Vec<i64>,
    s_scope: Vec<String>,
    s_licensed: Vec<i32>,
    s_expires: Vec<i64>,
    // token pairs
    t_session: Vec<i64>,
    t_scope: Vec<String>,
    t_access: Vec<i64>,
    t_access_hash: Vec<Vec<u8>>,
    t_access_expires: Vec<i64>,
    t_refresh: Vec<i64>,
    t_refresh_hash: Vec<Vec<u8>>,
    // refreshes
    used: Vec<i64>,
    extended: HashMap<i64, i64>,
    revoked: HashSet<i64>,
}

impl Writes {
    fn pair(&mut self, ids: &mut impl Iterator<Item = (i64, i64)>) -> R<TokenIds> {
        let (access, refresh) = ids
            .next()
            .ok_or_else(|| StoreError::Invalid("too few row ids for a batch".into()))?;
        self.t_access.push(access);
        self.t_refresh.push(refresh);
        Ok(TokenIds { access, refresh })
    }
}

/// Held seats as the batch's grants change them.
struct Seats {
    total: i64,
    held: i64,
    first_expiry: Option<i64>,
}

/// The batch's statements, in the order a batch sends them.
const READS: [&str; 6] = [
    r#"SELECT id, "PASSWORD", apiuser, enabled FROM users WHERE id = ANY($1) ORDER BY id FOR SHARE"#,
    r#"SELECT us.user_id, s.name, s.licensed FROM user_scopes us JOIN scopes s ON s.name = us.scope
       WHERE us.user_id = ANY($1) ORDER BY us.user_id, s.name COLLATE "C""#,
    "SELECT r.id, r.hash, r.session_id, r.used_at IS NOT NULL, s.user_id, s.scope, s.expires_at,
            s.revoked_at IS NOT NULL, s.licensed
     FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
     WHERE r.id = ANY($1) ORDER BY r.id FOR UPDATE",
    "SELECT nextval(pg_get_serial_sequence('sessions', 'id')),
            nextval(pg_get_serial_sequence('access_tokens', 'id')),
            nextval(pg_get_serial_sequence('refresh_tokens', 'id'))
     FROM generate_series(1, $1::bigint)",
    "SELECT seats FROM licence WHERE id = 1 FOR UPDATE",
    "SELECT count(*), min(expires_at) FROM sessions
     WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > $1",
];
const WRITES: [&str; 6] = [
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

/// Runs `jobs` in one transaction; their outcomes, in order, once committed. On a
/// failure the transaction is rolled back (or the connection dropped) before the
/// connection goes back to the pool.
async fn commit_batch(pg: &PostgresStore, jobs: &[Job]) -> R<Vec<Decided>> {
    let c = pg.pool.get().await?;
    let done = in_transaction(pg, &c, jobs).await;
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
) -> R<Vec<Decided>> {
    let n = jobs.len() as i64;
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
    let begin = async { c.batch_execute("BEGIN").await };
    let users = async { c.query(&st[0], &[&client_ids]).await };
    let scopes = async { c.query(&st[1], &[&client_ids]).await };
    let tokens = async {
        if token_ids.is_empty() {
            return Ok(Vec::new());
        }
        c.query(&st[2], &[&token_ids]).await
    };
    let ids = async { c.query(&st[3], &[&n]).await };
    // Every licensed grant of every instance queues on this row lock: the count,
    // a statement of its own after it, cannot go stale before the batch commits.
    let total = async {
        if !licensed {
            return Ok(None);
        }
        c.query_one(&st[4], &[]).await.map(Some)
    };
    let counted = async {
        if !licensed {
            return Ok(None);
        }
        c.query_one(&st[5], &[&now]).await.map(Some)
    };
    let ((), users, scopes, tokens, ids, total, counted) =
        tokio::try_join!(begin, users, scopes, tokens, ids, total, counted)?;
    let mut seats = match (total, counted) {
        (Some(total), Some(counted)) => Some(Seats {
            total: total.get(0),
            held: counted.get(0),
            first_expiry: counted.get(1),
        }),
        _ => None,
    };

    let mut current: HashMap<i64, ClientRecord> = users
        .iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let rec = ClientRecord {
                id,
                password_hash: r.get(1),
                api_user: r.get::<_, i32>(2) == 1,
                enabled: r.get::<_, i32>(3) == 1,
                scopes: Vec::new(),
            };
            (id, rec)
        })
        .collect();
    for r in &scopes {
        if let Some(rec) = current.get_mut(&r.get::<_, i64>(0)) {
            rec.scopes.push((r.get(1), r.get::<_, i32>(2) == 1));
        }
    }
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
    let mut session_ids = ids.iter().map(|r| r.get::<_, i64>(0));
    let mut pair_ids = ids.iter().map(|r| (r.get::<_, i64>(1), r.get::<_, i64>(2)));

    let mut w = Writes::default();
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
                w.s_id.push(session_id);
                w.s_user.push(client.id);
                w.s_scope.push(scope.clone());
                w.s_licensed.push(flag(*licensed));
                w.s_expires.push(now + tokens.refresh_ttl);
                let ids = w.pair(&mut pair_ids)?;
                push_hashes(&mut w, session_id, scope.clone(), tokens, now);
                Decided::Open(Some(OpenOutcome::Opened { session_id, ids }))
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
        let p: [&(dyn ToSql + Sync); 6] = [
            &w.s_id,
            &w.s_user,
            &w.s_scope,
            &w.s_licensed,
            &now,
            &w.s_expires,
        ];
        c.execute(&st[6], &p).await
    };
    let refresh = async {
        if !pairs {
            return Ok(0);
        }
        let p: [&(dyn ToSql + Sync); 4] = [&w.t_refresh, &w.t_refresh_hash, &w.t_session, &now];
        c.execute(&st[7], &p).await
    };
    let access = async {
        if !pairs {
            return Ok(0);
        }
        let p: [&(dyn ToSql + Sync); 6] = [
            &w.t_access,
            &w.t_access_hash,
            &w.t_session,
            &w.t_scope,
            &now,
            &w.t_access_expires,
        ];
        c.execute(&st[8], &p).await
    };
    let used = async {
        if !rotations {
            return Ok(0);
        }
        c.execute(&st[9], &[&w.used, &now]).await
    };
    let extend = async {
        if !rotations {
            return Ok(0);
        }
        c.execute(&st[10], &[&extended.0, &extended.1]).await
    };
    let revoke = async {
        if revoked.is_empty() {
            return Ok(0);
        }
        c.execute(&st[11], &[&revoked, &now]).await
    };
    let commit = async { c.batch_execute("COMMIT").await };
    tokio::try_join!(sessions, refresh, access, used, extend, revoke, commit)?;
    Ok(decided)
}

fn push_hashes(w: &mut Writes, session_id: i64, scope: String, t: &NewTokens, now: i64) {
    w.t_session.push(session_id);
    w.t_scope.push(scope);
    w.t_access_hash.push(t.access_hash.to_vec());
    w.t_refresh_hash.push(t.refresh_hash.to_vec());
    w.t_access_expires.push(now + t.access_ttl);
}

/// One refresh, decided against the batch's view of its token and session
/// (surface.rs `refresh_one` is the same rule alone).
#[allow(clippy::too_many_arguments)]
fn refresh(
    w: &mut Writes,
    presented: &mut HashMap<i64, Presented>,
    pair_ids: &mut impl Iterator<Item = (i64, i64)>,
    seats: Option<&mut Seats>,
    client: &ClientRecord,
    key: &TokenKey,
    tokens: &NewTokens,
    narrow: &Narrow,
    now: i64,
) -> R<RefreshOutcome> {
    let Some(token_id) = key.id else {
        return Ok(RefreshOutcome::Invalid);
    };
    let Some(p) = presented.get(&token_id) else {
        return Ok(RefreshOutcome::Invalid);
    };
    if !bool::from(p.hash.as_slice().ct_eq(&key.hash[..])) {
        return Ok(RefreshOutcome::Invalid);
    }
    let session_id = p.session_id;
    // The session as this batch left it (a token of the same session may come first).
    let session_revoked = p.revoked || w.revoked.contains(&session_id);
    // Another client's token is left alone: it proves nothing about its owner.
    if p.user_id != client.id || session_revoked || p.expires_at <= now {
        return Ok(RefreshOutcome::Invalid);
    }
    if p.used {
        w.revoked.insert(session_id);
        if let (true, Some(s)) = (p.licensed, seats) {
            s.held -= 1;
        }
        return Ok(RefreshOutcome::Reused);
    }
    let access_scope = match narrow(&p.scope) {
        Ok(s) => s,
        Err(why) => return Ok(RefreshOutcome::Refused(why)),
    };
    let expires = now + tokens.refresh_ttl;
    if let Some(p) = presented.get_mut(&token_id) {
        p.used = true;
        p.expires_at = expires;
    }
    w.used.push(token_id);
    w.extended.insert(session_id, expires);
    let ids = w.pair(pair_ids)?;
    push_hashes(w, session_id, access_scope.clone(), tokens, now);
    Ok(RefreshOutcome::Rotated {
        session_id,
        scope: access_scope,
        ids,
    })
}

#[cfg(test)]
mod tests {
    //! Against a real PostgreSQL (`TOLLGATE_TEST_POSTGRES_URL`, default the local
    //! server), on a throw-away database; skipped, and saying so, where there is none,
    //! unless `TOLLGATE_TEST_REQUIRE_POSTGRES=1`.
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::postgres::Options;
    use crate::store::Store;

    const START: i64 = 1_900_000_000;

    /// A fresh demo database and a store on it; dropped with [`Db`].
    struct Db {
        admin: String,
        name: String,
    }

    impl Drop for Db {
        fn drop(&mut self) {
            let (admin, name) = (self.admin.clone(), self.name.clone());
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let (c, conn) = admin
                        .parse::<tokio_postgres::Config>()
                        .ok()?
                        .connect(tokio_postgres::NoTls)
                        .await
                        .ok()?;
                    tokio::spawn(conn);
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()
                })
            })
            .join();
        }
    }

    async fn store(test: &str) -> Option<(Db, PostgresStore)> {
        let admin = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("tollgate_batch_{}_{}", std::process::id(), test);
        let created = async {
            let mut config: tokio_postgres::Config = admin.parse()?;
            config.connect_timeout(std::time::Duration::from_secs(3));
            let (c, conn) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            c.batch_execute(&format!("CREATE DATABASE {name}")).await
        };
        if let Err(e) = created.await {
            assert!(
                std::env::var("TOLLGATE_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required but: {e}"
            );
            eprintln!("SKIPPED {test}: PostgreSQL is unreachable ({e})");
            return None;
        }
        let db = Db {
            name: name.clone(),
            admin: admin.clone(),
        };
        let (base, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        let clock = Arc::new(ManualClock::new(START));
        PostgresStore::init(&url, clock.clone(), Some(1_000))
            .await
            .unwrap();
        let pg = PostgresStore::open(&url, clock, &Options::server(4))
            .await
            .unwrap();
        Some((db, pg))
    }

    fn tokens() -> NewTokens {
        NewTokens {
            access_hash: crate::crypto::new_token().hash,
            refresh_hash: crate::crypto::new_token().hash,
            access_ttl: 300,
            refresh_ttl: 1200,
        }
    }

    fn open(
        client: &ClientRecord,
        scope: &str,
        licensed: bool,
    ) -> (Job, oneshot::Receiver<R<Option<OpenOutcome>>>) {
        let (reply, rx) = oneshot::channel();
        let job = Job::Open {
            client: client.clone(),
            scope: scope.into(),
            licensed,
            tokens: tokens(),
            reply,
        };
        (job, rx)
    }

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
        // A write that fails: any session of scope "boom".
        pg.pool
            .get()
            .await
            .unwrap()
            .batch_execute(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                     IF NEW.scope = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW;
                 END $$;
                 CREATE TRIGGER boom BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION boom();",
            )
            .await
            .unwrap();
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
                run_batch(&pg, std::mem::take(&mut jobs)).await;
                assert!(answer(bad).await.is_err());
            }
        }
        run_batch(&pg, jobs).await;
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
        run_batch(&pg, jobs).await;
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
}
