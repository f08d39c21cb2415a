//! [`Store`] on PostgreSQL: each operation one statement, or one transaction, on a
//! pooled connection. The semantics are the SQLite engine's (store/sqlite/), made
//! exact across processes by row locks: a licensed grant locks the licence row, a
//! refresh locks its token's row, a grant re-reads its client's row (FOR SHARE).
//! Grants go to the batcher (batch/) and share a transaction with the grants
//! waiting beside them. The token reads are here; the rest of the surface is
//! carried by users.rs (users, scopes), sessions.rs (seats, sessions, revocation),
//! products.rs, queries.rs and getdata.rs (GetData), scripts.rs, keys.rs (signing
//! keys) and audit.rs.
use super::batch::{self, Job};
use super::rows::*;
use super::{audit, getdata, products, queries, sessions, users};
use super::{PostgresStore, AUDIT_BATCH};
use crate::crypto::TokenKey;
use crate::store::getdata::{Page, QueryError};
use crate::store::model::*;
use crate::store::script::{Script, ScriptError, ScriptReply, ScriptRequest};
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use std::path::Path;
use std::time::Duration;

type R<T> = Result<T, StoreError>;

impl PostgresStore {
    pub(super) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A connection for one statement outside a transaction: the calling worker's
    /// shared one (shared.rs), else one of the pool's. Taken, and read over, within
    /// `self.shared.within`'s bound.
    async fn reader(&self) -> R<super::shared::Reader> {
        match self.shared.reader().await? {
            Some(r) => Ok(r),
            None => Ok(super::shared::Reader::Own(Box::new(self.pool.get().await?))),
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn check_ready(&self, within: Duration) -> R<()> {
        let probe = async {
            let c = self.pool.get().await?;
            c.simple_query("SELECT 1").await?;
            Ok::<_, StoreError>(())
        };
        match tokio::time::timeout(within, probe).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {} ms",
                within.as_millis()
            ))),
        }
    }

    fn audit(&self, record: AuditRecord) {
        self.audit.push(record);
    }

    async fn flush_audit(&self) -> R<()> {
        while !self.audit.is_empty() {
            let mut rows = Vec::new();
            self.audit.take_into(AUDIT_BATCH, &mut rows);
            let c = self.pool.get().await;
            let written = match c {
                Ok(c) => audit::insert(&**c, &rows).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = written {
                log::warn!("{} audit records could not be written: {e}", rows.len());
                return Err(e);
            }
        }
        Ok(())
    }

    async fn record_now(&self, record: AuditRecord) -> R<()> {
        let c = self.pool.get().await?;
        audit::insert(&**c, std::slice::from_ref(&record)).await
    }

    async fn sweep_step(&self, grace: i64, audit_retention: i64) -> R<(usize, bool)> {
        sessions::sweep_step(self, grace, audit_retention).await
    }

    fn close(&self) {
        audit::write_at_close(self);
    }

    async fn find_client(&self, nickname: &str) -> R<Option<ClientRecord>> {
        let c = self.pool.get().await?;
        client_by(&c, None, Some(nickname), false).await
    }

    async fn typical_iterations(&self) -> R<Option<u32>> {
        let c = self.pool.get().await?;
        let mut counts = std::collections::HashMap::<u32, usize>::new();
        for row in c
            .query(r#"SELECT "PASSWORD" FROM users WHERE apiuser = 1"#, &[])
            .await?
        {
            if let Some(n) = crate::crypto::iterations(row.get(0)) {
                *counts.entry(n).or_default() += 1;
            }
        }
        Ok(counts
            .into_iter()
            .max_by_key(|(n, count)| (*count, *n))
            .map(|(n, _)| n))
    }

    async fn open_session(
        &self,
        client: &ClientRecord,
        scope: String,
        licensed: bool,
        tokens: NewTokens,
    ) -> R<Option<OpenOutcome>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job::Open {
            client: client.clone(),
            scope,
            licensed,
            tokens,
            reply,
        };
        self.batch.submit(self, job)?;
        batch::answer(rx).await
    }

    async fn refresh_session(
        &self,
        client: &ClientRecord,
        presented: TokenKey,
        tokens: NewTokens,
        narrow: Narrow,
    ) -> R<Option<RefreshOutcome>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job::Refresh {
            client: client.clone(),
            presented,
            tokens,
            narrow,
            reply,
        };
        self.batch.submit(self, job)?;
        batch::answer(rx).await
    }

    async fn revoke_token(&self, owner: i64, key: TokenKey, hint: Option<TokenKind>) -> R<Revoked> {
        sessions::revoke_token(self, owner, key, hint).await
    }

    async fn find_token(&self, key: TokenKey, hint: Option<TokenKind>) -> R<Option<FoundToken>> {
        self.shared
            .within(async {
                let c = self.reader().await?;
                find_any(&*c, &key, hint, self.now()).await
            })
            .await
    }

    async fn find_access(&self, key: TokenKey) -> R<Access> {
        self.shared
            .within(async {
                let c = self.reader().await?;
                find_access(&*c, &key, self.now()).await
            })
            .await
    }

    async fn product_for(&self, key: TokenKey, sku: String) -> R<(Access, R<Option<Product>>)> {
        let (access, product) = self
            .shared
            .within(async {
                let c = self.reader().await?;
                access_and_product(&*c, &key, &sku, self.now()).await
            })
            .await?;
        Ok((access, Ok(product)))
    }

    async fn list_products(
        &self,
        q: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<Product>, i64)> {
        products::list_products(self, q, limit, offset).await
    }

    async fn add_product(&self, p: Product) -> R<bool> {
        products::add_product(self, p).await
    }

    async fn put_product(&self, p: Product, cond: Option<IfMatch>) -> R<Write> {
        products::put_product(self, p, cond).await
    }

    async fn delete_product(&self, sku: String, cond: Option<IfMatch>) -> R<Write> {
        products::delete_product(self, sku, cond).await
    }

    async fn saved_query(&self, name: &str) -> R<Option<SavedQuery>> {
        queries::saved_query(self, name).await
    }

    async fn check_query(&self, sql: &str) -> Result<usize, QueryError> {
        let mut c = self.pool.get().await.map_err(StoreError::from)?;
        let result = check_in(&mut c, sql, self.query_time_limit).await;
        release(&c).await?;
        result
    }

    async fn query_params(&self, sql: &str) -> Result<usize, QueryError> {
        // Counted from the text, as `query add` checked it.
        getdata::param_count(sql)
    }

    async fn run_query(
        &self,
        sql: &str,
        params: Vec<String>,
        page: Page,
    ) -> Result<serde_json::Value, QueryError> {
        let mut c = self.pool.get().await.map_err(StoreError::from)?;
        let result = run_in(&mut c, sql, &params, page, self.query_time_limit).await;
        release(&c).await?;
        result
    }

    async fn queries(&self) -> R<Vec<SavedQuery>> {
        queries::queries(self).await
    }

    async fn add_query(&self, q: SavedQuery) -> R<bool> {
        queries::add_query(self, q).await
    }

    async fn put_query(&self, q: SavedQuery) -> R<bool> {
        queries::put_query(self, q).await
    }

    async fn remove_query(&self, name: &str) -> R<bool> {
        queries::remove_query(self, name).await
    }

    async fn script(&self, name: &str) -> R<Option<Script>> {
        self.script_row(name).await
    }

    async fn scripts(&self) -> R<Vec<Script>> {
        self.script_rows().await
    }

    async fn save_script(&self, s: Script, replace: bool) -> R<Option<bool>> {
        self.save_script_row(s, replace).await
    }

    async fn remove_script(&self, name: &str) -> R<bool> {
        self.remove_script_row(name).await
    }

    async fn run_script(
        &self,
        s: Script,
        request: ScriptRequest,
    ) -> Result<ScriptReply, ScriptError> {
        self.run_script_here(s, request).await
    }

    async fn seats(&self) -> R<Seats> {
        sessions::seats(self).await
    }

    async fn set_seats(&self, seats: i64) -> R<()> {
        sessions::set_seats(self, seats).await
    }

    async fn live_sessions(&self) -> R<Vec<SessionRow>> {
        sessions::live_sessions(self).await
    }

    async fn revoke_session(&self, id: i64) -> R<bool> {
        sessions::revoke_session(self, id).await
    }

    async fn revoke_sessions(&self, user_id: Option<i64>) -> R<usize> {
        sessions::revoke_sessions(self, user_id).await
    }

    async fn user_id(&self, nickname: &str) -> R<Option<i64>> {
        users::user_id(self, nickname).await
    }

    async fn add_user(&self, user: NewUser) -> R<i64> {
        users::add_user(self, user).await
    }

    async fn users(&self) -> R<Vec<UserSummary>> {
        users::users(self).await
    }

    async fn set_user_enabled(&self, id: i64, enabled: bool) -> R<usize> {
        users::set_user_enabled(self, id, enabled).await
    }

    async fn set_user_scopes(&self, id: i64, scopes: Vec<String>) -> R<()> {
        users::set_user_scopes(self, id, scopes).await
    }

    async fn set_user_secret(&self, id: i64, password_hash: String) -> R<()> {
        users::set_user_secret(self, id, password_hash).await
    }

    async fn remove_user(&self, id: i64) -> R<usize> {
        users::remove_user(self, id).await
    }

    async fn scopes(&self) -> R<Vec<ScopeRow>> {
        users::scopes(self).await
    }

    async fn scope_names(&self) -> R<Vec<String>> {
        users::scope_names(self).await
    }

    async fn add_scope(&self, scope: ScopeRow) -> R<bool> {
        users::add_scope(self, scope).await
    }

    async fn signing_keys(&self) -> R<Vec<SigningKey>> {
        self.list_signing_keys().await
    }

    async fn add_signing_key(&self, key: SigningKey, rotate: bool, forget_before: i64) -> R<bool> {
        self.insert_signing_key(key, rotate, forget_before).await
    }

    async fn audit_trail(&self, since: i64, client: Option<String>) -> R<Vec<AuditRecord>> {
        audit::audit_trail(self, since, client).await
    }

    async fn audit_page(
        &self,
        since: i64,
        client: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<AuditRecord>, i64)> {
        audit::audit_page(self, since, client, limit, offset).await
    }

    async fn backup(&self, _to: &Path) -> R<()> {
        Err(StoreError::Invalid(
            "backup copies SQLite files; for a PostgreSQL database use pg_dump \
             (for example `pg_dump --format=custom --file=tollgate.dump URL`)"
                .into(),
        ))
    }
}
