//! What the store takes and gives: plain data, the same for every engine.
use crate::crypto::TokenHash;
use serde::Serialize;

/// What client authentication and scope resolution need to know about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: i64,
    pub password_hash: String,
    pub api_user: bool,
    pub enabled: bool,
    /// Allowed scopes with their licensed flag, sorted by name.
    pub scopes: Vec<(String, bool)>,
}

/// The token pair a grant issues, already hashed, and how long each lives. The
/// engine fixes the expiry from the time it reads inside the grant's transaction.
#[derive(Debug, Clone, Copy)]
pub struct NewTokens {
    pub access_hash: TokenHash,
    pub refresh_hash: TokenHash,
    /// Seconds.
    pub access_ttl: i64,
    /// Seconds: the session's sliding expiry.
    pub refresh_ttl: i64,
    /// The access token is to be signed (API.md §10): the engine reads the current
    /// signing key inside the grant's transaction and names it in [`TokenIds::key`].
    pub signed: bool,
}

/// The row ids of a new token pair: they become part of the tokens' texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenIds {
    pub access: i64,
    pub refresh: i64,
    /// When the grant's transaction ran (the access token's `issued_at`).
    pub issued_at: i64,
    /// For a signed access token: the signing key current in the grant's
    /// transaction (its row id), None when the database has none.
    pub key: Option<i64>,
}

/// A JWT signing key (API.md §10): an ECDSA P-256 key pair. The private key is
/// PKCS#8 DER; the public key's affine coordinates are base64url, as a JWK has them.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub id: i64,
    pub kid: String,
    pub private_key: Vec<u8>,
    pub public_x: String,
    pub public_y: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("kid", &self.kid)
            .field("private_key", &"***")
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum OpenOutcome {
    Opened {
        session_id: i64,
        ids: TokenIds,
    },
    /// Every seat is held. `retry_after`: seconds until the first one frees;
    /// None when the pool has no seats.
    NoSeat {
        retry_after: Option<i64>,
    },
}

/// Decides, inside the refresh's transaction, the scope of the new access token
/// from the scope the session was granted: the scope, or why the request is refused.
pub type Narrow = Box<dyn Fn(&str) -> Result<String, String> + Send + Sync>;

#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotated {
        session_id: i64,
        scope: String,
        ids: TokenIds,
    },
    /// Unknown, expired, revoked or another client's token: nothing changed.
    Invalid,
    /// An already exchanged token: the session has just been revoked (RFC 9700 §4.14.2).
    Reused,
    /// [`Narrow`] refused the requested scope (its reason); nothing changed.
    Refused(String),
}

/// What a valid access token grants.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
    pub issued_at: i64,
    pub session_id: i64,
    pub session_expires_at: i64,
    pub seat: bool,
}

/// A presented access token: what it grants, or why it grants nothing (the
/// presenter holds the token, so saying why tells nobody else anything).
pub type Access = Result<AccessGrant, &'static str>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// A token found by its key, for revocation and introspection (RFC 7009, RFC 7662).
#[derive(Debug, Clone)]
pub struct FoundToken {
    pub kind: TokenKind,
    /// The token's row id in its table.
    pub id: i64,
    pub session_id: i64,
    /// The owner's USERS.ID.
    pub user_id: i64,
    pub client_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Usable now: not expired, revoked or exchanged, its session live, its user enabled.
    pub active: bool,
}

/// What a revocation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    /// A refresh token: its session ended, its seat freed, its access tokens died.
    Session(i64),
    /// One access token of the session.
    AccessToken(i64),
    /// Unknown, or another client's token: left alone (RFC 7009 §2.2 answers 200 all the same).
    Nothing,
}

/// The licence: seats in the pool and seats held now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Seats {
    pub total: i64,
    pub held: i64,
}

/// One live session, for `sessions list` and `licences show`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    pub id: i64,
    pub client_id: String,
    pub scope: String,
    pub seat: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub nickname: String,
    pub password_hash: String,
    pub api_user: bool,
    pub scopes: Vec<String>,
}

/// One row of `user list`.
#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub nickname: String,
    pub api_user: bool,
    pub enabled: bool,
    pub scopes: Vec<String>,
    pub live_sessions: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// One scope of the catalogue.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeRow {
    pub name: String,
    pub description: String,
    pub licensed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_cents: i64,
    pub stock: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl Product {
    /// A strong entity tag (RFC 9110 §8.8.3) over every field of the representation.
    pub fn etag(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [&self.sku, &self.name, &self.description] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        for n in [self.price_cents, self.stock, self.updated_at] {
            ctx.update(&n.to_be_bytes());
        }
        // Hex by hand, not a `format!` per byte: this runs on every Bearer GET.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut tag = String::with_capacity(34);
        tag.push('"');
        for &b in &ctx.finish().as_ref()[..16] {
            tag.push(char::from(HEX[usize::from(b >> 4)]));
            tag.push(char::from(HEX[usize::from(b & 15)]));
        }
        tag.push('"');
        tag
    }
}

/// An `If-Match` precondition (RFC 9110 §13.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any current representation.
    Any,
    /// Strong entity tags, quotes included.
    Tags(Vec<String>),
}

impl IfMatch {
    /// Strong comparison: weak tags never match.
    pub fn passes(&self, current: Option<&Product>) -> bool {
        match (self, current) {
            (_, None) => false,
            (IfMatch::Any, Some(_)) => true,
            (IfMatch::Tags(tags), Some(p)) => {
                let tag = p.etag();
                tags.contains(&tag)
            }
        }
    }
}

/// What a conditional write of a product did.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    Created,
    Replaced,
    Deleted,
    NotFound,
    /// `If-Match` failed; the current entity tag, if the product exists.
    PreconditionFailed(Option<String>),
}

/// A published GetData query (API.md §7).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SavedQuery {
    pub name: String,
    pub sql: String,
    pub scope: String,
    pub description: String,
}

/// One row of the audit trail: what happened, when, to whom, from where. Never
/// secrets or tokens.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    /// e.g. `grant.client_credentials`, `grant.refresh_token`, `revoke`, `user.disable`.
    pub event: String,
    /// `ok` or an error code.
    pub outcome: String,
    pub client_id: Option<String>,
    /// Remote address, or `cli` for admin commands.
    pub remote: Option<String>,
    pub detail: String,
}
