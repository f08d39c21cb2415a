//! What an administrator does, for both front ends: the command line (API.md §6) and
//! the admin API (§8). Each operation checks its input, acts through the store's
//! surface and records the change in the audit trail with whoever acted, so the two
//! front ends cannot drift apart.
mod error;
mod keys;
mod scripts;
mod users;

pub use error::AdminError;
pub use keys::KeyRow;
pub use users::check_user_name;

use crate::crypto::Secret;
use crate::oauth::scopes::valid_token;
use crate::store::getdata::{is_query_name, RESERVED_QUERY_NAME};
use crate::store::{AuditRecord, SavedQuery, ScopeRow, Seats, SessionRow, SharedStore};

type R<T> = Result<T, AdminError>;

/// The largest licence pool an administrator can set.
pub const MAX_SEATS: i64 = 1_000_000;

/// Who acts: an admin client over HTTP, or someone at the host's shell.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The admin client's id; None for the command line.
    pub client_id: Option<String>,
    /// The remote address, or `cli`.
    pub address: String,
}

impl Actor {
    pub fn cli() -> Self {
        Self {
            client_id: None,
            address: "cli".to_owned(),
        }
    }
}

/// A user to create: its secret is made here unless one is given.
pub struct UserRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub api_user: bool,
    pub secret: Option<Secret>,
}

/// One administrator's session of work on a store.
pub struct Admin {
    store: SharedStore,
    actor: Actor,
    now: i64,
    iterations: u32,
}

impl Admin {
    /// `iterations`: PBKDF2 iterations for the secrets it makes; `now`: Unix seconds.
    pub fn new(store: SharedStore, actor: Actor, now: i64, iterations: u32) -> Self {
        Self {
            store,
            actor,
            now,
            iterations,
        }
    }

    /// The audit trail names whoever acted: the admin client over HTTP; on the
    /// command line (no client) the user acted on, as it always has.
    async fn record(&self, event: &str, subject: &str, detail: &str) {
        let client_id = self
            .actor
            .client_id
            .clone()
            .or_else(|| (!subject.is_empty()).then(|| subject.to_owned()));
        let detail = match (subject.is_empty(), detail.is_empty()) {
            (true, _) => detail.to_owned(),
            (false, true) => subject.to_owned(),
            (false, false) => format!("{subject}: {detail}"),
        };
        let record = AuditRecord {
            at: self.now,
            event: event.to_owned(),
            outcome: "ok".to_owned(),
            client_id,
            remote: Some(self.actor.address.clone()),
            detail,
        };
        if let Err(e) = self.store.record_now(record).await {
            log::warn!("could not record {event} in the audit trail: {e}");
        }
    }

    // Licences and sessions.

    pub async fn seats(&self) -> R<Seats> {
        Ok(self.store.seats().await?)
    }

    pub async fn set_seats(&self, seats: i64) -> R<Seats> {
        if !(0..=MAX_SEATS).contains(&seats) {
            return Err(AdminError::invalid(
                "seats",
                format!("must be an integer from 0 to {MAX_SEATS}"),
            ));
        }
        let before = self.store.seats().await?;
        self.store.set_seats(seats).await?;
        self.record(
            "licences.set",
            "",
            &format!("{} -> {seats} seats", before.total),
        )
        .await;
        Ok(self.store.seats().await?)
    }

    pub async fn sessions(&self) -> R<Vec<SessionRow>> {
        Ok(self.store.live_sessions().await?)
    }

    /// Ends one live session: its tokens die and its seat frees.
    pub async fn end_session(&self, id: i64) -> R<()> {
        if !self.store.revoke_session(id).await? {
            return Err(AdminError::NotFound(format!("no live session {id}")));
        }
        self.record("sessions.revoke", "", &format!("session {id}"))
            .await;
        Ok(())
    }

