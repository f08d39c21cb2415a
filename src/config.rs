//! Configuration in layers: built-in defaults < `TOLLGATE_*` environment < flags.
use crate::crypto::DEFAULT_PBKDF2_ITERATIONS;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_DB: &str = "./tollgate.db";

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "OAuth 2.0 token server, licence seats and product API on one SQLite file",
    after_help = "With no command, tollgate serves: `tollgate --listen 8082` is \
                  `tollgate serve --listen 8082`; `tollgate serve --help` lists serve's options."
)]
pub struct Cli {
    /// SQLite database file [default: ./tollgate.db]
    #[arg(long, global = true, env = "TOLLGATE_DB")]
    pub db: Option<PathBuf>,

    /// PBKDF2 iterations for newly hashed secrets (tests lower it to save time).
    #[arg(long, global = true, env = "TOLLGATE_PBKDF2_ITERATIONS", default_value_t = DEFAULT_PBKDF2_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    pub pbkdf2_iterations: u32,

    /// With no command, `serve` runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OAuth and product API.
    Serve(ServeArgs),
    /// Create a new, migrated database.
    Init(InitArgs),
    /// Manage users.
    #[command(subcommand)]
    User(crate::cli::args::UserCmd),
    /// Show or set the licence seats.
    #[command(subcommand)]
    Licences(crate::cli::args::LicencesCmd),
    /// List or revoke sessions.
    #[command(subcommand)]
    Sessions(crate::cli::args::SessionsCmd),
    /// Manage scopes.
    #[command(subcommand)]
    Scope(crate::cli::args::ScopeCmd),
    /// Read the audit trail.
    Audit(crate::cli::args::AuditArgs),
    /// Copy the database consistently while the server runs.
    Backup(crate::cli::args::BackupArgs),
    /// Publish and try GetData queries.
    #[command(subcommand)]
    Query(crate::cli::args::QueryCmd),
}

