//! One thread of the process drives the sockets of every PostgreSQL connection and
//! runs the grant batches.
//!
//! An HTTP worker that is busy answering requests polls its sockets only between
//! them: a batch whose reply has arrived would wait for the worker's turn, twice
//! per batch, while every grant of the batch waits with it. On a thread of their
//! own, the connections and the batches go on as soon as PostgreSQL answers; the
//! workers only hand queries over and take results back.
//!
//! A connection is opened on this thread too, since a socket stays with the
//! runtime that opened it. When the thread cannot be started, or is gone, both
//! fall back to the caller's runtime.
use deadpool_postgres::Connect;
use futures_util::future::BoxFuture;
use std::sync::OnceLock;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

/// The driving thread's runtime, started on first use.
pub(super) fn handle() -> Option<Handle> {
    static DRIVER: OnceLock<Option<Handle>> = OnceLock::new();
    DRIVER
        .get_or_init(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| log::warn!("PostgreSQL driver runtime: {e}"))
                .ok()?;
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .name("tollgate-pg".into())
                .spawn(move || rt.block_on(std::future::pending::<()>()))
                .map_err(|e| log::warn!("PostgreSQL driver thread: {e}"))
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// Runs `task` on the driving thread, or on the caller's runtime without one.
pub(super) fn spawn<F>(task: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    match handle() {
        Some(h) => drop(h.spawn(task)),
        None => drop(tokio::spawn(task)),
    }
}

/// Opens the pool's connections on the driving thread.
pub(super) struct OnDriver;

impl Connect for OnDriver {
    fn connect(
        &self,
        config: &Config,
    ) -> BoxFuture<'_, Result<(Client, JoinHandle<()>), tokio_postgres::Error>> {
        let config = config.clone();
        Box::pin(async move {
            let Some(h) = handle() else {
                return connect_here(config).await;
            };
            let retry = config.clone();
            match h.spawn(connect_here(config)).await {
                Ok(connected) => connected,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // The driving runtime is gone (the process is ending).
                Err(_) => connect_here(retry).await,
            }
        })
    }
}

/// Connects, and drives the connection on the current runtime.
async fn connect_here(config: Config) -> Result<(Client, JoinHandle<()>), tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    let driving = tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::debug!("PostgreSQL connection closed: {e}");
        }
    });
    Ok((client, driving))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_work_runs_on_the_driving_thread() {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            spawn(async move {
                let _ = tx.send(std::thread::current().name().map(str::to_owned));
            })
        });
        let name = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(name.as_deref(), Some("tollgate-pg"));
    }

    /// A connection made for a caller whose runtime then ends goes on working for
    /// the next caller: its socket belongs to the driving thread. (Made on the
    /// caller's runtime, it would be closed with it.) Needs PostgreSQL
    /// (`TOLLGATE_TEST_POSTGRES_URL`, default the local server); skipped, and saying
    /// so, where there is none, unless `TOLLGATE_TEST_REQUIRE_POSTGRES=1`.
    #[test]
    fn a_connection_outlives_the_runtime_that_asked_for_it() {
        let mut config: Config = crate::store::postgres::testing::url().parse().unwrap();
        config.connect_timeout(std::time::Duration::from_secs(3));
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let connected = first.block_on(OnDriver.connect(&config));
        drop(first);
        let (client, _driving) = match connected {
            Ok(c) => c,
            Err(e) => {
                crate::store::postgres::testing::skip(
                    "a_connection_outlives_the_runtime_that_asked_for_it",
                    &e,
                );
                return;
            }
        };
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let row = second
            .block_on(client.query_one("SELECT 41 + 1", &[]))
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
    }
}
