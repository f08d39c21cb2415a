//! What happened at the token endpoint, recorded once per request in the metrics and
//! the audit trail.
use super::AppState;
use crate::oauth::grant::Attempt;
use crate::oauth::OAuthError;
use crate::store::AuditRecord;

/// `ok` or the RFC error code.
pub fn outcome(result: Result<(), &OAuthError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => e.code(),
    }
}

pub fn record_grant(
    state: &AppState,
    attempt: Attempt,
    remote: Option<String>,
    result: Result<(), &OAuthError>,
) {
    let outcome = outcome(result);
    state.metrics.count_grant(attempt.grant_type, outcome);
    state.store.audit(AuditRecord {
        at: state.clock.now(),
        event: format!("grant.{}", attempt.grant_type),
        outcome: outcome.to_owned(),
        client_id: attempt.client_id,
        remote,
        // Error descriptions never carry secrets or tokens; a refusal's reason is for
        // the operator, who reads the trail, and never reaches the client.
        detail: match (result.err(), attempt.refusal) {
            (Some(e), Some(refusal)) => format!("{e}: {}", refusal.reason()),
            (Some(e), None) => e.to_string(),
            (None, _) => String::new(),
        },
    });
}
