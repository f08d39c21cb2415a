//! The token endpoint's grants: client credentials (RFC 6749 §4.4, with licence
//! seats) and refresh with rotation and reuse detection (RFC 6749 §6, RFC 9700
//! §4.14.2).
use super::authenticate::Client;
use super::authenticate::{Denied, Lookup, Refusal};
use super::client_auth::Presented;
use super::params::Params;
use super::scopes::{self, Scopes};
use super::{jwt, Authority, OAuthError};
use crate::crypto::{new_token_pair, token_key, NewToken};
use crate::store::{NewTokens, OpenOutcome, RefreshOutcome, StoreError, TokenIds};
use serde::Serialize;
use std::net::IpAddr;

/// RFC 6749 §5.1 successful response, plus Jim2's refresh-token lifetime.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_token_expires_in: i64,
    pub scope: String,
}

/// What one token request did, filled in as the grant learns it: for metrics and
/// the audit trail.
#[derive(Debug, Default)]
pub struct Attempt {
    /// `client_credentials`, `refresh_token`, or `other` before the grant type is known.
    pub grant_type: &'static str,
    /// The client once authenticated, or the client id a failed authentication named.
    pub client_id: Option<String>,
    /// Why client authentication failed, for the audit trail only.
    pub refusal: Option<Refusal>,
}

impl Attempt {
    pub fn new() -> Self {
        Self {
            grant_type: "other",
            ..Self::default()
        }
    }

    fn denied(&mut self, d: Denied) -> OAuthError {
        if let Some(failed) = d.failed {
            self.client_id = Some(failed.client_id);
            self.refusal = Some(failed.refusal);
        }
        d.error
    }
}

impl Authority {
    /// POST /token: `params` is the parsed form; `presented` the client's
    /// credentials as the request carried them (or why they are malformed, reported
    /// only after the grant type is checked); `ip` the client's address.
    pub async fn token(
        &self,
        params: &Params,
        presented: Result<Presented, OAuthError>,
        ip: Option<IpAddr>,
        attempt: &mut Attempt,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = params.require("grant_type")?;
        let refresh = match grant_type {
            "client_credentials" => None,
            "refresh_token" => Some(params.require("refresh_token")?.to_owned()),
            _ => return Err(OAuthError::UnsupportedGrantType),
        };
        attempt.grant_type = if refresh.is_some() {
            "refresh_token"
        } else {
            "client_credentials"
        };
        let presented = presented?;
        // First from the verified-credential record; if the store finds that record
        // stale (an admin changed the user meanwhile), once more from the table.
        for lookup in [Lookup::Remembered, Lookup::Fresh] {
            let client = self
                .authenticate(presented.clone(), ip, lookup)
                .await
                .map_err(|d| attempt.denied(d))?;
            attempt.client_id = Some(client.nickname.clone());
            let requested = scopes::parse_requested(params.get("scope"), &client.nickname)?;
            let granted = match &refresh {
                None => self.client_credentials(&client, requested).await?,
                Some(token) => self.refresh_token(&client, token, requested).await?,
            };
            match granted {
                Some(response) => return Ok(response),
                None => self.verified.forget(&client.nickname),
            }
        }
        // Changed under us twice in a row: an administrator is editing this client now.
        Err(OAuthError::TemporarilyUnavailable)
    }

    /// A new token pair: the secrets, kept here until the rows' ids make them
    /// texts, and their stored form.
    fn new_tokens(&self) -> ((NewToken, NewToken), NewTokens) {
        let (access, refresh) = new_token_pair();
        let stored = NewTokens {
            access_hash: access.hash,
            refresh_hash: refresh.hash,
            access_ttl: self.access_ttl,
            refresh_ttl: self.refresh_ttl,
            signed: self.jwt.issue,
        };
        ((access, refresh), stored)
    }

    async fn token_response(
        &self,
        client: &Client,
        (access, refresh): (NewToken, NewToken),
        (session_id, ids): (i64, TokenIds),
        scope: String,
    ) -> Result<TokenResponse, OAuthError> {
        let access_token = if self.jwt.issue {
            let grant = jwt::Grant {
                client_id: &client.nickname,
                scope: &scope,
                session_id,
                ids,
                access_hash: &access.hash,
            };
            self.jwt.sign(grant).await.map_err(|e| match e {
                jwt::SignError::Store(e) => OAuthError::Server(e),
                e => OAuthError::Server(StoreError::Invalid(e.to_string())),
            })?
        } else {
            access.text(ids.access)
        };
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.access_ttl,
            refresh_token: refresh.text(ids.refresh),
            refresh_token_expires_in: self.refresh_ttl,
            scope,
        })
    }

    /// RFC 6749 §4.4, with API.md §2's licence seats. None: `client` is stale.
    async fn client_credentials(
        &self,
        client: &Client,
        requested: Option<Scopes>,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let granted = scopes::grant(requested, &client.record.scopes)?;
        let (pair, stored) = self.new_tokens();
        let scope = granted.scopes.to_text();
        let opened = self
            .store
            .open_session(&client.record, scope.clone(), granted.licensed, stored)
            .await?;
        match opened {
            None => Ok(None),
            Some(OpenOutcome::Opened { session_id, ids }) => Ok(Some(
                self.token_response(client, pair, (session_id, ids), scope)
                    .await?,
            )),
            Some(OpenOutcome::NoSeat { retry_after }) => {
                Err(OAuthError::LicenceUnavailable { retry_after })
            }
        }
    }

    /// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2). None:
    /// `client` is stale.
    async fn refresh_token(
        &self,
        client: &Client,
        presented: &str,
        requested: Option<Scopes>,
    ) -> Result<Option<TokenResponse>, OAuthError> {
        let (pair, stored) = self.new_tokens();
        let narrow = Box::new(move |granted: &str| {
            scopes::narrow(requested.clone(), &Scopes::from_text(granted))
                .map(|s| s.to_text())
                .map_err(|e| e.to_string())
        });
        let outcome = self
            .store
            .refresh_session(&client.record, token_key(presented), stored, narrow)
            .await?;
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        match outcome {
            RefreshOutcome::Rotated {
                session_id,
                scope,
                ids,
            } => Ok(Some(
                self.token_response(client, pair, (session_id, ids), scope)
                    .await?,
            )),
            RefreshOutcome::Invalid => Err(OAuthError::InvalidGrant(
                "the refresh token is invalid, expired or revoked".into(),
            )),
            RefreshOutcome::Reused => Err(OAuthError::InvalidGrant(
                "the refresh token was already used; its session has been revoked".into(),
            )),
            RefreshOutcome::Refused(why) => Err(OAuthError::InvalidScope(why)),
        }
    }
}
