//! RFC 6750 bearer-token authentication for resource routes.
use super::{LoggedClient, State};
use crate::crypto::token_key;
use crate::error::BearerError;
use crate::oauth::scopes::Scopes;
use crate::store::sessions::{self, AccessGrant};
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
        let held = Scopes::from_text(&self.0.scope);
        if accepted.iter().any(|s| held.contains(s)) {
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

impl FromRequest for Authenticated {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = parse_authorization(req.headers().get(header::AUTHORIZATION));
        let state = req.app_data::<State>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let token = token?;
            let state = state.ok_or(BearerError::InvalidToken)?;
            let now = state.clock.now();
            let key = token_key(&token);
            let grant = state
                .db
                .read(move |c| sessions::find_access(c, &key, now))
                .await?;
            let grant = grant.ok_or(BearerError::InvalidToken)?;
            req.extensions_mut()
                .insert(LoggedClient(grant.client_id.clone()));
            Ok(Authenticated(grant))
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
