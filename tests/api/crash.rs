//! Crash safety under load (API.md §2 "it survives a crash (kill -9)"):
//! the real binary serves licensed grants, refreshes, revocations, view grants and
//! product writes from several tasks at once; it is killed with SIGKILL mid-load
//! and restarted on the same file. Everything it acknowledged must still be there.
//!
//! What the load generator knows is kept in a ledger. A request whose answer never
//! arrived (in flight at the kill) may or may not have been committed, so the
//! checks allow exactly for those and nothing more.
use crate::helpers::{free_port, init_demo, serve_cmd, Server};
use reqwest::{Client, Response};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

const SEATS: usize = 50;
/// How long the load runs before the kill.
const LOAD: Duration = Duration::from_secs(2);
/// No request of the load waits longer than this, so every task ends.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const DEMO: (&str, &str) = ("demo", "demo-secret");

// ---------------------------------------------------------------- the process

/// `tollgate --db FILE serve` on a free port, listening, with warnings only, but for
/// the start-up line the harness waits for: thousands of requests would flood the log.
fn serve(dir: &Path, db: &Path) -> Server {
    let port = free_port();
    let mut cmd = serve_cmd(dir, db, "127.0.0.1", port, &[]);
    cmd.env("RUST_LOG", "warn,tollgate=info,tollgate::access=warn");
    Server::start(cmd, port, "")
}

// ---------------------------------------------------------------- HTTP