    /// Ends every live session, or every one of `client`; how many ended.
    pub async fn end_sessions(&self, client: Option<&str>) -> R<usize> {
        let user_id = match client {
            Some(name) => Some(self.user_id(name).await?),
            None => None,
        };
        let ended = self.store.revoke_sessions(user_id).await?;
        let whose = client.map_or(String::new(), |name| format!(" of {name}"));
        self.record(
            "sessions.revoke",
            client.unwrap_or_default(),
            &format!("{ended} live session(s){whose}"),
        )
        .await;
        Ok(ended)
    }

    // Scopes and the audit trail.

    pub async fn scopes(&self) -> R<Vec<ScopeRow>> {
        Ok(self.store.scopes().await?)
    }

    pub async fn add_scope(&self, row: ScopeRow) -> R<()> {
        if row.name.len() > 64 || !valid_token(&row.name) {
            return Err(AdminError::invalid(
                "name",
                format!(
                    "scope name {:?}: use 1 to 64 printable ASCII characters without spaces, '\"' or '\\' (RFC 6749 §3.3)",
                    row.name
                ),
            ));
        }
        let (name, licensed) = (row.name.clone(), row.licensed);
        if !self.store.add_scope(row).await? {
            return Err(AdminError::Conflict(format!(
                "a scope named {name:?} exists already"
            )));
        }
        let licensed = if licensed { "yes" } else { "no" };
        self.record("scope.add", "", &format!("{name} (licensed: {licensed})"))
            .await;
        Ok(())
    }

    /// The trail since `since`, of one client or all: one page newest first, and the
    /// count of all that match.
    pub async fn audit(
        &self,
        since: i64,
        client: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<AuditRecord>, i64)> {
        Ok(self.store.audit_page(since, client, limit, offset).await?)
    }

    // GetData queries.

    pub async fn queries(&self) -> R<Vec<SavedQuery>> {
        Ok(self.store.queries().await?)
    }

    /// Checks and saves a query. `replace`: an existing one of the name is replaced
    /// (else a conflict). Returns whether it is new and how many parameters it takes.
    pub async fn save_query(&self, q: SavedQuery, replace: bool) -> R<(bool, usize)> {
        if !is_query_name(&q.name) {
            return Err(AdminError::invalid(
                "name",
                format!(
                    "query name {:?}: use 1 to 64 of A-Z a-z 0-9 _ - (and not {RESERVED_QUERY_NAME:?})",
                    q.name
                ),
            ));
        }
        if q.description.chars().count() > 2000 {
            return Err(AdminError::invalid(
                "description",
                "must be at most 2000 characters",
            ));
        }
        if !self.store.scope_names().await?.contains(&q.scope) {
            return Err(AdminError::invalid(
                "scope",
                format!("unknown scope {:?}", q.scope),
            ));
        }
        if self.store.script(&q.name).await?.is_some() {
            return Err(AdminError::Conflict(format!(
                "{:?} is the name of a script handler; a name is a query or a script, never \
                 both (remove the script first, or choose another name)",
                q.name
            )));
        }
        let sql = q.sql.trim().to_owned();
        let n = self
            .store
            .check_query(&sql)
            .await
            .map_err(|e| AdminError::invalid("sql", format!("query {}: {e}", q.name)))?;
        let q = SavedQuery { sql, ..q };
        let created = if replace {
            self.store.put_query(q.clone()).await?
        } else if self.store.add_query(q.clone()).await? {
            true
        } else {
            return Err(AdminError::Conflict(format!(
                "a query named {:?} exists already; remove it first",
                q.name
            )));
        };
        let event = if created {
            "query.add"
        } else {
            "query.replace"
        };
        self.record(
            event,
            "",
            &format!("{} (scope {}, {n} parameter(s))", q.name, q.scope),
        )
        .await;
        Ok((created, n))
    }

    pub async fn remove_query(&self, name: &str) -> R<()> {
        if !self.store.remove_query(name).await? {
            return Err(AdminError::NotFound(format!("no query named {name:?}")));
        }
        self.record("query.remove", "", name).await;
        Ok(())
    }
}
