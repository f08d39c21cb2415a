//! What the admin API reads and answers: its JSON bodies, field by field.
use crate::store::{AuditRecord, SessionRow, UserSummary};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeatsIn {
    pub(super) seats: i64,
}

#[derive(Serialize)]
pub(super) struct SessionOut {
    pub(super) id: i64,
    pub(super) client_id: String,
    pub(super) scope: String,
    pub(super) seat: bool,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
}

impl From<SessionRow> for SessionOut {
    fn from(s: SessionRow) -> Self {
        Self {
            id: s.id,
            client_id: s.client_id,
            scope: s.scope,
            seat: s.seat,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Serialize)]
pub(super) struct UserOut {
    pub(super) client_id: String,
    pub(super) api_user: bool,
    pub(super) scopes: Vec<String>,
    pub(super) disabled: bool,
    pub(super) created_at: i64,
}

impl From<UserSummary> for UserOut {
    fn from(u: UserSummary) -> Self {
        Self {
            client_id: u.nickname,
            api_user: u.api_user,
            scopes: u.scopes,
            disabled: !u.enabled,
            created_at: u.created_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserIn {
    pub(super) client_id: String,
    #[serde(default = "default_scopes")]
    pub(super) scopes: Vec<String>,
    #[serde(default = "yes")]
    pub(super) api_user: bool,
}

pub(super) fn default_scopes() -> Vec<String> {
    vec!["view".to_owned()]
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Serialize)]
pub(super) struct AuditOut {
    pub(super) at: i64,
    pub(super) client_id: Option<String>,
    pub(super) event: String,
    pub(super) outcome: String,
    pub(super) address: Option<String>,
    pub(super) detail: String,
}

impl From<AuditRecord> for AuditOut {
    fn from(r: AuditRecord) -> Self {
        Self {
            at: r.at,
            client_id: r.client_id,
            event: r.event,
            outcome: r.outcome,
            address: r.remote,
            detail: r.detail,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryIn {
    pub(super) sql: String,
    #[serde(default = "view")]
    pub(super) scope: String,
    #[serde(default)]
    pub(super) description: String,
}

pub(super) fn view() -> String {
    "view".to_owned()
}
