//! [`Store`] on SQLite: each operation as a job for the reader threads or the
//! writer thread, over the plain functions of the submodules.
use super::sessions::{IssuedPair, NewSession};
use super::writer::WriterState;
use super::{
    access, audit, keys, products, queries, scopes, script_run, scripts, sessions, sweep, tokens,
    users, SqliteStore, SWEEP_STEP,
};
use crate::crypto::TokenKey;
use crate::store::getdata::{Page, QueryError};
use crate::store::model::*;
use crate::store::script::{Script, ScriptError, ScriptReply, ScriptRequest};
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

type R<T> = Result<T, StoreError>;

/// The stored form of a new pair, its expiry counted from `now`.
fn issued(t: &NewTokens, now: i64, key: Option<i64>) -> IssuedPair {
    IssuedPair {
        key,
        access_hash: t.access_hash,
        refresh_hash: t.refresh_hash,
        access_expires_at: now + t.access_ttl,
        refresh_expires_at: now + t.refresh_ttl,
    }
}

impl SqliteStore {
    /// A change outside the grants (users, seats, sessions, by an administrator):
    /// the writer's seat ledger and confirmed client records reload afterwards.
    async fn admin_write<T, F>(&self, mut f: F) -> R<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection, i64) -> R<T> + Send + 'static,
    {
        let clock = self.clock.clone();
        self.write_with(move |c, w: &mut WriterState| {
            let out = f(c, clock.now());
            w.forget();
            out
        })
        .await
    }

    /// Runs `f` on the blocking pool, for the GetData sandbox's connections.
    async fn sandboxed<T, F>(&self, f: F) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(&super::sandbox::Sandbox) -> Result<T, QueryError> + Send + 'static,
    {
        let sandbox = self.sandbox.clone().ok_or_else(|| {
            QueryError::Store(StoreError::Invalid(
                "this store was opened without a GetData sandbox".into(),
            ))
        })?;
        tokio::task::spawn_blocking(move || f(&sandbox))
            .await
            .map_err(|_| QueryError::Store(StoreError::Cancelled))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn check_ready(&self, within: Duration) -> R<()> {
        self.check_writes(within).await?;
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM licence", [], |r| r.get::<_, i64>(0))?))
            .await
            .map(|_| ())
    }

    fn audit(&self, record: AuditRecord) {
        self.audit.push(record);
    }

    async fn flush_audit(&self) -> R<()> {
        // An empty job makes a group commit, which takes waiting records with it.
        // (Under load the queue is never empty, and the grants' own commits keep up
        // with it: this only serves an idle writer.)
        for _ in 0..self.audit.len().div_ceil(super::writer::AUDIT_PER_GROUP) {
            self.write(|_| Ok(())).await?;
        }
        Ok(())
    }

    async fn record_now(&self, record: AuditRecord) -> R<()> {
        self.write(move |c| audit::insert_rows(c, std::slice::from_ref(&record)))
            .await
    }

    async fn sweep_step(&self, grace: i64, audit_retention: i64) -> R<(usize, bool)> {
        let clock = self.clock.clone();
        self.write(move |c| {
            let now = clock.now();
            let (n, more) = sweep::sweep(c, now, grace)?;
            let pruned = audit::prune(c, now - audit_retention, SWEEP_STEP)?;
            Ok((n + pruned, more || pruned == SWEEP_STEP))
        })
        .await
    }

    fn close(&self) {
        let rows = self.audit.take_all();
        if !rows.is_empty() {
            if let Err(e) = self.write_now(move |c| audit::insert_many(c, &rows)) {
                log::warn!("audit trail write at shutdown failed: {e}");
            }
        }
        if let Err(e) = self.write_now(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?))
        {
            log::warn!("WAL checkpoint at shutdown failed: {e}");
        }
    }

    async fn find_client(&self, nickname: &str) -> R<Option<ClientRecord>> {
        let name = nickname.to_owned();
        self.read(move |c| users::find_client(c, &name)).await
    }

    async fn typical_iterations(&self) -> R<Option<u32>> {
        self.read(users::typical_iterations).await
    }

    async fn open_session(
        &self,
        client: &ClientRecord,
        scope: String,
        licensed: bool,
        tokens: NewTokens,
    ) -> R<Option<OpenOutcome>> {
        let (clock, record) = (self.clock.clone(), client.clone());
        // The client is confirmed inside the grant's transaction, so a grant never
        // outlives a change to its user; the clock is read there too.
        self.write_with(move |c, w| {
            if !w.clients.confirm(c, &record)? {
                return Ok(None);
            }
            let now = clock.now();
            let key = w.keys.for_grant(c, tokens.signed)?;
            let session = NewSession {
                user_id: record.id,
                scope: scope.clone(),
                licensed,
                tokens: issued(&tokens, now, key),
            };
            sessions::open(c, &session, now, &mut w.seats).map(Some)
        })
        .await
    }

    async fn refresh_session(
        &self,
        client: &ClientRecord,
        presented: TokenKey,
        tokens: NewTokens,
        narrow: Narrow,
    ) -> R<Option<RefreshOutcome>> {
        let (clock, record) = (self.clock.clone(), client.clone());
        self.write_with(move |c, w| {
            if !w.clients.confirm(c, &record)? {
                return Ok(None);
            }
            let now = clock.now();
            let key = w.keys.for_grant(c, tokens.signed)?;
            let pair = issued(&tokens, now, key);
            let outcome = sessions::refresh(
                c,
                &mut w.seats,
                &presented,
                record.id,
                &pair,
                now,
                |scope| narrow(scope),
            )?;
            Ok(Some(outcome.unwrap_or_else(RefreshOutcome::Refused)))
        })
        .await
    }

    async fn revoke_token(&self, owner: i64, key: TokenKey, hint: Option<TokenKind>) -> R<Revoked> {
        let clock = self.clock.clone();
        self.write_with(move |c, w| tokens::revoke(c, &mut w.seats, &key, hint, owner, clock.now()))
            .await
    }

    async fn find_token(&self, key: TokenKey, hint: Option<TokenKind>) -> R<Option<FoundToken>> {
        let now = self.now();
        self.read(move |c| tokens::find_any(c, &key, hint, now))
            .await
    }

    async fn find_access(&self, key: TokenKey) -> R<Access> {
        let now = self.now();
        self.read(move |c| access::find_access_or_why(c, &key, now))
            .await
    }

    async fn product_for(&self, key: TokenKey, sku: String) -> R<(Access, R<Option<Product>>)> {
        let now = self.now();
        self.read(move |c| {
            let access = access::find_access_or_why(c, &key, now)?;
            let product = match access {
                Ok(_) => products::get(c, &sku),
                Err(_) => Ok(None),
            };
            Ok((access, product))
        })
        .await
    }

    async fn list_products(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<Product>, i64)> {
        self.read(move |c| products::list(c, q.as_deref(), limit, offset))
            .await
    }

    async fn add_product(&self, p: Product) -> R<bool> {
        self.write(move |c| products::insert(c, &p)).await
    }

    async fn put_product(&self, p: Product, cond: Option<IfMatch>) -> R<Write> {
        self.write(move |c| products::upsert(c, &p, cond.as_ref()))
            .await
    }

    async fn delete_product(&self, sku: String, cond: Option<IfMatch>) -> R<Write> {
        self.write(move |c| products::delete(c, &sku, cond.as_ref()))
            .await
    }

    async fn saved_query(&self, name: &str) -> R<Option<SavedQuery>> {
        let name = name.to_owned();
        self.read(move |c| queries::get(c, &name)).await
    }

    async fn check_query(&self, sql: &str) -> Result<usize, QueryError> {
        let sql = sql.to_owned();
        self.sandboxed(move |s| s.check(&sql)).await
    }

    async fn query_params(&self, sql: &str) -> Result<usize, QueryError> {
        let sql = sql.to_owned();
        self.sandboxed(move |s| s.param_count(&sql)).await
    }

    async fn run_query(
        &self,
        sql: &str,
        params: Vec<String>,
        page: Page,
    ) -> Result<serde_json::Value, QueryError> {
        let sql = sql.to_owned();
        self.sandboxed(move |s| s.run(&sql, &params, page)).await
    }

    async fn queries(&self) -> R<Vec<SavedQuery>> {
        self.read(queries::list).await
    }

    async fn add_query(&self, q: SavedQuery) -> R<bool> {
        let clock = self.clock.clone();
        self.write(move |c| queries::insert(c, &q, clock.now()))
            .await
    }

    async fn put_query(&self, q: SavedQuery) -> R<bool> {
        let clock = self.clock.clone();
        self.write(move |c| queries::upsert(c, &q, clock.now()))
            .await
    }

    async fn remove_query(&self, name: &str) -> R<bool> {
        let name = name.to_owned();
        self.write(move |c| queries::remove(c, &name)).await
    }

    async fn script(&self, name: &str) -> R<Option<Script>> {
        let name = name.to_owned();
        self.read(move |c| scripts::get(c, &name)).await
    }

    async fn scripts(&self) -> R<Vec<Script>> {
        self.read(scripts::list).await
    }

    async fn save_script(&self, s: Script, replace: bool) -> R<Option<bool>> {
        let clock = self.clock.clone();
        self.write(move |c| scripts::save(c, &s, replace, clock.now()))
            .await
    }

    async fn remove_script(&self, name: &str) -> R<bool> {
        let name = name.to_owned();
        self.write(move |c| scripts::remove(c, &name)).await
    }

    async fn run_script(
        &self,
        s: Script,
        request: ScriptRequest,
    ) -> Result<ScriptReply, ScriptError> {
        let sandbox = self.sandbox.clone().ok_or_else(|| {
            StoreError::Invalid("this store was opened without a GetData sandbox".into())
        })?;
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || match s.writes {
            false => script_run::run_reading(sandbox, &s, &request),
            true => script_run::run_writing(&writer, sandbox, s, request),
        })
        .await
        .map_err(|_| ScriptError::Store(StoreError::Cancelled))?
    }

    async fn seats(&self) -> R<Seats> {
        let now = self.now();
        self.read(move |c| {
            Ok(Seats {
                total: sessions::seats_total(c)?,
                held: sessions::seats_held(c, now)?,
            })
        })
        .await
    }

    async fn set_seats(&self, seats: i64) -> R<()> {
        self.admin_write(move |c, _| sessions::set_seats(c, seats))
            .await
    }

    async fn live_sessions(&self) -> R<Vec<SessionRow>> {
        let now = self.now();
        self.read(move |c| sessions::list_live(c, now)).await
    }

    async fn revoke_session(&self, id: i64) -> R<bool> {
        self.admin_write(move |c, now| sessions::revoke_session(c, id, now, None))
            .await
    }

    async fn revoke_sessions(&self, user_id: Option<i64>) -> R<usize> {
        self.admin_write(move |c, now| sessions::revoke_live(c, user_id, now))
            .await
    }

    async fn user_id(&self, nickname: &str) -> R<Option<i64>> {
        let name = nickname.to_owned();
        self.read(move |c| users::id_of(c, &name)).await
    }

    async fn add_user(&self, user: NewUser) -> R<i64> {
        self.admin_write(move |c, now| {
            let tx = super::immediate(c)?;
            let id = users::create(&tx, &user, now)?;
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    async fn users(&self) -> R<Vec<UserSummary>> {
        let now = self.now();
        self.read(move |c| users::list(c, now)).await
    }

    async fn set_user_enabled(&self, id: i64, enabled: bool) -> R<usize> {
        self.admin_write(move |c, now| users::set_enabled(c, id, enabled, now))
            .await
    }

    async fn set_user_scopes(&self, id: i64, scopes: Vec<String>) -> R<()> {
        self.admin_write(move |c, _| users::set_scopes(c, id, &scopes))
            .await
    }

    async fn set_user_secret(&self, id: i64, password_hash: String) -> R<()> {
        self.admin_write(move |c, _| users::set_password(c, id, &password_hash))
            .await
    }

    async fn remove_user(&self, id: i64) -> R<usize> {
        self.admin_write(move |c, now| users::remove(c, id, now))
            .await
    }

    async fn scopes(&self) -> R<Vec<ScopeRow>> {
        self.read(scopes::scopes).await
    }

    async fn scope_names(&self) -> R<Vec<String>> {
        self.read(scopes::scope_names).await
    }

    async fn add_scope(&self, scope: ScopeRow) -> R<bool> {
        self.admin_write(move |c, _| scopes::add_scope(c, &scope))
            .await
    }

    async fn signing_keys(&self) -> R<Vec<SigningKey>> {
        self.read(keys::list).await
    }

    async fn add_signing_key(&self, key: SigningKey, rotate: bool, forget_before: i64) -> R<bool> {
        self.admin_write(move |c, now| keys::add(c, &key, rotate, forget_before, now))
            .await
    }

    async fn audit_trail(&self, since: i64, client: Option<String>) -> R<Vec<AuditRecord>> {
        self.read(move |c| audit::query(c, since, client.as_deref()))
            .await
    }

    async fn audit_page(
        &self,
        since: i64,
        client: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<AuditRecord>, i64)> {
        self.read(move |c| audit::page(c, since, client.as_deref(), limit, offset))
            .await
    }

    async fn backup(&self, to: &Path) -> R<()> {
        let target = to
            .to_str()
            .ok_or_else(|| StoreError::Invalid("the backup path must be valid UTF-8".into()))?
            .to_owned();
        // A consistent copy through SQLite's `VACUUM INTO`, safe while a server runs.
        self.write_now(move |c| {
            c.execute("VACUUM INTO ?1", [target])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::store::sqlite::{writer::AUDIT_PER_GROUP, Options};
    use std::sync::Arc;

    /// A flush writes every waiting record, over several group commits, in order.
    #[tokio::test]
    async fn a_flush_writes_every_record_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            create: true,
            ..Options::command()
        };
        let store =
            SqliteStore::open(&dir.path().join("a.db"), Arc::new(SystemClock), &options).unwrap();
        let n = 2 * AUDIT_PER_GROUP + 7;
        for at in 0..n as i64 {
            store.audit(AuditRecord {
                at,
                event: "grant.client_credentials".into(),
                outcome: "ok".into(),
                client_id: Some("demo".into()),
                remote: None,
                detail: String::new(),
            });
        }
        store.flush_audit().await.unwrap();
        let ats = store
            .read(|c| {
                let mut st = c.prepare("SELECT at FROM audit ORDER BY id")?;
                let v = st.query_map([], |r| r.get::<_, i64>(0))?;
                Ok(v.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(ats, (0..n as i64).collect::<Vec<_>>());
        assert!(store.audit.is_empty());
    }
}
