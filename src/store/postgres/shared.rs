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
//! (other requests' reads would run inside it), and nothing that
//! may run long (every read queued behind it would wait).
//!
//! The connection is made on the worker's runtime, which then drives its socket,
//! and made again (within the pool's wait) once it is closed: by PostgreSQL going
//! away, or by the runtime that drove it ending. A thread that finds every shared
//! connection held by other threads reads over a pooled connection of its own.
use crate::store::StoreError;
use deadpool_postgres::{Object, Pool, PoolError, TimeoutType, Timeouts};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

/// A thread's shared connection, when it has one.
type Slot = RwLock<Option<Object>>;

pub(super) struct Shared {
    /// At most one connection per thread that reads, as many as the HTTP workers.
    pool: Pool,
    /// How long making a connection may take.
    wait: Duration,
    slots: Mutex<Vec<(ThreadId, Arc<Slot>)>>,
}

/// A connection to read over: the thread's shared one, or one from the pool.
pub(super) enum Reader {
    Shared(OwnedRwLockReadGuard<Option<Object>, Object>),
    Own(Box<Object>),
}

impl Deref for Reader {
    type Target = Object;

    fn deref(&self) -> &Object {
        match self {
            Reader::Shared(g) => g,
            Reader::Own(o) => o,
        }
    }
}

impl Shared {
    pub(super) fn new(pool: Pool, wait: Duration) -> Self {
        Self {
            pool,
            wait,
            slots: Mutex::default(),
        }
    }

    /// The calling thread's shared connection, made if it has none (or a closed
    /// one); None when every shared connection is another thread's.
    pub(super) async fn reader(&self) -> Result<Option<Reader>, StoreError> {
        let slot = self.slot();
        let held = Arc::clone(&slot).read_owned().await;
        if let Ok(g) =
            OwnedRwLockReadGuard::try_map(held, |o| o.as_ref().filter(|c| !c.is_closed()))
        {
            return Ok(Some(Reader::Shared(g)));
        }
        let mut w = Arc::clone(&slot).write_owned().await;
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
            .map(Reader::Shared))
    }

    /// Gives the pool back every closed shared connection not in use; whether any was.
    fn release_closed(&self) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut released = false;
        for (_, slot) in slots.iter() {
            if let Ok(mut held) = slot.try_write() {
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
        let s = Arc::new(Slot::default());
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
    use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Shared connections, `size` at most, on the test server; None (said) without one.
    fn shared(test: &str, size: usize) -> Option<Arc<Shared>> {
        let url = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.connect_timeout(Duration::from_secs(3));
        let reachable = runtime().block_on(config.connect(tokio_postgres::NoTls));
        if let Err(e) = reachable {
            assert!(
                std::env::var("TOLLGATE_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PostgreSQL is required but: {e}"
            );
            eprintln!("SKIPPED {test}: PostgreSQL is unreachable ({e})");
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
        Some(Arc::new(Shared::new(pool, Duration::from_secs(3))))
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
        let Some(s) = shared("a_closed_shared_connection_is_made_again", 2) else {
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
}
