//! What a person sees when the server starts: where to send requests, what the
//! database holds, and what to expect of the first grant.
use crate::config::Settings;
use crate::crypto::verify_password;
use crate::store::demo::DEMO_USERS;
use crate::store::{SharedStore, Store, StoreError};
use std::net::SocketAddr;

/// What the database holds that a newcomer needs to know.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Enabled API users.
    pub api_users: i64,
    pub seats: i64,
    /// Demo users whose published secret still works: (name, secret, scopes).
    pub demo: Vec<(String, String, String)>,
}

impl Facts {
    /// Reads the store. Checking the demo secrets costs one PBKDF2 verification
    /// each, on the blocking pool.
    pub async fn read(store: &dyn Store) -> Result<Self, StoreError> {
        let users = store.users().await?;
        let api_users = users.iter().filter(|u| u.api_user && u.enabled).count() as i64;
        let seats = store.seats().await?.total;
        let mut demo = Vec::new();
        for (name, secret, _, _) in DEMO_USERS.iter().filter(|u| u.2) {
            let Some(user) = store.find_client(name).await? else {
                continue;
            };
            let hash = user.password_hash.clone();
            let opens = user.api_user
                && user.enabled
                && tokio::task::spawn_blocking(move || verify_password(secret, &hash))
                    .await
                    .unwrap_or(false);
            if opens {
                let scopes: Vec<&str> = user.scopes.iter().map(|(s, _)| s.as_str()).collect();
                demo.push((name.to_string(), secret.to_string(), scopes.join(" ")));
            }
        }
        Ok(Self {
            api_users,
            seats,
            demo,
        })
    }
}

/// The URL a client on this machine uses: `--issuer` when given, else the
/// listening address (loopback in place of an unspecified one).
pub fn base_url(settings: &Settings, addr: SocketAddr) -> String {
    if let Some(issuer) = &settings.issuer {
        return issuer.trim_end_matches('/').to_owned();
    }
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("{scheme}://{addr}{}", settings.base_path)
}

/// RFC 8414 §3: the well-known segment goes between the origin and the path.
pub fn metadata_url(base: &str) -> String {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let (origin, path) = base.split_at(
        base[after_scheme..]
            .find('/')
            .map_or(base.len(), |i| after_scheme + i),
    );
    format!("{origin}/.well-known/oauth-authorization-server{path}")
}

fn duration(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The banner's text.
pub fn render(settings: &Settings, addr: SocketAddr, facts: &Facts) -> String {
    let base = base_url(settings, addr);
    let mut lines = vec![
        format!("tollgate is ready on {base}/"),
        format!("  token endpoint   POST {base}/token"),
        format!("  metadata         {}", metadata_url(&base)),
        format!("  API description  {base}/openapi.json (and docs/API.md)"),
        format!("  web console      {base}/console/ (an admin client signs in)"),
        format!(
            "  database         {}: {} API users, {} licence seats",
            crate::config::db_label(&settings.db),
            facts.api_users,
            facts.seats
        ),
        format!(
            "  token lifetimes  access {}, refresh (and its seat) {}, sliding on each refresh",
            duration(settings.access_ttl),
            duration(settings.refresh_ttl)
        ),
    ];
    if settings.access_token_format == crate::config::AccessTokenFormat::Jwt {
        lines.push(format!(
            "  access tokens    JWT (RFC 9068, ES256); public keys at {base}/.well-known/jwks.json"
        ));
    }
    for (name, secret, scopes) in &facts.demo {
        lines.push(format!(
            "  demo credential  client_id {name}, client_secret {secret} (scopes: {scopes})"
        ));
    }
    if let Some((name, secret, _)) = facts.demo.first() {
        lines.push(format!(
            "  try it           curl -s -u {name}:{secret} -d grant_type=client_credentials -d scope=view {base}/token"
        ));
    }
    lines.push(
        "  first grant      a client's first grant (and its first after a restart or a new secret) \
         spends about 0.1-0.5 s verifying its secret with PBKDF2, by design; later grants take about a millisecond"
            .to_owned(),
    );
    lines.join("\n")
}

/// Warnings for a database that cannot grant what a newcomer will ask for.
pub fn warnings(facts: &Facts) -> Vec<String> {
    let mut w = Vec::new();
    if facts.api_users == 0 {
        w.push(
            "the database has no enabled API users: every grant fails with invalid_client; \
             add one with `tollgate user add NAME --scopes view,all`"
                .to_owned(),
        );
    }
    if facts.seats == 0 {
        w.push(
            "the database has 0 licence seats: every licensed grant (scope all) fails with \
             licence_unavailable; set some with `tollgate licences set N`"
                .to_owned(),
        );
    }
    w
}

/// Reads each mount's database and logs the warnings, then prints the banner (one
/// block per mount, API.md §12) to standard output: it is for the person who started
/// the server, and it names the demo secrets, which stay out of the log. In a task of
/// its own, so that the demo secrets' PBKDF2 checks do not hold up serving.
pub fn announce(mounts: Vec<(Settings, SharedStore)>, addr: SocketAddr) {
    tokio::spawn(async move {
        let mut blocks = Vec::new();
        for (settings, store) in &mounts {
            let mount = match mounts.len() {
                1 => String::new(),
                _ => format!("mount {}: ", crate::mounts::label(&settings.base_path)),
            };
            match Facts::read(&**store).await {
                Ok(facts) => {
                    for w in warnings(&facts) {
                        log::warn!("{mount}{w}");
                    }
                    blocks.push(render(settings, addr, &facts));
                }
                Err(e) => {
                    log::warn!("{mount}cannot read the database for the start-up banner: {e}")
                }
            }
        }
        if log::log_enabled!(log::Level::Info) && !blocks.is_empty() {
            super::output::out(&blocks.join("\n"));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lives_between_origin_and_base_path() {
        assert_eq!(
            metadata_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            metadata_url("https://h.example/Jim_Test"),
            "https://h.example/.well-known/oauth-authorization-server/Jim_Test"
        );
    }

    #[test]
    fn base_url_names_a_reachable_address() {
        let mut s = Settings::for_db("x.db");
        s.base_path = "/Jim_Test".into();
        let any: SocketAddr = "0.0.0.0:8082".parse().unwrap();
        assert_eq!(base_url(&s, any), "http://127.0.0.1:8082/Jim_Test");
        s.issuer = Some("https://auth.example/Jim_Test/".into());
        assert_eq!(base_url(&s, any), "https://auth.example/Jim_Test");
    }

    #[test]
    fn jwt_mode_names_the_key_set() {
        let mut s = Settings::for_db("x.db");
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let facts = Facts::default();
        assert!(!render(&s, addr, &facts).contains("jwks.json"));
        s.access_token_format = crate::config::AccessTokenFormat::Jwt;
        assert!(render(&s, addr, &facts)
            .contains("public keys at http://127.0.0.1:8080/.well-known/jwks.json"));
    }

    #[test]
    fn durations_read_as_units() {
        assert_eq!(duration(300), "5m");
        assert_eq!(duration(1200), "20m");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(90), "90s");
    }

    #[test]
    fn an_empty_database_is_warned_about() {
        let w = warnings(&Facts::default());
        assert_eq!(w.len(), 2);
        assert!(w[0].contains("tollgate user add"));
        assert!(w[1].contains("tollgate licences set"));
    }
}
