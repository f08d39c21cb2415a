//! The store: every operation the rest of tollgate needs from its database, as one
//! typed surface ([`Store`]) that each engine implements. Callers hold an
//! `Arc<dyn Store>` and see domain types ([`model`]) and [`StoreError`], never a
//! connection, a transaction or SQL.
//!
//! Time is the engine's to read: it is given the injected clock when it opens, and
//! reads it where it decides (a grant's seat check reads it inside the grant's
//! transaction, so a grant that queued behind others is judged by the time it runs).
//!
//! Engines: [`sqlite`] (one file, one writer thread with group commit) and
//! [`postgres`] (many processes on one database, API.md §9).
pub mod audit_queue;
pub mod demo;
pub mod error;
pub mod getdata;
pub mod maintenance;
pub mod model;
pub mod postgres;
pub mod script;
pub mod sqlite;

pub use error::StoreError;
pub use model::*;
pub use sqlite::SqliteStore;

use crate::crypto::TokenKey;
use crate::store::getdata::{Page, QueryError};
use crate::store::script::{Script, ScriptError, ScriptReply, ScriptRequest};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A store shared by every handler of one mount.
pub type SharedStore = Arc<dyn Store>;

type R<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- health and upkeep

    /// Whether the database takes writes (answering within `within`) and reads.
    async fn check_ready(&self, within: Duration) -> R<()>;
    /// Queues an audit record; it is written with a later commit ([`Store::flush_audit`]).
    fn audit(&self, record: AuditRecord);
    /// Writes the audit records waiting now, along with a commit; a record that
    /// cannot be written is logged and dropped (the trail must not stop the grants).
    async fn flush_audit(&self) -> R<()>;
    /// Writes one audit record now, in a transaction of its own: for admin commands,
    /// which say so when their change could not be recorded.
    async fn record_now(&self, record: AuditRecord) -> R<()>;
    /// One step of the sweep: deletes up to a step of sessions and tokens dead for
    /// `grace` seconds and of audit rows older than `audit_retention` seconds.
    /// Returns how many rows went and whether more are waiting.
    async fn sweep_step(&self, grace: i64, audit_retention: i64) -> R<(usize, bool)>;
    /// Before the process exits: writes what is waiting and leaves the database tidy.
    fn close(&self);

    // ---- clients and grants

    /// The client record of an API user's nickname, whatever its state.
    async fn find_client(&self, nickname: &str) -> R<Option<ClientRecord>>;
    /// The PBKDF2 iteration count most API users' stored secrets use.
    async fn typical_iterations(&self) -> R<Option<u32>>;
    /// Opens a session for `client` with `scope`, taking a licence seat if
    /// `licensed`. None: `client` is no longer what the table says (an administrator
    /// changed the user), and nothing was written.
    async fn open_session(
        &self,
        client: &ClientRecord,
        scope: String,
        licensed: bool,
        tokens: NewTokens,
    ) -> R<Option<OpenOutcome>>;
    /// Checks and rotates `client`'s refresh token in one transaction; `narrow`
    /// decides the new access token's scope. None: `client` is stale, as above.
    async fn refresh_session(
        &self,
        client: &ClientRecord,
        presented: TokenKey,
        tokens: NewTokens,
        narrow: Narrow,
    ) -> R<Option<RefreshOutcome>>;
    /// RFC 7009: revokes `owner`'s token of either kind (`hint` picks the first look).
    async fn revoke_token(&self, owner: i64, key: TokenKey, hint: Option<TokenKind>) -> R<Revoked>;
    /// RFC 7662: a token of either kind, live or not.
    async fn find_token(&self, key: TokenKey, hint: Option<TokenKind>) -> R<Option<FoundToken>>;
    /// A presented access token.
    async fn find_access(&self, key: TokenKey) -> R<Access>;

    // ---- the product API

    /// A presented access token and, if it is live, one product: in one trip. The
    /// product's read fails on its own, so that the token's scope can be judged first.
    async fn product_for(&self, key: TokenKey, sku: String) -> R<(Access, R<Option<Product>>)>;
    /// A page ordered by sku, and how many matched.
    async fn list_products(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<Product>, i64)>;
    /// Inserts a new product; false if the sku exists.
    async fn add_product(&self, p: Product) -> R<bool>;
    async fn put_product(&self, p: Product, cond: Option<IfMatch>) -> R<Write>;
    async fn delete_product(&self, sku: String, cond: Option<IfMatch>) -> R<Write>;

    // ---- GetData (API.md §7)

    async fn saved_query(&self, name: &str) -> R<Option<SavedQuery>>;
    /// Checks SQL before it is saved: one read-only, permitted SELECT with
    /// positional parameters. Returns how many it takes.
    async fn check_query(&self, sql: &str) -> Result<usize, QueryError>;
    /// How many parameters a saved query's SQL takes (it was checked when saved).
    async fn query_params(&self, sql: &str) -> Result<usize, QueryError>;
    /// Runs a saved query's SQL for one page in the sandbox, within its limits.
    async fn run_query(
        &self,
        sql: &str,
        params: Vec<String>,
        page: Page,
    ) -> Result<serde_json::Value, QueryError>;
    async fn queries(&self) -> R<Vec<SavedQuery>>;
    /// Saves a query; false if the name is taken.
    async fn add_query(&self, q: SavedQuery) -> R<bool>;
    /// Saves a query, replacing one of the same name; true if it is new.
    async fn put_query(&self, q: SavedQuery) -> R<bool>;
    /// False if there was none.
    async fn remove_query(&self, name: &str) -> R<bool>;

    // ---- script URL handlers (API.md §11)

    async fn script(&self, name: &str) -> R<Option<Script>>;
    async fn scripts(&self) -> R<Vec<Script>>;
    /// Saves a handler (its version is the store's to set); `replace`: over one of the
    /// same name. None: the name is taken (by a query, or by a script and not
    /// `replace`); else whether it is new.
    async fn save_script(&self, s: Script, replace: bool) -> R<Option<bool>>;
    /// False if there was none.
    async fn remove_script(&self, name: &str) -> R<bool>;
    /// Runs a handler off the async workers, within the limits of
    /// [`script::runtime`]; a `--writes` handler in one transaction that commits only
    /// if it ends without error.
    async fn run_script(
        &self,
        s: Script,
        request: ScriptRequest,
    ) -> Result<ScriptReply, ScriptError>;

    // ---- licence and sessions

    async fn seats(&self) -> R<Seats>;
    /// Sets the pool size; held sessions keep their seats if it shrinks below them.
    async fn set_seats(&self, seats: i64) -> R<()>;
    /// Live sessions, seat holders first, then by expiry.
    async fn live_sessions(&self) -> R<Vec<SessionRow>>;
    /// Ends one session; false if it was not live.
    async fn revoke_session(&self, id: i64) -> R<bool>;
    /// Ends every live session, or every one of a user; how many ended.
    async fn revoke_sessions(&self, user_id: Option<i64>) -> R<usize>;

    // ---- users and scopes

    async fn user_id(&self, nickname: &str) -> R<Option<i64>>;
    /// Creates a user with its scopes, in one transaction; its id.
    async fn add_user(&self, user: NewUser) -> R<i64>;
    async fn users(&self) -> R<Vec<UserSummary>>;
    /// Disabling ends the user's live sessions: how many ended.
    async fn set_user_enabled(&self, id: i64, enabled: bool) -> R<usize>;
    async fn set_user_scopes(&self, id: i64, scopes: Vec<String>) -> R<()>;
    async fn set_user_secret(&self, id: i64, password_hash: String) -> R<()>;
    /// Removes a user and ends its sessions: how many ended.
    async fn remove_user(&self, id: i64) -> R<usize>;
    async fn scopes(&self) -> R<Vec<ScopeRow>>;
    async fn scope_names(&self) -> R<Vec<String>>;
    /// False if the name is taken.
    async fn add_scope(&self, scope: ScopeRow) -> R<bool>;

    // ---- JWT signing keys (API.md §10)

    /// Every signing key, newest first, the current one (if any) among them.
    async fn signing_keys(&self) -> R<Vec<SigningKey>>;
    /// Stores a new key (its `id`, `created_at` and `retired_at` are the store's to
    /// set). `rotate`: the current key is retired now and the new one signs from the
    /// same commit; otherwise the key is added only when there is no current key
    /// (false: another process made one first). Keys retired before
    /// `forget_retired_before` leave the database in the same transaction.
    async fn add_signing_key(
        &self,
        key: SigningKey,
        rotate: bool,
        forget_retired_before: i64,
    ) -> R<bool>;

    // ---- audit and backup

    /// Rows at or after `since`, optionally of one client, oldest first.
    async fn audit_trail(&self, since: i64, client: Option<String>) -> R<Vec<AuditRecord>>;
    /// One page of the same rows, newest first, and how many there are in all.
    async fn audit_page(
        &self,
        since: i64,
        client: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<AuditRecord>, i64)>;
    /// A consistent copy of the whole database at `to`, where the engine can make one.
    async fn backup(&self, to: &Path) -> R<()>;
}

/// A LIKE pattern (with `ESCAPE '\\'`) for a substring match of `q`: both engines'
/// product search.
pub(crate) fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for ch in q.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
