//! Revocation (RFC 7009) and introspection (RFC 7662) for an authenticated client.
use super::authenticate::Client;
use super::params::Params;
use super::{Authority, OAuthError};
use crate::crypto::TokenKey;
use crate::store::{AuditRecord, FoundToken, Revoked, TokenKind};
use serde_json::{json, Value};

/// RFC 7009 §2.1 / RFC 7662 §2.1: `token_type_hint` is a hint, never trusted.
pub fn hint(params: &Params) -> Option<TokenKind> {
    match params.get("token_type_hint") {
        Some("refresh_token") => Some(TokenKind::Refresh),
        Some("access_token") => Some(TokenKind::Access),
        _ => None,
    }
}

impl Authority {
    /// RFC 7009 §2.2: whether or not the token existed, the answer is the same. A
    /// refresh token ends its session (its access tokens die and its seat frees); an
    /// access token dies alone. Another client's token is left alone. The audit
    /// trail says which it was; `remote` is the client's address there.
    pub async fn revoke(
        &self,
        client: Client,
        key: Option<TokenKey>,
        hint: Option<TokenKind>,
        remote: Option<String>,
    ) -> Result<(), OAuthError> {
        let at = self.clock.now();
        let revoked = match key {
            Some(key) => self.store.revoke_token(client.record.id, key, hint).await?,
            None => Revoked::Nothing,
        };
        let detail = match revoked {
            Revoked::Session(id) => format!("refresh token: session {id} ended"),
            Revoked::AccessToken(id) => format!("access token of session {id}"),
            Revoked::Nothing => "unknown or another client's token: nothing revoked".to_owned(),
        };
        self.store.audit(AuditRecord {
            at,
            event: "revoke".into(),
            outcome: "ok".into(),
            client_id: Some(client.nickname),
            remote,
            detail,
        });
        Ok(())
    }

    /// RFC 7662 §2.2: `{"active": false}` for anything unknown, dead, or another client's.
    pub async fn introspect(
        &self,
        client: &Client,
        key: Option<TokenKey>,
        hint: Option<TokenKind>,
    ) -> Result<Value, OAuthError> {
        let Some(key) = key else {
            return Ok(json!({"active": false}));
        };
        Ok(match self.store.find_token(key, hint).await? {
            Some(t) if t.active && t.user_id == client.record.id => active_body(&t),
            _ => json!({"active": false}),
        })
    }
}

fn active_body(t: &FoundToken) -> Value {
    json!({
        "active": true,
        "scope": t.scope,
        "client_id": t.client_id,
        // RFC 7662 §2.2 takes token types from RFC 6749 §5.1; refresh tokens have none there.
        "token_type": match t.kind { TokenKind::Access => "Bearer", TokenKind::Refresh => "refresh_token" },
        "exp": t.expires_at,
        "iat": t.issued_at,
        "sub": t.client_id,
    })
}
