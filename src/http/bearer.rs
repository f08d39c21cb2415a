//! RFC 6750 bearer-token authentication for resource routes.
use super::errors::{BearerError, Problem};
use super::{LoggedClient, State};
use crate::crypto::TokenKey;
use crate::oauth::scopes::Scopes;
use crate::store::{Access, AccessGrant, Product};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use std::future::Future;
use std::pin::Pin;

/// A request that carried a live access token.
pub struct Authenticated(pub AccessGrant);

impl Authenticated {
    /// Passes if the token holds any of `accepted`; otherwise 403 naming `challenge`.
    pub fn require(&self, accepted: &[&str], challenge: &'static str) -> Result<(), BearerError> {
        if holds(&self.0.scope, accepted) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(challenge.to_owned()))
        }
    }
}

/// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
fn is_b64token(t: &str) -> bool {
    let body = t.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The token from `Authorization: Bearer <token>` (scheme case-insensitive).
/// RFC 6750 §2.3 query tokens are deliberately ignored.
pub fn parse_authorization(value: Option<&header::HeaderValue>) -> Result<String, BearerError> {
    let Some(value) = value else {
        return Err(BearerError::Missing);
    };
    let v = value
        .to_str()
        .map_err(|_| BearerError::InvalidRequest("the Authorization header is not ASCII"))?;
    // RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    let rest = rest.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme carries no bearer token: treated as no authentication.
        return Err(BearerError::Missing);
    }
    if rest.is_empty() || !is_b64token(rest) {
        return Err(BearerError::InvalidRequest(
            "expected Authorization: Bearer <token> with an RFC 6750 b64token",
        ));
    }
    Ok(rest.to_owned())
}

/// A request's bearer token, parsed but not yet looked up: for handlers that look it
/// up together with their own read, in one trip to the store ([`Bearer::product`]).
pub struct Bearer {
    key: TokenKey,
    req: HttpRequest,
    state: State,
}

impl FromRequest for Bearer {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(bearer(req.clone()))
    }
}

/// The token of the Authorization header and the row it names: an opaque token by
/// its text, a JWT (API.md §10) once its signature or its hash is recognised.
async fn bearer(req: HttpRequest) -> Result<Bearer, BearerError> {
    let token = parse_authorization(single_authorization(&req)?)?;
    let state = req
        .app_data::<State>()
        .cloned()
        .ok_or(BearerError::InvalidToken("the access token is invalid"))?;
    let key = state
        .oauth
        .access_key(&token)
        .await
        .ok_or(BearerError::InvalidToken("the access token is invalid"))?;
    Ok(Bearer { key, req, state })
}

impl Bearer {
    /// Looks the token up and, if it is live, the product `sku`, in one trip to the
    /// store; then checks that the token holds any of `accepted` (else 403 naming
    /// `challenge`).
    pub async fn product(
        self,
        accepted: &'static [&'static str],
        challenge: &'static str,
        sku: String,
    ) -> Result<(Authenticated, Option<Product>), actix_web::Error> {
        let (access, product) = self
            .state
            .store
            .product_for(self.key, sku)
            .await
            .map_err(BearerError::from)?;
        let auth = self.authenticated(access)?;
        auth.require(accepted, challenge)?;
        // The token's lookup already passed; the product's own failure is the
        // resource route's (a Problem), not the token's.
        let product = product.map_err(Problem::from)?;
        Ok((auth, product))
    }

    /// The token's grant, or 401 saying why; notes the client for the access log.
    fn authenticated(&self, grant: Access) -> Result<Authenticated, BearerError> {
        let grant = grant.map_err(BearerError::InvalidToken)?;
        self.req
            .extensions_mut()
            .insert(LoggedClient(grant.client_id.clone()));
        Ok(Authenticated(grant))
    }
}

/// The request's one Authorization header: two are a malformed request (RFC 6750
/// §3.1), not a choice for the server to make.
fn single_authorization(req: &HttpRequest) -> Result<Option<&header::HeaderValue>, BearerError> {
    let mut all = req.headers().get_all(header::AUTHORIZATION);
    let first = all.next();
    match all.next() {
        Some(_) => Err(BearerError::InvalidRequest(
            "more than one Authorization header",
        )),
        None => Ok(first),
    }
}

fn holds(scope: &str, accepted: &[&str]) -> bool {
    let held = Scopes::from_text(scope);
    accepted.iter().any(|s| held.contains(s))
}

impl FromRequest for Authenticated {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let bearer = bearer(req.clone());
        Box::pin(async move {
            let bearer = bearer.await?;
            let grant = bearer.state.store.find_access(bearer.key).await?;
            bearer.authenticated(grant)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn parse(s: &str) -> Result<String, BearerError> {
        parse_authorization(Some(&HeaderValue::from_str(s).unwrap()))
    }

    #[test]
    fn header_forms() {
        assert_eq!(parse("Bearer abc-_.~+/==").unwrap(), "abc-_.~+/==");
        assert_eq!(parse("bEaReR abc").unwrap(), "abc");
        assert_eq!(parse("Bearer   abc").unwrap(), "abc");
        assert!(matches!(
            parse("Bearer"),
            Err(BearerError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse("Bearer "),
            Err(BearerError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse("Bearer a b"),
            Err(BearerError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse("Bearer a,b"),
            Err(BearerError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse("Bearer ==="),
            Err(BearerError::InvalidRequest(_))
        ));
        assert!(matches!(parse("Basic abc"), Err(BearerError::Missing)));
        assert!(matches!(
            parse_authorization(None),
            Err(BearerError::Missing)
        ));
    }
}
