//! POST /token: the client-credentials and refresh-token grants (API.md §3).
use super::authentication::{authenticate_request, FailedClient, Lookup};
use super::body::{media_type, read_limited, BodyError};
use super::events::{self, GrantEvent};
use super::{AppState, State};
use crate::crypto::{new_token_pair, token_key, NewToken};
use crate::error::{no_store, OAuthError};
use crate::oauth::params::Params;
use crate::oauth::scopes::{self, Scopes};
use crate::store::sessions::{self, IssuedPair, NewSession, OpenOutcome, RefreshOutcome, TokenIds};
use crate::store::users::ClientRecord;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Serialize;

/// API.md §3: OAuth endpoint bodies are at most 8 KiB.
pub const OAUTH_BODY_LIMIT: usize = 8 * 1024;

/// RFC 6749 §5.1 successful response, plus Jim2's refresh-token lifetime.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    refresh_token_expires_in: i64,
    scope: String,
}

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
    let mut event = GrantEvent::new(&req, &state);
    let result = token_grant(&req, body, &state, &mut event).await;
    if let Some(failed) = req.extensions().get::<FailedClient>() {
        event.client_id = Some(failed.client_id.clone());
        event.refusal = Some(failed.refusal);
    }
    events::record_grant(&state, event, result.as_ref().map(|_| ()));
    let mut resp = HttpResponse::Ok().json(result?);
    no_store(&mut resp);
    Ok(resp)
}

async fn token_grant(
    req: &HttpRequest,
    body: web::Payload,
    state: &State,
    event: &mut GrantEvent,
) -> Result<TokenResponse, OAuthError> {
    let params = read_form(req, body).await?;
    let grant_type = params.require("grant_type")?;
    let refresh = match grant_type {
        "client_credentials" => None,
        "refresh_token" => Some(params.require("refresh_token")?.to_owned()),
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    event.grant_type = if refresh.is_some() {
        "refresh_token"
    } else {
        "client_credentials"
    };
    // First from the verified-credential record; if the writer finds that record
    // stale (an admin changed the user meanwhile), once more from the table.
    for lookup in [Lookup::Remembered, Lookup::Fresh] {
        let client = authenticate_request(req, &params, state, lookup).await?;
        event.client_id = Some(client.nickname.clone());
        let requested = scopes::parse_requested(params.get("scope"), &client.nickname)?;
        let granted = match &refresh {
            None => client_credentials(state, &client.record, requested).await?,
            Some(token) => refresh_token(state, &client.record, token, requested).await?,
        };
        match granted {
            Some(response) => return Ok(response),
            None => state.verified.forget(&client.nickname),
        }
    }
    // Changed under us twice in a row: an administrator is editing this client now.
    Err(OAuthError::TemporarilyUnavailable)
}

/// A new token pair: the secrets, kept here until the rows' ids make them texts, and
/// a maker of the stored form. Expiry is fixed on the writer's thread, from the clock
/// read there (see below).
fn issue_pair(
    state: &AppState,
) -> (
    (NewToken, NewToken),
    impl Fn(i64) -> IssuedPair + Send + 'static,
) {
    let (access, refresh) = new_token_pair();
    let (access_hash, refresh_hash) = (access.hash, refresh.hash);
    let (access_ttl, refresh_ttl) = (state.settings.access_ttl, state.settings.refresh_ttl);
    let at = move |now: i64| IssuedPair {
        access_hash,
        refresh_hash,
        access_expires_at: now + access_ttl,
        refresh_expires_at: now + refresh_ttl,
    };
    ((access, refresh), at)
}

fn token_response(
    state: &AppState,
    (access, refresh): (NewToken, NewToken),
    ids: TokenIds,
    scope: String,
) -> TokenResponse {
    TokenResponse {
        access_token: access.text(ids.access),
        token_type: "Bearer",
        expires_in: state.settings.access_ttl,
        refresh_token: refresh.text(ids.refresh),
        refresh_token_expires_in: state.settings.refresh_ttl,
        scope,
    }
}

/// RFC 6749 §4.4, with API.md §2's licence seats. None: `client` is stale.
async fn client_credentials(
    state: &State,
    client: &ClientRecord,
    requested: Option<Scopes>,
) -> Result<Option<TokenResponse>, OAuthError> {
    let granted = scopes::grant(requested, &client.scopes)?;
    let (pair, tokens_at) = issue_pair(state);
    let (user_id, scope, licensed) = (client.id, granted.scopes.to_text(), granted.licensed);
    let session_scope = scope.clone();
    let (clock, record) = (state.clock.clone(), client.clone());
    // The clock is read on the writer's thread, inside the transaction: a request that
    // queued behind other writes must not judge seats by the time it arrived. The
    // client is confirmed there too: a grant never outlives a change to its user.
    match state
        .db
        .write_with(move |c, w| {
            if !w.clients.confirm(c, &record)? {
                return Ok(None);
            }
            let now = clock.now();
            let session = NewSession {
                user_id,
                scope: session_scope.clone(),
                licensed,
                tokens: tokens_at(now),
            };
            sessions::open(c, &session, now, &mut w.seats).map(Some)
        })
        .await?
    {
        None => Ok(None),
        Some(OpenOutcome::Opened { ids, .. }) => Ok(Some(token_response(state, pair, ids, scope))),
        Some(OpenOutcome::NoSeat { retry_after }) => {
            Err(OAuthError::LicenceUnavailable { retry_after })
        }
    }
}

/// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2). None: `client`
/// is stale.
async fn refresh_token(
    state: &State,
    client: &ClientRecord,
    presented: &str,
    requested: Option<Scopes>,
) -> Result<Option<TokenResponse>, OAuthError> {
    let key = token_key(presented);
    let (pair, tokens_at) = issue_pair(state);
    let (user_id, clock, record) = (client.id, state.clock.clone(), client.clone());
    // As above: a refresh that queued must not revive a session that expired meanwhile.
    let outcome = state
        .db
        .write_with(move |c, w| {
            if !w.clients.confirm(c, &record)? {
                return Ok(None);
            }
            let now = clock.now();
            sessions::refresh(c, &mut w.seats, &key, user_id, &tokens_at(now), now, |t| {
                scopes::narrow(requested.clone(), &Scopes::from_text(&t.scope)).map(|s| s.to_text())
            })
            .map(Some)
        })
        .await?;
    let Some(outcome) = outcome else {
        return Ok(None);
    };
    match outcome? {
        RefreshOutcome::Rotated { scope, ids, .. } => {
            Ok(Some(token_response(state, pair, ids, scope)))
        }
        RefreshOutcome::Invalid => Err(OAuthError::InvalidGrant(
            "the refresh token is invalid, expired or revoked".into(),
        )),
        RefreshOutcome::Reused => Err(OAuthError::InvalidGrant(
            "the refresh token was already used; its session has been revoked".into(),
        )),
    }
}
