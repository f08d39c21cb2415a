//! A `tollgate serve` child process reached over HTTP, and checks of its answers.
use super::child::{free_port, serve_cmd, Proc, STARTUP_LIMIT};
use reqwest::{Client, Response};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// A running `tollgate` process, its address and a client of its own (a fresh
/// connection pool per process, so nothing is reused across a kill).
pub struct Server {
    proc: Proc,
    /// `http://127.0.0.1:PORT` and the base path.
    pub base: String,
    pub client: Client,
}

impl Server {
    /// Spawns `cmd` (which must make the server listen on `port`) and waits,
    /// bounded, until it answers there.
    pub fn start(cmd: Command, port: u16, base_path: &str) -> Server {
        let mut proc = Proc::spawn(cmd);
        proc.wait_listening(port, STARTUP_LIMIT);
        Server {
            proc,
            base: format!("http://127.0.0.1:{port}{base_path}"),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// `tollgate --db FILE serve --listen 127.0.0.1:PORT EXTRA…`
    pub fn serve(cwd: &Path, db: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        Server::start(serve_cmd(cwd, db, "127.0.0.1", port, extra), port, "")
    }

    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// What the server printed for a person: the start-up banner.
    pub fn stdout(&self) -> String {
        self.proc.stdout()
    }

    pub fn kill_9(&mut self) {
        self.proc.kill_9();
    }

    /// The exit status if the process has ended, None while it runs.
    pub fn try_status(&mut self) -> Option<std::process::ExitStatus> {
        self.proc.child().try_wait().expect("try_wait")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn post_token(&self, form: &[(&str, &str)], user: &str, secret: &str) -> Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.client
            .post(self.url("/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .basic_auth(user, Some(secret))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /token: {e}; stderr:\n{}", self.stderr()))
    }

    /// A licensed grant: demo's default scopes include `all`.
    pub async fn licensed_grant(&self) -> Response {
        self.post_token(
            &[("grant_type", "client_credentials")],
            "demo",
            "demo-secret",
        )
        .await
    }

    pub async fn view_grant(&self) -> Response {
        self.post_token(
            &[("grant_type", "client_credentials"), ("scope", "view")],
            "demo",
            "demo-secret",
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            "demo",
            "demo-secret",
        )
        .await
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/api/v1/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET /api/v1/me: {e}; stderr:\n{}", self.stderr()))
    }
}

/// The JSON of a response that must have `status`.
pub async fn json_with(r: Response, status: u16, what: &str) -> Value {
    let got = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

/// A successful grant's body with its tokens.
pub async fn granted(r: Response, what: &str) -> (Value, String, String) {
    let body = json_with(r, 200, what).await;
    let access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    (body, access, refresh)
}