/// `serve --scheduler`: see src/sched.rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheduler {
    Batch,
    Normal,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on: a port (8080, meaning 127.0.0.1:8080), HOST:PORT
    /// (localhost:8080, 0.0.0.0:8080) or [IPv6]:PORT.
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR",
          value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// Prefix for every route, e.g. /Jim_Test.
    #[arg(long, env = "TOLLGATE_BASE_PATH", default_value = "")]
    pub base_path: String,
    /// Access token lifetime: seconds, or a number and a unit (30s, 5m, 12h, 7d).
    #[arg(long, env = "TOLLGATE_ACCESS_TTL", default_value = "300", value_name = "DURATION",
          value_parser = parse_duration)]
    pub access_ttl: i64,
    /// Refresh token (and licence seat) lifetime, as --access-ttl; slides on each refresh.
    #[arg(long, env = "TOLLGATE_REFRESH_TTL", default_value = "1200", value_name = "DURATION",
          value_parser = parse_duration)]
    pub refresh_ttl: i64,
    /// HTTP worker threads [default: number of cores].
    #[arg(long, env = "TOLLGATE_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// Issuer URL for server metadata (RFC 8414) [default: http://LISTEN/BASE-PATH].
    #[arg(long, env = "TOLLGATE_ISSUER")]
    pub issuer: Option<String>,
    /// Seconds a dead session or token is kept before the sweep deletes it.
    #[arg(long, env = "TOLLGATE_SWEEP_GRACE", hide = true)]
    pub sweep_grace: Option<u32>,
    /// How long audit-trail rows are kept, as --access-ttl (90d, 12h, 30m).
    #[arg(long, env = "TOLLGATE_AUDIT_RETENTION", default_value = "90d", value_name = "DURATION",
          value_parser = parse_duration)]
    pub audit_retention: i64,
    /// Seconds between sweeps of long-dead sessions and tokens.
    #[arg(long, env = "TOLLGATE_SWEEP_INTERVAL", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    pub sweep_interval: u32,
    /// PEM certificate chain: serve HTTPS (RFC 6749 §1.6, §2.3.1). Needs --tls-key.
    #[arg(long, env = "TOLLGATE_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TOLLGATE_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Listen beyond loopback even while the demo users keep their published secrets.
    #[arg(long, env = "TOLLGATE_ALLOW_DEMO_CREDENTIALS",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_demo_credentials: bool,
    /// An existing SQLite file attached read-only as schema `data` for GetData queries.
    #[arg(long, env = "TOLLGATE_DATA_DB")]
    pub data_db: Option<PathBuf>,
    /// A proxy whose X-Forwarded-For is believed (repeat, or comma-separate in the environment).
    #[arg(
        long = "trusted-proxy",
        env = "TOLLGATE_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications per client and address before it is throttled.
    #[arg(long, env = "TOLLGATE_THROTTLE_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub throttle_failures: u32,
    /// How long failed authentications are counted, as --access-ttl.
    #[arg(long, env = "TOLLGATE_THROTTLE_WINDOW", default_value = "300", value_name = "DURATION",
          value_parser = parse_duration)]
    pub throttle_window: i64,
    /// Failed authentications from one address, over all client ids, before the
    /// whole address is throttled.
    #[arg(long, env = "TOLLGATE_THROTTLE_ADDRESS_FAILURES", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub throttle_address_failures: u32,
    /// Open connections in all; past it, new connections are closed at once.
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Open connections from one address (trusted proxies are exempt).
    #[arg(long, env = "TOLLGATE_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_address: u32,
    /// How long a request's whole body may take to arrive, as --access-ttl; a slower
    /// one is answered 408 and its connection closed.
    #[arg(long, env = "TOLLGATE_BODY_TIMEOUT", default_value = "5s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub body_timeout: i64,
    /// Longest throttle block, as --access-ttl (blocks start at 30 s and double).
    #[arg(long, env = "TOLLGATE_THROTTLE_CAP", default_value = "900", value_name = "DURATION",
          value_parser = parse_duration)]
    pub throttle_cap: i64,
    /// How long a request may wait for a PBKDF2 slot before it is answered 503, milliseconds.
    #[arg(long, env = "TOLLGATE_PBKDF2_QUEUE_MS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub pbkdf2_queue_ms: u32,
    /// CPU scheduling of the server's threads (Linux): `batch` (SCHED_BATCH) lets a
    /// thread that hands work on keep the core until it blocks, so work changes threads
    /// in batches (src/sched.rs); `normal` keeps the system default.
    #[arg(long, env = "TOLLGATE_SCHEDULER", value_enum, default_value_t = Scheduler::Batch)]
    pub scheduler: Scheduler,
    /// GetData time limit per query, milliseconds.
    #[arg(long, env = "TOLLGATE_QUERY_TIME_LIMIT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub query_time_limit_ms: u32,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The file to create; it must not exist yet.
    pub file: PathBuf,
    /// Add the demo users, seats and products.
    #[arg(long)]
    pub demo: bool,
}

/// The PEM files of `--tls-cert` and `--tls-key`, always given together.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the server needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub db: PathBuf,
    /// Create the file with the demo data if it does not exist.
    pub create_demo_if_missing: bool,
    pub listen: SocketAddr,
    /// "" or "/Something" without a trailing slash.
    pub base_path: String,
    /// RFC 8414 issuer; None derives it from `listen` and `base_path`.
    pub issuer: Option<String>,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
    pub pbkdf2_iterations: u32,
    pub workers: usize,
    pub sweep_interval: std::time::Duration,
    /// HTTPS when set; plain HTTP otherwise.
    pub tls: Option<TlsFiles>,
    /// Start beyond loopback even if a demo user still has its demo secret.
    pub allow_demo_credentials: bool,
    /// Seconds audit-trail rows are kept.
    pub audit_retention: i64,
    /// Seconds dead sessions and tokens are kept; None is the built-in hour.
    pub sweep_grace: Option<i64>,
    /// GetData: attached read-only as schema `data`.
    pub data_db: Option<PathBuf>,
    /// GetData: per-query time limit.
    pub query_time_limit: std::time::Duration,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub throttle: crate::oauth::throttle::ThrottleConfig,
    /// Longest wait for a PBKDF2 slot.
    pub pbkdf2_queue_wait: std::time::Duration,
    /// Open connections in all and per address.
    pub connections: crate::http::connections::Limits,
    /// Longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
}

