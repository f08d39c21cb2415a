//! What happened at the token endpoint, recorded once per request for metrics and the audit trail.
use super::AppState;
use crate::error::OAuthError;
use crate::store::audit::AuditRecord;
use actix_web::HttpRequest;

/// One token request, filled in as the handler learns more.
#[derive(Debug)]
pub struct GrantEvent {
    /// `client_credentials`, `refresh_token`, or `other` before the grant type is known.
    pub grant_type: &'static str,
    /// Set once the client has authenticated, or to the client id a failed
    /// authentication named.
    pub client_id: Option<String>,
    pub remote: Option<String>,
    /// Why client authentication failed, for the audit trail only.
    pub refusal: Option<super::authentication::Refusal>,
}

impl GrantEvent {
    pub fn new(req: &HttpRequest, state: &AppState) -> Self {
        Self {
            grant_type: "other",
            client_id: None,
            remote: state.remote_ip(req).map(|ip| ip.to_string()),
            refusal: None,
        }
    }
}

/// `ok` or the RFC error code.
pub fn outcome(result: Result<(), &OAuthError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.code(),
    }
}

pub fn record_grant(state: &AppState, event: GrantEvent, result: Result<(), &OAuthError>) {
    let outcome = outcome(result);
    state.metrics.count_grant(event.grant_type, outcome);
    state.audit.record(AuditRecord {
        at: state.clock.now(),
        event: format!("grant.{}", event.grant_type),
        outcome: outcome.to_owned(),
        client_id: event.client_id,
        remote: event.remote,
        // Error descriptions never carry secrets or tokens; a refusal's reason is for
        // the operator, who reads the trail, and never reaches the client.
        detail: match (result.err(), event.refusal) {
            (Some(e), Some(refusal)) => format!("{e}: {}", refusal.reason()),
            (Some(e), None) => e.to_string(),
            (None, _) => String::new(),
        },
    });
}
