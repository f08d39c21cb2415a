//! RFC 9068 JWT access tokens (API.md §10): signing at the grant, the JWKS, and
//! recognising the tokens on tollgate's own routes.
//!
//! A JWT's `jti` is the access token's row id and the stored hash of its row
//! (base64url, 40 bytes), so a verified token finds its row as an opaque token does,
//! and its session is checked the same way. The `jti` is no credential: presented
//! as an opaque token it is hashed again and matches nothing. A token is recognised
//! by its signature once per process; after that by its SHA-256 in [`seen::Seen`],
//! as are the tokens this process signed itself.
mod provider;
mod seen;

use crate::clock::SharedClock;
use crate::crypto::{digest, new_signing_key, TokenHash, TokenKey};
use crate::store::{SharedStore, SigningKey, StoreError, TokenIds};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How long a retired key's row is kept after it left the JWKS.
const FORGET_RETIRED_AFTER: i64 = 86_400;

/// RFC 9068 §2.2, and API.md §10's `sid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub client_id: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    pub sid: String,
}

/// What a grant knows when it signs.
pub struct Grant<'a> {
    pub client_id: &'a str,
    pub scope: &'a str,
    pub session_id: i64,
    pub ids: TokenIds,
    pub access_hash: &'a TokenHash,
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the database has no signing key: start the server with --access-token-format jwt, or run `tollgate keys rotate`")]
    NoKey,
    #[error("signing key {0}: {1}")]
    Key(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct Loaded {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

pub struct Jwt {
    store: SharedStore,
    clock: SharedClock,
    /// Grants issue JWTs; otherwise opaque tokens, and JWTs from an earlier run are
    /// still recognised.
    pub issue: bool,
    pub issuer: String,
    pub audience: String,
    /// Seconds: a retired key stays published this long after its retirement.
    access_ttl: i64,
    keys: RwLock<HashMap<i64, Arc<Loaded>>>,
    seen: seen::Seen,
}

pub struct JwtSettings {
    pub issue: bool,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: i64,
}

impl Jwt {
    pub fn new(store: SharedStore, clock: SharedClock, s: JwtSettings) -> Self {
        provider::install();
        Self {
            store,
            clock,
            issue: s.issue,
            issuer: s.issuer,
            audience: s.audience,
            access_ttl: s.access_ttl,
            keys: RwLock::new(HashMap::new()),
            seen: seen::Seen::default(),
        }
    }

    /// At start-up in JWT mode: makes the first key when the database has none.
    pub async fn ensure_key(&self) -> Result<(), StoreError> {
        if !self.issue
            || self
                .store
                .signing_keys()
                .await?
                .iter()
                .any(|k| k.retired_at.is_none())
        {
            return Ok(());
        }
        let made = self.store.add_signing_key(fresh_key(), false, 0).await?;
        if made {
            log::info!("made the first JWT signing key");
        }
        Ok(())
    }

    /// Signs the access token of a grant with the key its transaction named.
    pub async fn sign(&self, g: Grant<'_>) -> Result<String, SignError> {
        let key_id = g.ids.key.ok_or(SignError::NoKey)?;
        let key = self.loaded(key_id).await?.ok_or(SignError::NoKey)?;
        let jti = jti_text(g.ids.access, g.access_hash);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: g.client_id.to_owned(),
            client_id: g.client_id.to_owned(),
            aud: self.audience.clone(),
            exp: g.ids.issued_at + self.access_ttl,
            iat: g.ids.issued_at,
            jti,
            scope: g.scope.to_owned(),
            sid: g.session_id.to_string(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(key.kid.clone());
        let text = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| SignError::Key(key.kid.clone(), e.to_string()))?;
        self.seen.insert(
            digest(text.as_bytes()),
            jti_key(g.ids.access, g.access_hash),
            claims.exp,
        );
        Ok(text)
    }

    /// The row a presented JWT names, when it is one of this database's tokens,
    /// unaltered and not expired; None otherwise.
    pub async fn recognise(&self, text: &str) -> Option<TokenKey> {
        let now = self.clock.now();
        let tag = digest(text.as_bytes());
        if let Some((key, exp)) = self.seen.get(&tag) {
            return (exp > now).then_some(key);
        }
        let header = jsonwebtoken::decode_header(text).ok()?;
        if header.alg != Algorithm::ES256 || header.typ.as_deref() != Some("at+jwt") {
            return None;
        }
        let key = self.by_kid(header.kid.as_deref()?).await?;
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Expiry is judged by tollgate's clock (below), not the system's.
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<Claims>(text, &key.decoding, &v)
            .ok()?
            .claims;
        let row = parse_jti(&claims.jti)?;
        if claims.exp <= now {
            return None;
        }
        self.seen.insert(tag, row, claims.exp);
        Some(row)
    }

    /// RFC 7517 §5: the current key and those retired less than an access-token
    /// lifetime ago (the tokens they signed may still be live).
    pub async fn jwks(&self) -> Result<Value, StoreError> {
        let now = self.clock.now();
        let keys: Vec<Value> = self
            .store
            .signing_keys()
            .await?
            .iter()
            .filter(|k| k.retired_at.is_none_or(|r| r + self.access_ttl > now))
            .map(|k| {
                json!({
                    "kty": "EC", "crv": "P-256", "x": k.public_x, "y": k.public_y,
                    "kid": k.kid, "use": "sig", "alg": "ES256",
                })
            })
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// A key by row id, loading the table when it is not known yet.
    async fn loaded(&self, id: i64) -> Result<Option<Arc<Loaded>>, SignError> {
        if let Some(k) = self.read_keys().get(&id) {
            return Ok(Some(k.clone()));
        }
        self.reload().await?;
        Ok(self.read_keys().get(&id).cloned())
    }

    async fn by_kid(&self, kid: &str) -> Option<Arc<Loaded>> {
        let find = |keys: &HashMap<i64, Arc<Loaded>>| keys.values().find(|k| k.kid == kid).cloned();
        if let Some(k) = find(&self.read_keys()) {
            return Some(k);
        }
        // Another instance or the CLI may have rotated: read the table once more.
        self.reload().await.ok()?;
        find(&self.read_keys())
    }

    async fn reload(&self) -> Result<(), SignError> {
        let rows = self.store.signing_keys().await?;
        let mut loaded = HashMap::with_capacity(rows.len());
        for k in rows {
            let decoding = DecodingKey::from_ec_components(&k.public_x, &k.public_y)
                .map_err(|e| SignError::Key(k.kid.clone(), e.to_string()))?;
            let l = Loaded {
                encoding: EncodingKey::from_ec_der(&k.private_key),
                decoding,
                kid: k.kid,
            };
            loaded.insert(k.id, Arc::new(l));
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<i64, Arc<Loaded>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// A new key pair, named by its RFC 7638 thumbprint.
pub fn fresh_key() -> SigningKey {
    let k = new_signing_key();
    SigningKey {
        id: 0,
        kid: k.thumbprint,
        private_key: k.private_pkcs8,
        public_x: k.x,
        public_y: k.y,
        created_at: 0,
        retired_at: None,
    }
}

/// `tollgate keys rotate`: a new key signs from now on; keys retired over a day
/// ago leave the database.
pub async fn rotate(store: &SharedStore, now: i64) -> Result<SigningKey, StoreError> {
    let key = fresh_key();
    store
        .add_signing_key(key.clone(), true, now - FORGET_RETIRED_AFTER)
        .await?;
    Ok(key)
}

fn jti_text(access_id: i64, hash: &TokenHash) -> String {
    let mut raw = [0u8; 40];
    raw[..8].copy_from_slice(&access_id.to_be_bytes());
    raw[8..].copy_from_slice(hash);
    URL_SAFE_NO_PAD.encode(raw)
}

fn jti_key(access_id: i64, hash: &TokenHash) -> TokenKey {
    TokenKey {
        id: Some(access_id),
        hash: *hash,
    }
}

fn parse_jti(jti: &str) -> Option<TokenKey> {
    let mut raw = [0u8; 40];
    if URL_SAFE_NO_PAD.decode_slice(jti, &mut raw).ok()? != 40 {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&raw[..8]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&raw[8..]);
    Some(jti_key(i64::from_be_bytes(id), &hash))
}

/// Whether a presented token has a JWT's shape (three base64url parts).
pub fn looks_like_jwt(text: &str) -> bool {
    text.bytes().filter(|b| *b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_names_the_row_and_its_stored_hash() {
        let hash = [7u8; 32];
        let t = jti_text(42, &hash);
        assert_eq!(parse_jti(&t), Some(jti_key(42, &hash)));
        assert_eq!(parse_jti("short"), None);
        // Presented as an opaque token, a jti is hashed again and names nothing.
        assert_ne!(crate::crypto::token_key(&t).hash, hash);
    }
}
