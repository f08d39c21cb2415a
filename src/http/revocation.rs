//! POST /revoke (RFC 7009) and POST /introspect (RFC 7662).
use super::authentication::{authenticate_request, Client, Lookup};
use super::token::read_form;
use super::State;
use crate::crypto::{token_key, TokenKey};
use crate::error::{no_store, OAuthError};
use crate::store::audit::AuditRecord;
use crate::store::tokens::{self, FoundToken, Revoked, TokenKind};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

/// RFC 7009 §2.1 / RFC 7662 §2.1: `token_type_hint` is a hint, never trusted.
fn hint(params: &crate::oauth::params::Params) -> Option<TokenKind> {
    match params.get("token_type_hint") {
        Some("refresh_token") => Some(TokenKind::Refresh),
        Some("access_token") => Some(TokenKind::Access),
        _ => None,
    }
}

/// What both endpoints take: the `token` (hashed), its hint, and the client.
struct TokenRequest {
    key: TokenKey,
    hint: Option<TokenKind>,
    client: Client,
}

async fn token_request(
    req: &HttpRequest,
    body: web::Payload,
    state: &State,
) -> Result<TokenRequest, OAuthError> {
    let params = read_form(req, body).await?;
    let key = token_key(params.require("token")?);
    let client = authenticate_request(req, &params, state, Lookup::Fresh).await?;
    Ok(TokenRequest {
        key,
        hint: hint(&params),
        client,
    })
}

/// RFC 7009 §2.2: 200 whether or not the token existed. A refresh token ends its
/// session (its access tokens die and its seat frees); an access token dies alone.
/// Another client's token is left alone.
pub async fn post_revoke(
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Result<HttpResponse, OAuthError> {
    let TokenRequest { key, hint, client } = token_request(&req, body, &state).await?;
    let (owner, now) = (client.record.id, state.clock.now());
    let revoked = state
        .db
        .write_with(move |c, w| tokens::revoke(c, &mut w.seats, &key, hint, owner, now))
        .await?;
    let detail = match revoked {
        Revoked::Session(id) => format!("refresh token: session {id} ended"),
        Revoked::AccessToken(id) => format!("access token of session {id}"),
        Revoked::Nothing => "unknown or another client's token: nothing revoked".to_owned(),
    };
    state.audit.record(AuditRecord {
        at: now,
        event: "revoke".into(),
        outcome: "ok".into(),
        client_id: Some(client.nickname),
        remote: state.remote_ip(&req).map(|ip| ip.to_string()),
        detail,
    });
    let mut resp = HttpResponse::Ok().finish();
    no_store(&mut resp);
    Ok(resp)
}

/// RFC 7662 §2.2: `{"active": false}` for anything unknown, dead, or another client's.
pub async fn post_introspect(
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Result<HttpResponse, OAuthError> {
    let TokenRequest { key, hint, client } = token_request(&req, body, &state).await?;
    let now = state.clock.now();
    let found = state
        .db
        .read(move |c| tokens::find_any(c, &key, hint, now))
        .await?;
    let body = match found {
        Some(t) if t.active && t.user_id == client.record.id => active_body(&t),
        _ => json!({"active": false}),
    };
    let mut resp = HttpResponse::Ok().json(body);
    no_store(&mut resp);
    Ok(resp)
}

fn active_body(t: &FoundToken) -> serde_json::Value {
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
