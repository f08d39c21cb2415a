//! One connection per HTTP worker that the worker's one-statement reads share.
//!
//! A Bearer request reads one row, outside any transaction. Taken from the pool,
//! each such read holds a connection of its own and wakes a PostgreSQL backend of
//! its own, and on a busy machine several backends per worker queue for the CPU:
//! a backend left runnable but unscheduled holds its request for as long. Shared,
//! the worker's reads are pipelined on one connection (tokio-postgres sends each
//! query as it is issued and matches the answers in order), so that one backend
//! per worker answers them back to back.
//!
//! Only statements that stand alone go over it: the Bearer token check, the GET
//! of one product, introspection's lookups. Nothing that opens a transaction
//! (other requests' reads would run inside it), and nothing that may run long
//! (every read queued behind it would wait).
//!
//! The connection is made on the worker's runtime, which then drives its socket,
//! and made again (within the pool's wait) once it is closed: by PostgreSQL going
//! away, or by the runtime that drove it ending. A thread that finds every shared
//! connection held by other threads reads over a pooled connection of its own.
//!
//! What a slow database may cost is bounded as on the pool: at most [`IN_FLIGHT`]
//! reads wait on one shared connection (more go to the pool, which bounds its
//! waiters), and a read is answered within as long as a pooled one could take
//! (its wait for a connection and its statement's time limit), or refused as
//! unavailable.
use crate::store::StoreError;
use deadpool_postgres::{Object, Pool, PoolError, TimeoutType, Timeouts};
use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;
use tokio::sync::{OwnedRwLockReadGuard, OwnedSemaphorePermit, RwLock, Semaphore};

/// Reads in flight on one shared connection at most.
pub(super) const IN_FLIGHT: usize = 32;

/// A thread's shared connection, when it has one, and the reads it may carry.
struct Slot {
    conn: Arc<RwLock<Option<Object>>>,
    in_flight: Arc<Semaphore>,
}

pub(super) struct Shared {
    /// At most one connection per thread that reads, as many as the HTTP workers.
    pool: Pool,
    /// How long making a connection may take.
    wait: Duration,
    /// How long a read may take in all.
    bound: Duration,
    slots: Mutex<Vec<(ThreadId, Arc<Slot>)>>,
}

/// A connection to read over: the thread's shared one, or one from the pool.
pub(super) enum Reader {
    Shared {
        conn: OwnedRwLockReadGuard<Option<Object>, Object>,
        /// Its place among the connection's reads in flight.
        _in_flight: OwnedSemaphorePermit,
    },
    Own(Box<Object>),
}

impl Deref for Reader {
    type Target = Object;

    fn deref(&self) -> &Object {
        match self {
            Reader::Shared { conn, .. } => conn,
            Reader::Own(o) => o,
        }
    }
}

impl Shared {
    pub(super) fn new(pool: Pool, wait: Duration, bound: Duration) -> Self {
        Self {
            pool,
            wait,
            bound,
            slots: Mutex::default(),
        }
    }

    /// `read` (taking a [`Reader`] and reading over it) if it is done within the
    /// bound; else the database is unavailable, as a pooled read that waited as
    /// long would find it. The bound covers the taking too: while a connection is
    /// being made again, the thread's other reads wait for it.
    pub(super) async fn within<T>(
        &self,
        read: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.bound, read).await {
            Ok(answered) => answered,
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer a read within {} ms",
                self.bound.as_millis()
            ))),
        }
    }

    /// The calling thread's shared connection, made if it has none (or a closed
    /// one); None when every shared connection is another thread's, or the
    /// thread's carries [`IN_FLIGHT`] reads already.
    pub(super) async fn reader(&self) -> Result<Option<Reader>, StoreError> {
        let slot = self.slot();
        let Ok(permit) = Arc::clone(&slot.in_flight).try_acquire_owned() else {
            return Ok(None);
        };
        let held = Arc::clone(&slot.conn).read_owned().await;
        if let Ok(g) =
            OwnedRwLockReadGuard::try_map(held, |o| o.as_ref().filter(|c| !c.is_closed()))
        {
            return Ok(Some(Reader::Shared {
                conn: g,
                _in_flight: permit,
            }));
        }
        let mut w = Arc::clone(&slot.conn).write_owned().await;
        if w.as_ref().is_none_or(|c| c.is_closed()) {
            // A closed connection goes back to the pool, which discards it.
            *w = None;
            let timeouts = Timeouts {
                wait: Some(Duration::ZERO),
                create: Some(self.wait),
                recycle: Some(self.wait),
            };
            let got = match self.pool.timeout_get(&timeouts).await {
                // Held by threads that may be gone: their closed connections are freed.
                Err(PoolError::Timeout(TimeoutType::Wait)) if self.release_closed() => {
                    self.pool.timeout_get(&timeouts).await
                }
                got => got,
            };
            match got {
                Ok(c) => *w = Some(c),
                Err(PoolError::Timeout(TimeoutType::Wait)) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        let r = w.downgrade();
        Ok(OwnedRwLockReadGuard::try_map(r, Option::as_ref)
            .ok()
            .map(|conn| Reader::Shared {
                conn,
                _in_flight: permit,
            }))
    }

    /// Gives the pool back every closed shared connection not in use; whether any was.
    fn release_closed(&self) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut released = false;
        for (_, slot) in slots.iter() {
            if let Ok(mut held) = slot.conn.try_write() {
                if held.as_ref().is_some_and(|c| c.is_closed()) {
                    *held = None;
                    released = true;
                }
            }
        }
        released
    }

    fn slot(&self) -> Arc<Slot> {
        let me = std::thread::current().id();
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, s)) = slots.iter().find(|(t, _)| *t == me) {
            return Arc::clone(s);
        }
        let s = Arc::new(Slot {
            conn: Arc::default(),
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
        });
        slots.push((me, Arc::clone(&s)));
        s
    }
}