impl Settings {
    /// Sensible settings for a given file; tests and embedders start here.
    pub fn for_db(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            create_demo_if_missing: false,
            listen: ([127, 0, 0, 1], 8080).into(),
            base_path: String::new(),
            issuer: None,
            access_ttl: 300,
            refresh_ttl: 1200,
            pbkdf2_iterations: DEFAULT_PBKDF2_ITERATIONS,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            sweep_interval: std::time::Duration::from_secs(60),
            tls: None,
            allow_demo_credentials: false,
            audit_retention: 90 * 86_400,
            sweep_grace: None,
            data_db: None,
            query_time_limit: std::time::Duration::from_secs(2),
            trusted_proxies: Vec::new(),
            throttle: crate::oauth::throttle::ThrottleConfig::default(),
            pbkdf2_queue_wait: std::time::Duration::from_secs(1),
            connections: crate::http::connections::Limits::default(),
            body_timeout: std::time::Duration::from_secs(5),
        }
    }

    pub fn from_cli(db: Option<PathBuf>, iterations: u32, a: &ServeArgs) -> Result<Self, String> {
        let explicit_db = db.is_some();
        let mut s = Self::for_db(db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)));
        s.create_demo_if_missing = !explicit_db;
        s.listen = a.listen;
        s.base_path = normalize_base_path(&a.base_path)?;
        s.issuer = match &a.issuer {
            Some(i) if !(i.starts_with("https://") || i.starts_with("http://")) => {
                return Err(format!("--issuer {i:?} must be an http:// or https:// URL"))
            }
            other => other.clone(),
        };
        s.access_ttl = a.access_ttl;
        s.refresh_ttl = a.refresh_ttl;
        s.pbkdf2_iterations = iterations;
        if let Some(w) = a.workers {
            s.workers = w.into();
        }
        s.sweep_interval = std::time::Duration::from_secs(a.sweep_interval.into());
        s.tls = tls_files(a.tls_cert.clone(), a.tls_key.clone())?;
        s.allow_demo_credentials = a.allow_demo_credentials;
        s.audit_retention = a.audit_retention;
        s.sweep_grace = a.sweep_grace.map(i64::from);
        s.data_db = a.data_db.clone();
        s.query_time_limit = std::time::Duration::from_millis(a.query_time_limit_ms.into());
        s.trusted_proxies = a.trusted_proxies.clone();
        s.throttle.max_failures = a.throttle_failures;
        s.throttle.window = a.throttle_window;
        s.throttle.cap = a.throttle_cap;
        s.throttle.address_failures = a.throttle_address_failures;
        s.connections.total = a.max_connections as usize;
        s.connections.per_address = a.max_connections_per_address as usize;
        s.body_timeout = std::time::Duration::from_secs(a.body_timeout.unsigned_abs());
        s.pbkdf2_queue_wait = std::time::Duration::from_millis(a.pbkdf2_queue_ms.into());
        Ok(s)
    }
}

/// Both files or neither: a certificate without its key (or the reverse) is a mistake.
pub fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<TlsFiles>, String> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(
            "--tls-cert needs --tls-key (TOLLGATE_TLS_KEY): give the private key's PEM file too, or neither for plain HTTP".into(),
        ),
        (None, Some(_)) => Err(
            "--tls-key needs --tls-cert (TOLLGATE_TLS_CERT): give the certificate chain's PEM file too, or neither for plain HTTP".into(),
        ),
    }
}

/// The longest duration any option takes: a hundred years, so that `now` plus it
/// cannot overflow.
const MAX_DURATION: i64 = 100 * 365 * 86_400;

