//! What the writer's tests share: a writer on a fresh database, and ways to hold it
//! and to read what it wrote.
use super::{Writer, WriterState};
use crate::store::sqlite::audit::AuditQueue;
use crate::store::AuditRecord;
use crate::store::StoreError;
use rusqlite::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

/// A writer on a fresh database, and a count of its commits.
pub(super) fn writer() -> (Writer, Arc<AtomicUsize>) {
    let (w, commits, _) = audited_writer(false);
    (w, commits)
}

/// A writer on a fresh database (with an audit table or not), a count of its
/// commits, and its audit queue.
pub(super) fn audited_writer(audit_table: bool) -> (Writer, Arc<AtomicUsize>, Arc<AuditQueue>) {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    if audit_table {
        c.execute_batch(
            "CREATE TABLE audit (id INTEGER PRIMARY KEY, at INTEGER NOT NULL,
                 event TEXT NOT NULL, outcome TEXT NOT NULL, client_id TEXT, remote TEXT,
                 detail TEXT NOT NULL)",
        )
        .unwrap();
    }
    let commits = Arc::new(AtomicUsize::new(0));
    let n = commits.clone();
    c.commit_hook(Some(move || {
        n.fetch_add(1, Ordering::SeqCst);
        false
    }))
    .unwrap();
    let queue = Arc::new(AuditQueue::default());
    let w = Writer::start(c, None, queue.clone(), None).unwrap();
    (w, commits, queue)
}

pub(super) fn record(at: i64) -> AuditRecord {
    AuditRecord {
        at,
        event: "grant.client_credentials".into(),
        outcome: "ok".into(),
        client_id: None,
        remote: None,
        detail: String::new(),
    }
}

/// Holds the writer thread until the returned sender is used, so that the jobs
/// sent meanwhile are gathered into one group.
pub(super) fn hold(w: &Writer) -> mpsc::Sender<()> {
    let (go, wait) = mpsc::channel::<()>();
    let w = w.clone();
    std::thread::spawn(move || {
        w.run_alone(move |_, _| {
            let _ = wait.recv();
            Ok(())
        })
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    go
}

pub(super) fn insert(
    x: i64,
) -> impl Fn(&mut Connection, &mut WriterState) -> Result<(), StoreError> + Copy {
    move |c, _| {
        c.execute("INSERT INTO t VALUES (?1)", [x])?;
        Ok(())
    }
}

pub(super) fn rows(w: &Writer) -> Vec<i64> {
    w.run_alone(|c, _| {
        let mut st = c.prepare("SELECT x FROM t ORDER BY x")?;
        let v = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(v)
    })
    .unwrap()
}
