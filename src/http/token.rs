//! POST /token (API.md §3): the form read from the request, the grant run
//! (oauth/grant.rs), and the attempt recorded.
use super::authentication::presented;
use super::body::{media_type, read_limited, BodyError};
use super::errors::no_store;
use super::{events, LoggedClient, State};
use crate::oauth::grant::Attempt;
use crate::oauth::params::Params;
use crate::oauth::OAuthError;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};

/// API.md §3: OAuth endpoint bodies are at most 8 KiB.
pub const OAUTH_BODY_LIMIT: usize = 8 * 1024;

pub async fn method_not_allowed() -> Result<HttpResponse, OAuthError> {
    Err(OAuthError::MethodNotAllowed)
}

/// Reads and parses an OAuth endpoint's form body: content type, size, duplicates.
pub async fn read_form(req: &HttpRequest, body: web::Payload) -> Result<Params, OAuthError> {
    if media_type(req).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let bytes = read_limited(req, body, OAUTH_BODY_LIMIT)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => OAuthError::PayloadTooLarge(OAUTH_BODY_LIMIT),
            BodyError::Broken => {
                OAuthError::InvalidRequest("the request body could not be read".into())
            }
            BodyError::TimedOut(secs) => OAuthError::RequestTimeout(secs),
        })?;
    Params::parse(&bytes)
}

pub async fn post_token(
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Result<HttpResponse, OAuthError> {
    let mut attempt = Attempt::new();
    let ip = state.remote_ip(&req);
    let result = match read_form(&req, body).await {
        Ok(params) => {
            let presented = presented(&req, &params);
            state
                .oauth
                .token(&params, presented, ip, &mut attempt)
                .await
        }
        Err(e) => Err(e),
    };
    if let (Some(client), None) = (&attempt.client_id, attempt.refusal) {
        req.extensions_mut().insert(LoggedClient(client.clone()));
    }
    let remote = ip.map(|ip| ip.to_string());
    events::record_grant(&state, attempt, remote, result.as_ref().map(|_| ()));
    let mut resp = HttpResponse::Ok().json(result?);
    no_store(&mut resp);
    Ok(resp)
}
