//! What the batch tests share: a throw-away demo database on a real PostgreSQL
//! (`TOLLGATE_TEST_POSTGRES_URL`, default the local server), skipped, and saying so,
//! where there is none, unless `TOLLGATE_TEST_REQUIRE_POSTGRES=1`; grants to batch.
use super::*;
use crate::clock::ManualClock;
use crate::store::postgres::Options;
use std::sync::Arc;

pub(super) const START: i64 = 1_900_000_000;

/// A fresh demo database and a store on it; dropped with [`Db`].
pub(super) struct Db {
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

impl Db {
    /// The database's connection string for `user` instead of the admin's.
    pub(super) fn url_as(&self, user: &str) -> String {
        let admin: tokio_postgres::Config = self.admin.parse().unwrap();
        let host = match &admin.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        let port = admin.get_ports().first().copied().unwrap_or(5432);
        format!("host={host} port={port} user={user} dbname={}", self.name)
    }

    /// Runs `sql` on the admin's database (roles are the cluster's).
    pub(super) async fn admin_exec(&self, sql: &str) {
        let (c, conn) = self
            .admin
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(sql).await.unwrap();
    }
}

pub(super) async fn store(test: &str) -> Option<(Db, PostgresStore)> {
    let admin = crate::store::postgres::testing::url();
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
        crate::store::postgres::testing::skip(test, &e);
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
    let pg = PostgresStore::open(&url, clock, &Options::server(1))
        .await
        .unwrap();
    Some((db, pg))
}

pub(super) fn tokens() -> NewTokens {
    NewTokens {
        access_hash: crate::crypto::new_token().hash,
        refresh_hash: crate::crypto::new_token().hash,
        access_ttl: 300,
        refresh_ttl: 1200,
        signed: false,
    }
}

/// Runs one batch that waits for the disk, as a lone batch of the dispatcher does.
pub(super) async fn run(pg: &PostgresStore, jobs: Vec<Job>) {
    let mut unflushed = Vec::new();
    run_batch(pg, jobs, true, &mut unflushed).await;
    assert!(unflushed.is_empty());
}

/// A write that fails: any session of scope "boom".
pub(super) async fn boom_on_scope_boom(pg: &PostgresStore) {
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
}

pub(super) fn open(
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