/// Against a real PostgreSQL (`TOLLGATE_TEST_POSTGRES_URL`, default the local
/// server); skipped, and saying so, where there is none, unless
/// `TOLLGATE_TEST_REQUIRE_POSTGRES=1`.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing;
    use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};

    const LONG: Duration = Duration::from_secs(10);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Shared connections, `size` at most, on the test server; None (said) without one.
    fn shared(test: &str, size: usize, bound: Duration) -> Option<Arc<Shared>> {
        let mut config: tokio_postgres::Config = testing::url().parse().unwrap();
        config.connect_timeout(Duration::from_secs(3));
        let reachable = runtime().block_on(config.connect(tokio_postgres::NoTls));
        if let Err(e) = reachable {
            testing::skip(test, &e);
            return None;
        }
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .build()
            .unwrap();
        Some(Arc::new(Shared::new(pool, Duration::from_secs(3), bound)))
    }

    async fn backend(s: &Shared) -> Option<i32> {
        let r = s.reader().await.unwrap()?;
        Some(
            r.query_one("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .get(0),
        )
    }

    /// Reads in flight together on one thread are answered by one backend.
    #[test]
    fn one_threads_reads_in_flight_together_share_one_connection() {
        let Some(s) = shared(
            "one_threads_reads_in_flight_together_share_one_connection",
            4,
            LONG,
        ) else {
            return;
        };
        let pids = runtime().block_on(async {
            let reads = (0..6).map(|_| async {
                let r = s.reader().await.unwrap().unwrap();
                // Each read holds its connection until the slowest one is answered.
                let row = r
                    .query_one("SELECT pg_backend_pid(), pg_sleep(0.05)::text", &[])
                    .await
                    .unwrap();
                row.get::<_, i32>(0)
            });
            futures_util::future::join_all(reads).await
        });
        assert!(pids.iter().all(|p| *p == pids[0]), "{pids:?}");
    }

    /// A shared connection whose backend is gone is made again: at most the read
    /// in flight fails, and the next is answered by a new backend.
    #[test]
    fn a_closed_shared_connection_is_made_again() {
        let Some(s) = shared("a_closed_shared_connection_is_made_again", 2, LONG) else {
            return;
        };
        runtime().block_on(async {
            let first = backend(&s).await.unwrap();
            {
                let killer = s.pool.get().await.unwrap();
                killer
                    .execute("SELECT pg_terminate_backend($1)", &[&first])
                    .await
                    .unwrap();
            }
            let mut answered = None;
            for _ in 0..50 {
                let r = s.reader().await.unwrap().unwrap();
                if let Ok(row) = r.query_one("SELECT pg_backend_pid()", &[]).await {
                    answered = Some(row.get::<_, i32>(0));
                    break;
                }
                drop(r);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let second = answered.expect("no read was answered after the backend ended");
            assert_ne!(first, second);
        });
    }

    /// With every shared connection held by another thread, a thread reads over the
    /// pool; once that thread (and the runtime that drove its connection) is gone,
    /// its closed connection is taken back and shared again.
    #[test]
    fn a_thread_without_a_shared_connection_falls_back_until_one_is_freed() {
        let Some(s) = shared(
            "a_thread_without_a_shared_connection_falls_back_until_one_is_freed",
            1,
            LONG,
        ) else {
            return;
        };
        let (held, go_on) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let other = Arc::clone(&s);
        let holder = std::thread::spawn(move || {
            let rt = runtime();
            held.0.send(rt.block_on(backend(&other))).unwrap();
            let _ = go_on.1.recv();
        });
        assert!(held.1.recv().unwrap().is_some());
        let rt = runtime();
        assert_eq!(rt.block_on(backend(&s)), None);
        go_on.0.send(()).unwrap();
        holder.join().unwrap();
        assert!(rt.block_on(backend(&s)).is_some());
    }

    /// A thread's shared connection carries IN_FLIGHT reads at most; the next one
    /// reads over the pool.
    #[test]
    fn reads_beyond_those_in_flight_go_to_the_pool() {
        let Some(s) = shared("reads_beyond_those_in_flight_go_to_the_pool", 2, LONG) else {
            return;
        };
        runtime().block_on(async {
            let mut held = Vec::new();
            for _ in 0..IN_FLIGHT {
                held.push(s.reader().await.unwrap().expect("a shared reader"));
            }
            assert!(s.reader().await.unwrap().is_none());
            held.pop();
            assert!(s.reader().await.unwrap().is_some());
        });
    }

    /// A read queued behind a slow one on the shared connection is refused as
    /// unavailable once the bound has passed, not answered whenever the slow one ends.
    #[test]
    fn a_read_queued_behind_a_slow_one_is_refused_at_the_bound() {
        let Some(s) = shared(
            "a_read_queued_behind_a_slow_one_is_refused_at_the_bound",
            2,
            Duration::from_millis(300),
        ) else {
            return;
        };
        runtime().block_on(async {
            let slow = async {
                let r = s.reader().await.unwrap().unwrap();
                let _ = r.query_one("SELECT pg_sleep(2)::text", &[]).await;
            };
            let queued = async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let started = std::time::Instant::now();
                let r = s.reader().await.unwrap().unwrap();
                let answer = s
                    .within(async { Ok(r.query_one("SELECT 1", &[]).await?.get::<_, i32>(0)) })
                    .await;
                (answer, started.elapsed())
            };
            let ((), (answer, took)) = tokio::join!(slow, queued);
            assert!(
                matches!(answer, Err(StoreError::Unavailable(_))),
                "{answer:?}"
            );
            assert!(took < Duration::from_millis(1500), "{took:?}");
        });
    }
}
