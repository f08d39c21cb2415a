//! Running tollgate for real: metrics, TLS, exposure checks, the access log and
//! graceful shutdown, on the built binary started by the helpers' child harness.
mod access_log;
mod exposure;
pub mod metrics;
#[cfg(target_os = "linux")]
mod scheduling;
mod shutdown;
mod tls;

use crate::helpers::{self, free_port, init_demo, Proc};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// `tollgate --db DB serve --listen HOST:PORT --workers 2 EXTRA…`, not yet started.
fn serve_cmd(cwd: &Path, db: &Path, host: &str, port: u16, extra: &[&str]) -> Command {
    let mut cmd = helpers::serve_cmd(cwd, db, host, port, &["--workers", "2"]);
    cmd.args(extra);
    cmd
}

/// A demo database in a fresh directory and a server on it at 127.0.0.1, listening.
fn serve_demo(extra: &[&str]) -> (tempfile::TempDir, PathBuf, u16, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    let port = free_port();
    let mut p = Proc::spawn(serve_cmd(dir.path(), &db, "127.0.0.1", port, extra));
    p.wait_listening(port, LIMIT);
    (dir, db, port, p)
}
