//! Running tollgate for real: metrics, TLS, exposure checks, the access log
//! and graceful shutdown. The submodules share the helpers below, which start the
//! built binary the way `process.rs` does.
mod access_log;
mod exposure;
mod metrics;
#[cfg(target_os = "linux")]
mod scheduling;
mod shutdown;
mod tls;

use crate::helpers::{binary as tollgate, free_port};
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Cheap hashing: these tests check behaviour, not PBKDF2's cost.
const ITERATIONS: &str = "1000";
const LIMIT: Duration = Duration::from_secs(20);

/// `tollgate init FILE --demo` with `iterations` for the demo secrets' hashes.
fn init_demo(cwd: &Path, file: &Path, iterations: &str) {
    let out = tollgate(cwd)
        .env("TOLLGATE_PBKDF2_ITERATIONS", iterations)
        .arg("init")
        .arg(file)
        .arg("--demo")
        .output()
        .expect("run tollgate init");
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running (or finished) `tollgate` whose stderr goes to a file; killed on drop.
struct Proc {
    child: Option<Child>,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let logs = tempfile::tempdir().unwrap();
        let stderr_path = logs.path().join("stderr");
        cmd.stdout(Stdio::null())
            .stderr(File::create(&stderr_path).unwrap());
        Proc {
            child: Some(cmd.spawn().expect("spawn tollgate")),
            stderr_path,
            _logs: logs,
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already reaped")
    }

    fn pid(&mut self) -> u32 {
        self.child().id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Polls for the exit for at most `limit`.
    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits, bounded, until the server on 127.0.0.1:`port` has answered a connection.
    ///
    /// The port accepts TCP before the server runs (and before it handles SIGTERM), so a
    /// probe request must come back — a plain-HTTP probe of a TLS port gets a closed
    /// connection, which is an answer too.
    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + LIMIT;
        loop {
            // Only once our child says it has bound the port: another process that
            // took the port meanwhile (another test run) is not mistaken for it.
            let ours = self.stderr().contains("tollgate serving");
            if let (true, Ok(mut s)) = (ours, TcpStream::connect(("127.0.0.1", port))) {
                s.set_read_timeout(Some(LIMIT)).unwrap();
                let probe = b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
                if s.write_all(probe).is_ok() {
                    let _ = s.read_to_end(&mut Vec::new());
                    return;
                }
            }
            if let Some(status) = self.child().try_wait().unwrap() {
                panic!("tollgate exited ({status}); stderr:\n{}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "tollgate did not listen on {port}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM through kill(1): no `unsafe` (and no libc) in the tests.
    fn sigterm(&mut self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// SIGTERM, then the exit status within the limit.
    fn stop(&mut self) -> ExitStatus {
        self.sigterm();
        self.wait_for_exit(LIMIT).unwrap_or_else(|| {
            panic!(
                "tollgate did not exit after SIGTERM; stderr:\n{}",
                self.stderr()
            )
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `tollgate --db DB serve --listen HOST:PORT EXTRA…`, not yet waited for.
fn serve_cmd(cwd: &Path, db: &Path, host: &str, port: u16, extra: &[&str]) -> Command {
    let mut cmd = tollgate(cwd);
    cmd.arg("--db")
        .arg(db)
        .arg("serve")
        .arg("--listen")
        .arg(format!("{host}:{port}"))
        .arg("--workers")
        .arg("2")
        .args(extra);
    cmd
}

/// A demo database in a fresh directory and a server on it at 127.0.0.1, listening.
fn serve_demo(extra: &[&str]) -> (tempfile::TempDir, PathBuf, u16, Proc) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db, ITERATIONS);
    let port = free_port();
    let mut p = Proc::spawn(serve_cmd(dir.path(), &db, "127.0.0.1", port, extra));
    p.wait_listening(port);
    (dir, db, port, p)
}
