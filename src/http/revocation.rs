//! POST /revoke (RFC 7009) and POST /introspect (RFC 7662); the rules are oauth/tokens.rs.
use super::authentication::authenticate_request;
use super::errors::no_store;
use super::token::read_form;
use super::State;
use crate::crypto::TokenKey;
use crate::oauth::authenticate::Client;
use crate::oauth::tokens::hint;
use crate::oauth::OAuthError;
use crate::store::TokenKind;
use actix_web::{web, HttpRequest, HttpResponse};

/// What both endpoints take: the `token` (hashed), its hint, and the client.
struct TokenRequest {
    /// None: a JWT that is not one of this database's, altered or expired.
    key: Option<TokenKey>,
    hint: Option<TokenKind>,
    client: Client,
}

async fn token_request(
    req: &HttpRequest,
    body: web::Payload,
    state: &State,
) -> Result<TokenRequest, OAuthError> {
    let params = read_form(req, body).await?;
    let token = params.require("token")?;
    let client = authenticate_request(req, &params, state).await?;
    let key = state.oauth.access_key(token).await;
    Ok(TokenRequest {
        key,
        hint: hint(&params),
        client,
    })
}

/// RFC 7009 §2.2: 200 whether or not the token existed.
pub async fn post_revoke(
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Result<HttpResponse, OAuthError> {
    let TokenRequest { key, hint, client } = token_request(&req, body, &state).await?;
    let remote = state.remote_ip(&req).map(|ip| ip.to_string());
    state.oauth.revoke(client, key, hint, remote).await?;
    let mut resp = HttpResponse::Ok().finish();
    no_store(&mut resp);
    Ok(resp)
}

/// RFC 7662 §2.2.
pub async fn post_introspect(
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Result<HttpResponse, OAuthError> {
    let TokenRequest { key, hint, client } = token_request(&req, body, &state).await?;
    let body = state.oauth.introspect(&client, key, hint).await?;
    let mut resp = HttpResponse::Ok().json(body);
    no_store(&mut resp);
    Ok(resp)
}
