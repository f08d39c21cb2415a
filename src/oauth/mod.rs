//! The OAuth rules and the grants, with no HTTP framework and no SQL: request
//! parameters, client credentials and their authentication, scopes, the throttle,
//! and the token, refresh, revocation and introspection logic as plain functions
//! over the store's surface. Errors are plain values ([`OAuthError`]); the HTTP
//! layer turns them into responses.
pub mod authenticate;
pub mod client_auth;
pub mod error;
pub mod grant;
pub mod jwt;
pub mod params;
pub mod pbkdf2_gate;
pub mod scopes;
pub mod throttle;
pub mod tokens;
pub mod verified;

pub use error::OAuthError;

use crate::clock::SharedClock;
use crate::store::SharedStore;
use pbkdf2_gate::Verifier;
use std::sync::Arc;
use throttle::Throttle;
use verified::VerifiedCredentials;

/// Everything the grants need for one database: its store, the clock, the caches
/// and guards of client authentication, and the token lifetimes.
pub struct Authority {
    pub store: SharedStore,
    pub clock: SharedClock,
    /// Recently verified credentials: no PBKDF2 and no read for a returning client.
    pub verified: VerifiedCredentials,
    /// Bounded, single-flight PBKDF2.
    pub verifier: Arc<Verifier>,
    /// Brute-force throttling of client authentication.
    pub throttle: Throttle,
    /// Verified when the client is unknown, so that timing does not tell.
    pub dummy_hash: String,
    /// Seconds.
    pub access_ttl: i64,
    /// Seconds.
    pub refresh_ttl: i64,
    /// JWT access tokens (API.md §10): signing, the JWKS, recognising them.
    pub jwt: jwt::Jwt,
}

impl Authority {
    /// How a presented access token is looked up: an opaque token by its text, a
    /// JWT by the row its verified `jti` names. None: a JWT that is not one of this
    /// database's, or was altered, or has expired.
    pub async fn access_key(&self, text: &str) -> Option<crate::crypto::TokenKey> {
        if jwt::looks_like_jwt(text) {
            self.jwt.recognise(text).await
        } else {
            Some(crate::crypto::token_key(text))
        }
    }
}