/// `300` (seconds), `30s`, `15m`, `12h`, `7d` -> seconds (at least one).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{s:?}: expected seconds or a number and a unit (s, m, h, d), e.g. 300, 30s, 5m, 12h or 7d"
        )
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).filter(|v| *v > 0).ok_or_else(bad)?;
    if secs > MAX_DURATION {
        return Err(format!("{s:?}: at most 100 years (36500d)"));
    }
    Ok(secs)
}

/// `--listen`: `8080` (loopback), `HOST:PORT` or an IP socket address.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| {
        format!(
            "{s:?}: {why}; give a port (8080, meaning 127.0.0.1:8080), HOST:PORT \
             (localhost:8080, 0.0.0.0:8080) or [IPv6]:PORT ([::1]:8080)"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s.parse().map_err(|_| bad("not a port (0 to 65535)"))?;
        return Ok(([127, 0, 0, 1], port).into());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad("not a port (0 to 65535) after ':'"))?;
    if host.is_empty() {
        return Err(bad("no host before ':'"));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(([127, 0, 0, 1], port).into());
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve {host:?} ({e})")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| bad(&format!("{host:?} has no address")))
}

/// `Jim_Test/` -> `/Jim_Test`; `/` -> ``.
pub fn normalize_base_path(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let p = if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    };
    let ok = p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
        && !p.contains("//");
    if ok {
        Ok(p)
    } else {
        Err(format!(
            "--base-path {raw:?} is not a plain URL path; use letters, digits and - . _ ~ separated by /, e.g. /Jim_Test"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_base_path as n;

    #[test]
    fn durations_take_plain_seconds_or_a_unit() {
        use super::parse_duration as d;
        assert_eq!(d("300"), Ok(300));
        assert_eq!(d("30s"), Ok(30));
        assert_eq!(d("5m"), Ok(300));
        assert_eq!(d("12h"), Ok(43_200));
        assert_eq!(d("90d"), Ok(7_776_000));
        for bad in [
            "",
            "0",
            "0m",
            "-5",
            "5 m",
            "5w",
            "m",
            "1.5h",
            "99999999999999999999",
        ] {
            assert!(d(bad).unwrap_err().contains("e.g. 300"), "{bad:?}");
        }
        assert!(d("36501d").unwrap_err().contains("100 years"));
    }

    #[test]
    fn listen_takes_a_port_a_host_or_an_address() {
        use super::parse_listen as l;
        let v4 = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        assert_eq!(l("8082"), Ok(v4("127.0.0.1:8082")));
        assert_eq!(l("localhost:8082"), Ok(v4("127.0.0.1:8082")));
        assert_eq!(l("LOCALHOST:0"), Ok(v4("127.0.0.1:0")));
        assert_eq!(l("0.0.0.0:8443"), Ok(v4("0.0.0.0:8443")));
        assert_eq!(l("[::1]:8080"), Ok(v4("[::1]:8080")));
        for bad in [
            "",
            "70000",
            "localhost",
            ":8080",
            "localhost:",
            "localhost:x",
        ] {
            assert!(l(bad).unwrap_err().contains("localhost:8080"), "{bad:?}");
        }
    }

    #[test]
    fn base_paths() {
        assert_eq!(n("").unwrap(), "");
        assert_eq!(n("/").unwrap(), "");
        assert_eq!(n("Jim_Test/").unwrap(), "/Jim_Test");
        assert!(n("/a b").is_err());
        assert!(n("/a//b").is_err());
    }

    #[test]
    fn tls_files_go_together() {
        use super::tls_files;
        let p = |s: &str| Some(std::path::PathBuf::from(s));
        assert!(tls_files(None, None).unwrap().is_none());
        assert!(tls_files(p("c.pem"), p("k.pem")).unwrap().is_some());
        assert!(tls_files(p("c.pem"), None)
            .unwrap_err()
            .contains("--tls-key"));
        assert!(tls_files(None, p("k.pem"))
            .unwrap_err()
            .contains("--tls-cert"));
    }
}