#[derive(Clone)]
struct Api {
    client: Client,
    base: String,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            client: Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
        }
    }

    async fn form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Result<Response> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .basic_auth(DEMO.0, Some(DEMO.1))
            .body(body)
            .send()
            .await
    }

    async fn grant(&self, scope: Option<&str>) -> reqwest::Result<Response> {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|s| ("scope", s)));
        self.form("/token", &form).await
    }

    async fn refresh(&self, refresh_token: &str) -> reqwest::Result<Response> {
        self.form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    async fn revoke(&self, refresh_token: &str) -> reqwest::Result<Response> {
        self.form(
            "/revoke",
            &[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await
    }

    async fn get(&self, path: &str, access: &str) -> reqwest::Result<Response> {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(access)
            .send()
            .await
    }

    async fn put_product(&self, p: &Product, access: &str) -> reqwest::Result<Response> {
        self.client
            .put(format!("{}/api/v1/products/{}", self.base, p.sku))
            .bearer_auth(access)
            .json(&p.json())
            .send()
            .await
    }
}

/// Status and JSON body; an error if the answer did not arrive whole.
async fn answer(r: reqwest::Result<Response>) -> reqwest::Result<(u16, Value)> {
    let r = r?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn tokens(body: &Value) -> (String, String) {
    let s = |k: &str| {
        body[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {body}"))
            .to_owned()
    };
    (s("access_token"), s("refresh_token"))
}

// ---------------------------------------------------------------- the ledger

#[derive(Debug, Clone, PartialEq)]
struct Product {
    sku: String,
    name: String,
    description: String,
    price_cents: i64,
    stock: i64,
}

impl Product {
    fn json(&self) -> Value {
        json!({"sku": self.sku, "name": self.name, "description": self.description,
               "price_cents": self.price_cents, "stock": self.stock})
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Its latest refresh token was acknowledged; nothing is in flight for it.
    Live,
    /// A refresh was sent and not answered: the seat is held, the latest token unknown.
    Refreshing,
    /// A revocation was sent and not answered: the seat may or may not be free.
    Revoking,
    /// The revocation was acknowledged.
    Revoked,
}

#[derive(Debug)]
struct Session {
    access: String,
    refresh: String,
    phase: Phase,
    /// The product writers' session: never revoked.
    pinned: bool,
}

#[derive(Default)]
struct Ledger {
    sessions: Vec<Session>,
    /// Licensed grants sent and not answered.
    grants_in_flight: usize,
    writes: Vec<Product>,
    view_tokens: Vec<String>,
    /// Answers no correct server gives this load, and errors before the kill.
    unexpected: Vec<String>,
    counts: HashMap<&'static str, usize>,
}

impl Ledger {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

#[derive(Clone)]
struct Load {
    api: Api,
    ledger: Arc<Mutex<Ledger>>,
    killed: Arc<AtomicBool>,
}

/// What a request of the load came to.
enum Outcome {
    Answered(u16, Value),
    /// Refused before it was sent: the server was already gone.
    NotSent,
    /// Sent, no whole answer: in flight at the kill.
    Lost,
}

impl Load {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn running(&self) -> bool {
        !self.killed.load(Ordering::SeqCst)
    }

    async fn call(&self, what: &str, r: reqwest::Result<Response>) -> Outcome {
        match answer(r).await {
            Ok((status, body)) => Outcome::Answered(status, body),
            Err(e) => {
                if self.running() {
                    self.ledger()
                        .unexpected
                        .push(format!("{what}: {e} before the kill"));
                }
                if e.is_connect() {
                    Outcome::NotSent
                } else {
                    Outcome::Lost
                }
            }
        }
    }

    fn odd(&self, what: &str, status: u16, body: &Value) {
        self.ledger()
            .unexpected
            .push(format!("{what}: HTTP {status} {body}"));
    }

    /// Licensed grants until the kill; 403 licence_unavailable once the seats are gone.
    async fn granter(self) {
        while self.running() {
            self.ledger().grants_in_flight += 1;
            let r = self.api.grant(None).await;
            match self.call("licensed grant", r).await {
                Outcome::Answered(200, body) => {
                    let (access, refresh) = tokens(&body);
                    let mut l = self.ledger();
                    l.grants_in_flight -= 1;
                    l.count("licensed grants");
                    l.sessions.push(Session {
                        access,
                        refresh,
                        phase: Phase::Live,
                        pinned: false,
                    });
                }
                Outcome::Answered(403, body) if body["error"] == "licence_unavailable" => {
                    let mut l = self.ledger();
                    l.grants_in_flight -= 1;
                    l.count("licence_unavailable");
                }
                Outcome::Answered(status, body) => {
                    self.ledger().grants_in_flight -= 1;
                    self.odd("licensed grant", status, &body);
                }
                Outcome::NotSent => {
                    self.ledger().grants_in_flight -= 1;
                    return;
                }
                Outcome::Lost => return,
            }
        }
    }

    /// Takes a live session for one operation, round-robin from `next`.
    fn take(&self, next: &mut usize, revocable: bool, phase: Phase) -> Option<(usize, String)> {
        let mut l = self.ledger();
        let n = l.sessions.len();
        for k in 0..n {
            let i = (*next + k) % n;
            let s = &mut l.sessions[i];
            if s.phase == Phase::Live && !(revocable && s.pinned) {
                s.phase = phase;
                *next = i + 1;
                return Some((i, s.refresh.clone()));
            }
        }
        None
    }

    async fn refresher(self) {
        let mut next = 0;
        while self.running() {
            let Some((i, refresh)) = self.take(&mut next, false, Phase::Refreshing) else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let r = self.api.refresh(&refresh).await;
            match self.call("refresh", r).await {
                Outcome::Answered(200, body) => {
                    let (access, refresh) = tokens(&body);
                    let mut l = self.ledger();
                    l.count("refreshes");
                    let s = &mut l.sessions[i];
                    (s.access, s.refresh, s.phase) = (access, refresh, Phase::Live);
                }
                Outcome::Answered(status, body) => {
                    self.odd("refresh of a live session", status, &body);
                    return;
                }
                Outcome::NotSent => {
                    self.ledger().sessions[i].phase = Phase::Live;
                    return;
                }
                Outcome::Lost => return,
            }
        }
    }

    /// Ends sessions so that seats keep changing hands during the load.
    async fn revoker(self) {
        let mut next = 0;
        while self.running() {
            tokio::time::sleep(Duration::from_millis(3)).await;
            let Some((i, refresh)) = self.take(&mut next, true, Phase::Revoking) else {
                continue;
            };
            let r = self.api.revoke(&refresh).await;
            match self.call("revoke", r).await {
                Outcome::Answered(200, _) => {
                    let mut l = self.ledger();
                    l.count("revocations");
                    l.sessions[i].phase = Phase::Revoked;
                }
                Outcome::Answered(status, body) => {
                    self.odd("revoke", status, &body);
                    return;
                }
                Outcome::NotSent => {
                    self.ledger().sessions[i].phase = Phase::Live;
                    return;
                }
                Outcome::Lost => return,
            }
        }
    }

    async fn viewer(self) {
        while self.running() {
            let r = self.api.grant(Some("view")).await;
            match self.call("view grant", r).await {
                Outcome::Answered(200, body) if body["scope"] == "view" => {
                    let mut l = self.ledger();
                    l.count("view grants");
                    l.view_tokens.push(tokens(&body).0);
                }
                Outcome::Answered(status, body) => self.odd("view grant", status, &body),
                Outcome::NotSent | Outcome::Lost => return,
            }
        }
    }

    /// PUTs of new products, each with its own sku.
    async fn writer(self, task: usize, access: String) {
        let mut n = 0i64;
        while self.running() {
            n += 1;
            let p = Product {
                sku: format!("CRASH-{task}-{n}"),
                name: format!("Crash-test part {task}/{n} – Nº{n}"),
                description: if n % 3 == 0 {
                    String::new()
                } else {
                    format!("written by task {task}")
                },
                price_cents: n * 7 + task as i64,
                stock: (n * 13) % 5000,
            };
            let r = self.api.put_product(&p, &access).await;
            match self.call("product write", r).await {
                Outcome::Answered(200 | 201, body) => {
                    let mut l = self.ledger();
                    l.count("product writes");
                    if body["sku"] != p.sku.as_str() || body["name"] != p.name.as_str() {
                        l.unexpected.push(format!("PUT {}: answered {body}", p.sku));
                    }
                    l.writes.push(p);
                }
                Outcome::Answered(status, body) => self.odd("product write", status, &body),
                Outcome::NotSent | Outcome::Lost => return,
            }
        }
    }
}

// ---------------------------------------------------------------- after the restart

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn read_db(db: &Path) -> Connection {
    let c = Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn integrity(c: &Connection) -> (Vec<String>, usize) {
    let mut st = c.prepare("PRAGMA integrity_check").unwrap();
    let rows: Vec<String> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let fk: usize = c
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
    (rows, fk)
}

fn seats_held(c: &Connection) -> usize {
    c.query_row(
        "SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > ?1",
        [now()],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

fn stored_products(c: &Connection) -> HashMap<String, Product> {
    let mut st = c
        .prepare(
            "SELECT sku, name, description, price_cents, stock FROM products WHERE sku LIKE 'CRASH-%'",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok(Product {
            sku: r.get(0)?,
            name: r.get(1)?,
            description: r.get(2)?,
            price_cents: r.get(3)?,
            stock: r.get(4)?,
        })
    })
    .unwrap()
    .map(|p| {
        let p = p.unwrap();
        (p.sku.clone(), p)
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_seats_and_writes_survive_kill_9_under_load() {
    let dir: TempDir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tollgate.db");
    init_demo(dir.path(), &db);
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE licence SET seats = ?1", [SEATS as i64])
        .unwrap();
    let mut first = serve(dir.path(), &db);
    let api = Api::new(&first.base);

    // The writers' token: a licensed session of its own, in the ledger like any other.
    let (status, body) = answer(api.grant(Some("all")).await).await.unwrap();
    assert_eq!(status, 200, "writers' grant: {body}");
    let (writer_access, writer_refresh) = tokens(&body);
    let load = Load {
        api: api.clone(),
        ledger: Arc::default(),
        killed: Arc::default(),
    };
    load.ledger().sessions.push(Session {
        access: writer_access.clone(),
        refresh: writer_refresh,
        phase: Phase::Live,
        pinned: true,
    });

    let mut tasks = Vec::new();
    for _ in 0..2 {
        tasks.push(tokio::spawn(load.clone().granter()));
        tasks.push(tokio::spawn(load.clone().refresher()));
    }
    tasks.push(tokio::spawn(load.clone().revoker()));
    tasks.push(tokio::spawn(load.clone().viewer()));
    for task in 0..3 {
        tasks.push(tokio::spawn(
            load.clone().writer(task, writer_access.clone()),
        ));
    }

    tokio::time::sleep(LOAD).await;
    load.killed.store(true, Ordering::SeqCst);
    first.kill_9();
    let first_log = first.stderr();
    drop(first);
    for t in tasks {
        tokio::time::timeout(REQUEST_TIMEOUT * 2, t)
            .await
            .expect("a load task outlived the kill")
            .expect("load task panicked");
    }

    let second = serve(dir.path(), &db);
    let api = Api::new(&second.base);
    let c = read_db(&db);
    // Every task has ended: the ledger is final.
    let l = std::mem::take(&mut *load.ledger());
    eprintln!(
        "crash test: {:?}; sessions by phase: {:?}; licensed grants in flight at the kill: {}",
        l.counts,
        [
            Phase::Live,
            Phase::Refreshing,
            Phase::Revoking,
            Phase::Revoked
        ]
        .map(|p| (p, l.sessions.iter().filter(|s| s.phase == p).count())),
        l.grants_in_flight,
    );
    assert!(
        l.unexpected.is_empty(),
        "unexpected answers during the load:\n{}\nserver log:\n{first_log}",
        l.unexpected.join("\n")
    );
    for what in [
        "licensed grants",
        "refreshes",
        "revocations",
        "view grants",
        "product writes",
    ] {
        assert!(
            l.counts.get(what).copied().unwrap_or(0) > 0,
            "the load made no {what}: {:?}",
            l.counts
        );
    }

    // 1. The file is sound.
    let (report, fk_violations) = integrity(&c);
    assert_eq!(report, ["ok"], "PRAGMA integrity_check after kill -9");
    assert_eq!(fk_violations, 0, "PRAGMA foreign_key_check after kill -9");

    // 2. Seats: every acknowledged live session holds one; only what was in flight is unknown.
    let phase = |p: Phase| l.sessions.iter().filter(|s| s.phase == p).count();
    let certain = phase(Phase::Live) + phase(Phase::Refreshing);
    let uncertain = l.grants_in_flight + phase(Phase::Revoking);
    let held = seats_held(&c);
    assert!(held <= SEATS, "{held} seats held of {SEATS}");
    assert!(
        certain <= held && held <= certain + uncertain,
        "seats held after kill -9: {held}; acknowledged live sessions {certain} \
         (+ up to {uncertain} in flight: {} grants, {} revocations)",
        l.grants_in_flight,
        phase(Phase::Revoking)
    );

    // 3. Each acknowledged live session: its latest access token still shows the seat,
    //    and its latest refresh token still refreshes. Acknowledged revocations stayed.
    for (i, s) in l.sessions.iter().enumerate() {
        match s.phase {
            Phase::Live => {
                let (status, me) = answer(api.get("/api/v1/me", &s.access).await)
                    .await
                    .unwrap();
                assert_eq!(status, 200, "session {i}: /api/v1/me after kill -9: {me}");
                assert_eq!(me["seat"], true, "session {i}: {me}");
                assert_eq!(me["client_id"], "demo", "session {i}: {me}");
            }
            Phase::Revoked => {
                let (status, me) = answer(api.get("/api/v1/me", &s.access).await)
                    .await
                    .unwrap();
                assert_eq!(status, 401, "session {i} was revoked before the kill: {me}");
                let (status, body) = answer(api.refresh(&s.refresh).await).await.unwrap();
                assert_eq!(
                    (status, body["error"].as_str()),
                    (400, Some("invalid_grant")),
                    "session {i} was revoked before the kill: {body}"
                );
            }
            Phase::Refreshing | Phase::Revoking => {}
        }
    }
    for (i, s) in l.sessions.iter().enumerate() {
        if s.phase == Phase::Live {
            let (status, body) = answer(api.refresh(&s.refresh).await).await.unwrap();
            assert_eq!(status, 200, "session {i}: refresh after kill -9: {body}");
        }
    }
    let view = l.view_tokens.last().expect("a view token");
    let (status, me) = answer(api.get("/api/v1/me", view).await).await.unwrap();
    assert_eq!(
        (status, &me["seat"]),
        (200, &json!(false)),
        "view token: {me}"
    );

    // 4. Every acknowledged product write is there with the acknowledged values.
    let stored = stored_products(&c);
    let missing: Vec<String> = l
        .writes
        .iter()
        .filter(|p| stored.get(&p.sku) != Some(*p))
        .map(|p| format!("{p:?} stored as {:?}", stored.get(&p.sku)))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost or changed by kill -9:\n{}",
        missing.len(),
        l.writes.len(),
        missing.join("\n")
    );
    assert!(
        stored.len() <= l.writes.len() + 3,
        "{} CRASH- products stored; {} acknowledged and at most 3 in flight",
        stored.len(),
        l.writes.len()
    );
    for p in l.writes.iter().rev().take(20) {
        let path = format!("/api/v1/products/{}", p.sku);
        let (status, got) = answer(api.get(&path, view).await).await.unwrap();
        assert_eq!(status, 200, "GET {path} after kill -9: {got}");
        assert_eq!(got["name"], p.name.as_str(), "{got}");
        assert_eq!(got["price_cents"], p.price_cents, "{got}");
        assert_eq!(got["stock"], p.stock, "{got}");
        assert_eq!(got["description"], p.description.as_str(), "{got}");
    }

    // 5. From outside: exactly the seats not held are free to grant.
    let mut granted = 0;
    loop {
        let (status, body) = answer(api.grant(None).await).await.unwrap();
        match status {
            200 => granted += 1,
            403 if body["error"] == "licence_unavailable" => break,
            _ => panic!("licensed grant after the restart: HTTP {status} {body}"),
        }
        assert!(granted <= SEATS, "more than {SEATS} grants succeeded");
    }
    assert_eq!(
        granted,
        SEATS - held,
        "free seats after the restart: {held} held of {SEATS}"
    );
    drop(second);
}
