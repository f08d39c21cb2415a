//! The built `tollgate` as a child process: the command, a guard that kills it on
//! drop, waits bounded by a limit, and the demo database made by `tollgate init`.
use super::TEST_ITERATIONS;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long a command may take to end, or a server to start listening.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// The built `tollgate`, with no `TOLLGATE_*` variable inherited from the test's own
/// environment, cheap hashing, info logs, no stdin, and the given working directory.
pub fn binary(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TOLLGATE_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("TOLLGATE_PBKDF2_ITERATIONS", TEST_ITERATIONS.to_string())
        .env("RUST_LOG", "info")
        .current_dir(cwd)
        .stdin(Stdio::null());
    cmd
}

/// `tollgate --db DB serve --listen HOST:PORT EXTRA…`, not yet started.
pub fn serve_cmd(cwd: &Path, db: &Path, host: &str, port: u16, extra: &[&str]) -> Command {
    let mut cmd = binary(cwd);
    cmd.arg("--db")
        .arg(db)
        .arg("serve")
        .arg("--listen")
        .arg(format!("{host}:{port}"))
        .args(extra);
    cmd
}

/// Runs a command that must end by itself, within the startup limit.
pub fn run_to_end(cmd: Command) -> Output {
    let mut p = Proc::spawn(cmd);
    let status = p.wait_for_exit(STARTUP_LIMIT);
    let stderr = std::fs::read(&p.stderr_path).unwrap();
    let status = status.unwrap_or_else(|| {
        panic!(
            "tollgate did not exit within {STARTUP_LIMIT:?}; stderr:\n{}",
            String::from_utf8_lossy(&stderr)
        )
    });
    Output {
        status,
        stdout: std::fs::read(&p.stdout_path).unwrap(),
        stderr,
    }
}

/// `tollgate init FILE --demo`, which must succeed.
pub fn init_demo(cwd: &Path, file: &Path) {
    init_demo_by(binary(cwd), file);
}

/// `CMD init FILE --demo` for a `binary` with settings of the caller's, which must succeed.
pub fn init_demo_by(mut cmd: Command, file: &Path) {
    cmd.arg("init").arg(file).arg("--demo");
    let out = run_to_end(cmd);
    assert!(
        out.status.success(),
        "init {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running (or finished) `tollgate` whose stdout and stderr go to files. It is
/// killed (SIGKILL on Unix) and reaped when dropped, so no process outlives its
/// test, even a failing one.
pub struct Proc {
    child: Option<Child>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    _logs: TempDir,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let logs = tempfile::tempdir().unwrap();
        let stdout_path = logs.path().join("stdout");
        let stderr_path = logs.path().join("stderr");
        cmd.stdout(File::create(&stdout_path).unwrap())
            .stderr(File::create(&stderr_path).unwrap());
        Proc {
            child: Some(cmd.spawn().expect("spawn tollgate")),
            stdout_path,
            stderr_path,
            _logs: logs,
        }
    }

    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already reaped")
    }

    pub fn pid(&mut self) -> u32 {
        self.child().id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// What the process printed for a person, such as the start-up banner.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Polls for the exit for at most `limit`.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
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

    /// Waits, at most `limit`, until the server on 127.0.0.1:`port` has answered a connection.
    ///
    /// The port accepts TCP before the server runs (and before it handles SIGTERM), so a
    /// probe request must come back — a plain-HTTP probe of a TLS port gets a closed
    /// connection, which is an answer too.
    pub fn wait_listening(&mut self, port: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            // Only once our child says it has bound the port: another process that
            // took the port meanwhile (another test run) is not mistaken for it.
            let ours = self.stderr().contains("tollgate serving");
            if let (true, Ok(mut s)) = (ours, TcpStream::connect(("127.0.0.1", port))) {
                s.set_read_timeout(Some(limit)).unwrap();
                let probe = b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
                if s.write_all(probe).is_ok() {
                    let _ = s.read_to_end(&mut Vec::new());
                    return;
                }
            }
            if let Some(status) = self.child().try_wait().unwrap() {
                panic!(
                    "tollgate exited before listening ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tollgate did not listen on port {port} within {limit:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGTERM through kill(1): no `unsafe` (and no libc) in the tests.
    pub fn sigterm(&mut self) {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// SIGTERM, then the exit status within `limit`.
    pub fn stop(&mut self, limit: Duration) -> ExitStatus {
        self.sigterm();
        self.wait_for_exit(limit).unwrap_or_else(|| {
            panic!(
                "tollgate did not exit after SIGTERM; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// kill -9 and reap.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill_9();
    }
}
