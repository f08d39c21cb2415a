//! The server's settings: built-in defaults (`Settings::for_db`) and the checks a
//! value must pass before it is used. Flags and their `TOLLGATE_*` twins are read
//! in cli/serve.rs, which builds `Settings` from them: defaults < environment < flags.
use crate::crypto::DEFAULT_PBKDF2_ITERATIONS;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT_DB: &str = "./tollgate.db";

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
    /// API.md §12: `--mount PATH=DB`; empty serves `db` under `base_path` alone.
    pub mounts: Vec<crate::mounts::Mount>,
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
    pub connections: ConnectionLimits,
    /// Longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// API.md §10: opaque tokens, or RFC 9068 JWTs.
    pub access_token_format: AccessTokenFormat,
    /// A JWT's `aud`; None is the issuer.
    pub audience: Option<String>,
}

/// `--access-token-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccessTokenFormat {
    #[default]
    Opaque,
    Jwt,
}

impl Settings {
    /// The issuer (RFC 8414 §2): `--issuer` if set, else derived from the listen
    /// address and base path.
    pub fn issuer_url(&self) -> String {
        match &self.issuer {
            Some(i) => i.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}{}", self.listen, self.base_path)
            }
        }
    }
}

impl Settings {
    /// Sensible settings for a given file; tests and embedders start here.
    pub fn for_db(db: impl Into<PathBuf>) -> Self {
        Self {
            db: db.into(),
            mounts: Vec::new(),
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
            connections: ConnectionLimits::default(),
            body_timeout: std::time::Duration::from_secs(5),
            access_token_format: AccessTokenFormat::Opaque,
            audience: None,
        }
    }
}

/// `--issuer`, when given, is an http:// or https:// URL.
pub fn check_issuer(issuer: Option<String>) -> Result<Option<String>, String> {
    match issuer {
        Some(i) if !(i.starts_with("https://") || i.starts_with("http://")) => {
            Err(format!("--issuer {i:?} must be an http:// or https:// URL"))
        }
        other => Ok(other),
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

/// The PostgreSQL URL `db` is, if it is one (`postgres://…`, `postgresql://…`);
/// anything else names a SQLite file.
pub fn postgres_url(db: &std::path::Path) -> Option<&str> {
    db.to_str().filter(|s| crate::store::postgres::is_url(s))
}

/// How `db` is named in messages and logs: a URL without its password.
pub fn db_label(db: &std::path::Path) -> String {
    match postgres_url(db) {
        Some(url) => crate::store::postgres::redacted(url),
        None => db.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_base_path as n;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// How many connections the server holds open (http/connections.rs admits them).
pub struct ConnectionLimits {
    /// Open connections in all.
    pub total: usize,
    /// Open connections from one address (trusted proxies are exempt).
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            total: 4096,
            per_address: 256,
        }
    }
}
