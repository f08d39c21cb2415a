//! Client authentication (RFC 6749 §2.3.1) over the store: the throttle, the
//! verified-credential record, PBKDF2 with a decoy for unknown clients, and why a
//! refused client was refused (for the operator only).
use super::client_auth::Presented;
use super::{Authority, OAuthError};
use crate::crypto::Secret;
use crate::store::ClientRecord;
use std::net::IpAddr;

/// Where client authentication finds the client's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The verified-credential record, when this secret was verified before: no
    /// PBKDF2 and no read. Only for operations that confirm the record in their own
    /// transaction (the store's grants do).
    Remembered,
    /// The USERS table.
    Fresh,
}

/// An authenticated client: the name it authenticated with and its record.
pub struct Client {
    pub nickname: String,
    pub record: ClientRecord,
}

/// Why a client's authentication failed: for the operator (the log and the audit
/// trail), never for the response, which is `invalid_client` whatever the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownClient,
    WrongSecret,
    NotApiUser,
    Disabled,
    ControlCharacters,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown client",
            Self::WrongSecret => "wrong secret",
            Self::NotApiUser => "not an API user (APIUSER = 0)",
            Self::Disabled => "disabled user",
            Self::ControlCharacters => "the secret contains control characters",
        }
    }
}

/// A failed client authentication, for the audit trail: the client id it named
/// (cut to [`SHOWN_ID_CHARS`]) and why it failed.
#[derive(Debug, Clone)]
pub struct FailedClient {
    pub client_id: String,
    pub refusal: Refusal,
}

/// Why authentication gave no client: the error for the response and, when the
/// credentials were refused, what the operator is told.
#[derive(Debug)]
pub struct Denied {
    pub error: OAuthError,
    pub failed: Option<FailedClient>,
}

impl From<OAuthError> for Denied {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            failed: None,
        }
    }
}

impl From<crate::store::StoreError> for Denied {
    fn from(e: crate::store::StoreError) -> Self {
        OAuthError::from(e).into()
    }
}

/// A named client id is the client's own text: at most this much of it is kept.
const SHOWN_ID_CHARS: usize = 64;

fn shown_id(id: &str) -> String {
    match id.char_indices().nth(SHOWN_ID_CHARS) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_owned(),
    }
}

/// The log target of failed client authentications, so operators can route them.
pub const AUTH_TARGET: &str = "tollgate::auth";

impl Authority {
    /// Client authentication for the token, revocation and introspection endpoints,
    /// throttled per (address, client id) and per address against brute force.
    pub async fn authenticate(
        &self,
        presented: Presented,
        ip: Option<IpAddr>,
        lookup: Lookup,
    ) -> Result<Client, Denied> {
        let now = self.clock.now();
        let id = presented.client_id.clone();
        if let Some(ip) = ip {
            if let Err(retry_after) = self.throttle.check(ip, &id, now) {
                return Err(OAuthError::SlowDown { retry_after }.into());
            }
        }
        match self.authenticate_presented(presented, lookup).await? {
            Ok(client) => {
                if let Some(ip) = ip {
                    self.throttle.succeeded(ip, &id);
                }
                Ok(client)
            }
            Err(refusal) => {
                let shown = shown_id(&id);
                let from = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
                log::info!(
                    target: AUTH_TARGET,
                    "client authentication failed for {shown:?} from {from}: {}",
                    refusal.reason()
                );
                if let Some(ip) = ip {
                    match self.throttle.failed(ip, &id, now) {
                        Some(b) if b.whole_address => log::warn!(
                            "throttling every client id from {ip} for {} s after repeated failed authentications",
                            b.seconds
                        ),
                        Some(b) => log::warn!(
                            "throttling client {shown:?} from {ip} for {} s after repeated failed authentications",
                            b.seconds
                        ),
                        None => {}
                    }
                }
                Err(Denied {
                    error: OAuthError::InvalidClient,
                    failed: Some(FailedClient {
                        client_id: shown,
                        refusal,
                    }),
                })
            }
        }
    }

    /// The client, or why it was refused (the refusal of the form-decoded
    /// credentials when the raw ones fail too). An unknown client still costs one
    /// PBKDF2 verification.
    async fn authenticate_presented(
        &self,
        p: Presented,
        lookup: Lookup,
    ) -> Result<Result<Client, Refusal>, OAuthError> {
        let refusal = match self.check(p.client_id, p.secret, lookup).await? {
            Ok(c) => return Ok(Ok(c)),
            Err(refusal) => refusal,
        };
        if let Some((id, secret)) = p.raw {
            if let Ok(c) = self.check(id, secret, lookup).await? {
                return Ok(Ok(c));
            }
        }
        Ok(Err(refusal))
    }

    async fn check(
        &self,
        id: String,
        secret: Secret,
        lookup: Lookup,
    ) -> Result<Result<Client, Refusal>, OAuthError> {
        // A NUL or other control character is never part of a secret tollgate stores;
        // PBKDF2 would pad a short key with zeros and accept `secret\0` as `secret`.
        if secret.expose().chars().any(char::is_control) {
            return Ok(Err(Refusal::ControlCharacters));
        }
        if lookup == Lookup::Remembered {
            if let Some(record) = self.verified.client(&id, secret.expose()) {
                return Ok(Ok(Client {
                    nickname: id,
                    record,
                }));
            }
        }
        let record = self.store.find_client(&id).await?;
        let eligible = record.as_ref().is_some_and(|r| r.api_user && r.enabled);
        if let Some(r) = record.as_ref().filter(|_| eligible) {
            if self
                .verified
                .is_verified(&id, secret.expose(), &r.password_hash)
            {
                return Ok(Ok(Client {
                    nickname: id,
                    record: record.unwrap(),
                }));
            }
        }
        // Ordinary and disabled users are verified too (then refused), so timing tells nothing.
        let stored = record
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |r| r.password_hash.as_str());
        let ok = self
            .verifier
            .verify(&id, &secret, stored)
            .await
            .map_err(|_| OAuthError::TemporarilyUnavailable)?;
        Ok(match record {
            None => Err(Refusal::UnknownClient),
            Some(r) if !r.api_user => Err(Refusal::NotApiUser),
            Some(r) if !r.enabled => Err(Refusal::Disabled),
            Some(_) if !ok => Err(Refusal::WrongSecret),
            Some(r) => {
                self.verified.remember(&id, secret.expose(), &r);
                Ok(Client {
                    nickname: id,
                    record: r,
                })
            }
        })
    }
}
