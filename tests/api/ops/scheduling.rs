//! `serve --scheduler` (src/sched.rs): every thread of the server runs under
//! SCHED_BATCH by default, and keeps the policy it was started with under
//! `--scheduler normal`.
use super::{serve_demo, LIMIT};
use std::path::Path;

const SCHED_BATCH: u32 = 3;

/// The scheduling policy in a thread's `stat` file (field 41), if it still exists.
fn policy(stat: &Path) -> Option<u32> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(41 - 3)?.parse().ok()
}

/// The policy of each of the process's threads.
fn policies(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| policy(&task.unwrap().path().join("stat")))
        .collect()
}

#[test]
fn every_server_thread_runs_batch_by_default() {
    let (_dir, _db, _port, mut server) = serve_demo(&[]);
    let found = policies(server.pid());
    // The main thread, the HTTP workers, the writer, the readers and more.
    assert!(found.len() >= 4, "threads: {found:?}");
    assert!(found.iter().all(|&p| p == SCHED_BATCH), "{found:?}");
    server.stop(LIMIT);
}

#[test]
fn scheduler_normal_keeps_the_policy_it_was_started_with() {
    let own = policy(Path::new("/proc/thread-self/stat")).unwrap();
    assert_ne!(own, SCHED_BATCH, "run the tests under the default policy");
    let (_dir, _db, _port, mut server) = serve_demo(&["--scheduler", "normal"]);
    let found = policies(server.pid());
    assert!(found.len() >= 4, "threads: {found:?}");
    assert!(found.iter().all(|&p| p == own), "{found:?}, expected {own}");
    server.stop(LIMIT);
}
