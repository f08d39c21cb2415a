//! Client credentials as an OAuth endpoint's request carries them, and client
//! authentication for the revocation and introspection endpoints (the rules are
//! oauth/authenticate.rs); who authenticated goes into the request for the access log.
use super::{LoggedClient, State};
use crate::oauth::authenticate::{Client, Lookup};
use crate::oauth::client_auth::{self, Presented};
use crate::oauth::params::Params;
use crate::oauth::OAuthError;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};

/// The client's credentials: HTTP Basic from the one Authorization header, or the
/// form body's.
pub fn presented(req: &HttpRequest, params: &Params) -> Result<Presented, OAuthError> {
    let mut headers = req.headers().get_all(header::AUTHORIZATION);
    let authorization = headers.next().map(|v| v.as_bytes());
    if headers.next().is_some() {
        return Err(OAuthError::InvalidRequest(
            "more than one Authorization header".into(),
        ));
    }
    client_auth::from_request(authorization, params)
}

/// Authenticates the request's client from the table.
pub async fn authenticate_request(
    req: &HttpRequest,
    params: &Params,
    state: &State,
) -> Result<Client, OAuthError> {
    let presented = presented(req, params)?;
    let client = state
        .oauth
        .authenticate(presented, state.remote_ip(req), Lookup::Fresh)
        .await
        .map_err(|d| d.error)?;
    req.extensions_mut()
        .insert(LoggedClient(client.nickname.clone()));
    Ok(client)
}
