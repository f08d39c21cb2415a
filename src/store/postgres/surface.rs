//! [`Store`] on PostgreSQL: each operation one statement, or one transaction, on a
//! pooled connection. The semantics are the SQLite engine's (store/sqlite/), made
//! exact across processes by row locks: a licensed grant locks the licence row, a
//! refresh locks its token's row, a grant re-reads its client's row (FOR SHARE).
//! Grants go to the batcher (batch.rs) and share a transaction with the grants
//! waiting beside them.
use super::batch::{self, Job};
use super::rows::*;
use super::{getdata, PostgresStore, AUDIT_BATCH, SWEEP_STEP};
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

    /// Writes `rows` in one INSERT.
    async fn insert_audit<C: tokio_postgres::GenericClient>(c: &C, rows: &[AuditRecord]) -> R<()> {
        let at: Vec<i64> = rows.iter().map(|r| r.at).collect();
        let event: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
        let outcome: Vec<&str> = rows.iter().map(|r| r.outcome.as_str()).collect();
        let client: Vec<Option<&str>> = rows.iter().map(|r| r.client_id.as_deref()).collect();
        let remote: Vec<Option<&str>> = rows.iter().map(|r| r.remote.as_deref()).collect();
        let detail: Vec<&str> = rows.iter().map(|r| r.detail.as_str()).collect();
        c.execute(
            "INSERT INTO audit (at, event, outcome, client_id, remote, detail)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])",
            &[&at, &event, &outcome, &client, &remote, &detail],
        )
        .await?;
        Ok(())
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
                Ok(c) => Self::insert_audit(&**c, &rows).await,
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
        Self::insert_audit(&**c, std::slice::from_ref(&record)).await
    }

    async fn sweep_step(&self, grace: i64, audit_retention: i64) -> R<(usize, bool)> {
        let now = self.now();
        let cutoff = now - grace;
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let sessions = tx
            .execute(
                "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
                     WHERE expires_at < $1 OR revoked_at < $1 ORDER BY id LIMIT $2)",
                &[&cutoff, &SWEEP_STEP],
            )
            .await?;
        let access = tx
            .execute(
                "DELETE FROM access_tokens WHERE id IN (SELECT a.id FROM access_tokens a
                     LEFT JOIN sessions s ON s.id = a.session_id
                     WHERE a.issued_at < $1 AND (s.id IS NULL OR a.expires_at < $1 OR a.revoked_at < $1)
                     ORDER BY a.id LIMIT $2)",
                &[&cutoff, &SWEEP_STEP],
            )
            .await?;
        let refresh = tx
            .execute(
                "DELETE FROM refresh_tokens WHERE id IN (SELECT r.id FROM refresh_tokens r
                     LEFT JOIN sessions s ON s.id = r.session_id
                     WHERE r.issued_at < $1 AND s.id IS NULL ORDER BY r.id LIMIT $2)",
                &[&cutoff, &SWEEP_STEP],
            )
            .await?;
        let pruned = tx
            .execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < $1 ORDER BY at LIMIT $2)",
                &[&(now - audit_retention), &SWEEP_STEP],
            )
            .await?;
        tx.commit().await?;
        let step = SWEEP_STEP as u64;
        let more = [sessions, access, refresh, pruned].contains(&step);
        Ok(((sessions + access + refresh + pruned) as usize, more))
    }

    fn close(&self) {
        // The pool's connections belong to the runtime that is ending: the waiting
        // audit records go over a connection of their own, on a thread of their own.
        let rows = self.audit.take_all();
        if rows.is_empty() {
            return;
        }
        let config = self.config.clone();
        let written = std::thread::spawn(move || -> R<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            rt.block_on(async move {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                for chunk in rows.chunks(AUDIT_BATCH) {
                    Self::insert_audit(&client, chunk).await?;
                }
                Ok(())
            })
        })
        .join();
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("audit trail write at shutdown failed: {e}"),
            Err(_) => log::warn!("audit trail write at shutdown failed: its thread panicked"),
        }
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
        let c = self.pool.get().await?;
        let now = self.now();
        Ok(match find_any(&c, &key, hint, now).await? {
            Some(t) if t.user_id == owner => match t.kind {
                TokenKind::Refresh => {
                    revoke_session_in(&c, t.session_id, now).await?;
                    Revoked::Session(t.session_id)
                }
                TokenKind::Access => {
                    c.execute(
                        "UPDATE access_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                        &[&t.id, &now],
                    )
                    .await?;
                    Revoked::AccessToken(t.session_id)
                }
            },
            _ => Revoked::Nothing,
        })
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
        let c = self.pool.get().await?;
        let pattern = crate::store::like_pattern(q.as_deref().unwrap_or(""));
        // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does the same.
        let filter = r"sku ILIKE $1 ESCAPE '\' OR name ILIKE $1 ESCAPE '\'";
        let total: i64 = c
            .query_one(
                &format!("SELECT count(*) FROM products WHERE {filter}"),
                &[&pattern],
            )
            .await?
            .get(0);
        let items = c
            .query(
                &format!(
                    r#"SELECT {PRODUCT_COLUMNS} FROM products WHERE {filter}
                       ORDER BY sku COLLATE "C" LIMIT $2 OFFSET $3"#
                ),
                &[&pattern, &limit, &offset],
            )
            .await?
            .iter()
            .map(product)
            .collect();
        Ok((items, total))
    }

    async fn add_product(&self, p: Product) -> R<bool> {
        let c = self.pool.get().await?;
        let n = c
            .execute(
                &format!(
                    "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (sku) DO NOTHING"
                ),
                &[
                    &p.sku,
                    &p.name,
                    &p.description,
                    &p.price_cents,
                    &p.stock,
                    &p.updated_at,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    async fn put_product(&self, p: Product, cond: Option<IfMatch>) -> R<Write> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let current = get_product(&tx, &p.sku, true).await?;
        if let Some(cond) = &cond {
            if !cond.passes(current.as_ref()) {
                return Ok(Write::PreconditionFailed(current.map(|c| c.etag())));
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description,
                   price_cents = excluded.price_cents, stock = excluded.stock, updated_at = excluded.updated_at"
            ),
            &[
                &p.sku,
                &p.name,
                &p.description,
                &p.price_cents,
                &p.stock,
                &p.updated_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(if current.is_some() {
            Write::Replaced
        } else {
            Write::Created
        })
    }

    async fn delete_product(&self, sku: String, cond: Option<IfMatch>) -> R<Write> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let current = get_product(&tx, &sku, true).await?;
        if let Some(cond) = &cond {
            if !cond.passes(current.as_ref()) {
                return Ok(Write::PreconditionFailed(current.map(|c| c.etag())));
            }
        }
        if current.is_none() {
            return Ok(Write::NotFound);
        }
        tx.execute("DELETE FROM products WHERE sku = $1", &[&sku])
            .await?;
        tx.commit().await?;
        Ok(Write::Deleted)
    }

    async fn saved_query(&self, name: &str) -> R<Option<SavedQuery>> {
        let c = self.pool.get().await?;
        Ok(c.query_opt(
            "SELECT name, sql, scope, description FROM queries WHERE name = $1",
            &[&name],
        )
        .await?
        .as_ref()
        .map(saved_query))
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
        let c = self.pool.get().await?;
        Ok(c.query(
            r#"SELECT name, sql, scope, description FROM queries ORDER BY name COLLATE "C""#,
            &[],
        )
        .await?
        .iter()
        .map(saved_query)
        .collect())
    }

    async fn add_query(&self, q: SavedQuery) -> R<bool> {
        let c = self.pool.get().await?;
        Ok(c.execute(
            "INSERT INTO queries (name, sql, scope, description, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING",
            &[&q.name, &q.sql, &q.scope, &q.description, &self.now()],
        )
        .await?
            == 1)
    }

    async fn put_query(&self, q: SavedQuery) -> R<bool> {
        let c = self.pool.get().await?;
        Ok(c.query_one(
            "INSERT INTO queries (name, sql, scope, description, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE
             SET sql = excluded.sql, scope = excluded.scope, description = excluded.description
             RETURNING (xmax = 0)",
            &[&q.name, &q.sql, &q.scope, &q.description, &self.now()],
        )
        .await?
        .get(0))
    }

    async fn remove_query(&self, name: &str) -> R<bool> {
        let c = self.pool.get().await?;
        Ok(c.execute("DELETE FROM queries WHERE name = $1", &[&name])
            .await?
            == 1)
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
        let c = self.pool.get().await?;
        let row = c
            .query_one(
                "SELECT (SELECT seats FROM licence WHERE id = 1),
                        (SELECT count(*) FROM sessions
                         WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > $1)",
                &[&self.now()],
            )
            .await?;
        Ok(Seats {
            total: row.get(0),
            held: row.get(1),
        })
    }

    async fn set_seats(&self, seats: i64) -> R<()> {
        let c = self.pool.get().await?;
        c.execute("UPDATE licence SET seats = $1 WHERE id = 1", &[&seats])
            .await?;
        Ok(())
    }

    async fn live_sessions(&self) -> R<Vec<SessionRow>> {
        let c = self.pool.get().await?;
        Ok(c.query(
            "SELECT s.id, u.nickname, s.scope, s.licensed, s.created_at, s.expires_at
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.revoked_at IS NULL AND s.expires_at > $1
                 ORDER BY s.licensed DESC, s.expires_at, s.id",
            &[&self.now()],
        )
        .await?
        .iter()
        .map(|r| SessionRow {
            id: r.get(0),
            client_id: r.get(1),
            scope: r.get(2),
            seat: r.get::<_, i32>(3) == 1,
            created_at: r.get(4),
            expires_at: r.get(5),
        })
        .collect())
    }

    async fn revoke_session(&self, id: i64) -> R<bool> {
        let c = self.pool.get().await?;
        revoke_session_in(&c, id, self.now()).await
    }

    async fn revoke_sessions(&self, user_id: Option<i64>) -> R<usize> {
        let c = self.pool.get().await?;
        Ok(c.execute(
            "UPDATE sessions SET revoked_at = $1
             WHERE revoked_at IS NULL AND expires_at > $1 AND ($2::BIGINT IS NULL OR user_id = $2)",
            &[&self.now(), &user_id],
        )
        .await? as usize)
    }

    async fn user_id(&self, nickname: &str) -> R<Option<i64>> {
        let c = self.pool.get().await?;
        Ok(
            c.query_opt("SELECT id FROM users WHERE nickname = $1", &[&nickname])
                .await?
                .map(|r| r.get(0)),
        )
    }

    async fn add_user(&self, user: NewUser) -> R<i64> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        let id: i64 = tx
            .query_one(
                r#"INSERT INTO users (nickname, "PASSWORD", apiuser, enabled, created_at)
                   VALUES ($1, $2, $3, 1, $4) RETURNING id"#,
                &[
                    &user.nickname,
                    &user.password_hash,
                    &flag(user.api_user),
                    &self.now(),
                ],
            )
            .await?
            .get(0);
        for s in &user.scopes {
            tx.execute(
                "INSERT INTO user_scopes (user_id, scope) VALUES ($1, $2)",
                &[&id, s],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    async fn users(&self) -> R<Vec<UserSummary>> {
        let c = self.pool.get().await?;
        Ok(c
            .query(
                r#"SELECT u.nickname, u.apiuser, u.enabled,
                      (SELECT string_agg(scope, ' ' ORDER BY scope COLLATE "C") FROM user_scopes WHERE user_id = u.id),
                      (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > $1),
                      u.created_at
                   FROM users u ORDER BY u.nickname COLLATE "C""#,
                &[&self.now()],
            )
            .await?
            .iter()
            .map(|r| UserSummary {
                nickname: r.get(0),
                api_user: r.get::<_, i32>(1) == 1,
                enabled: r.get::<_, i32>(2) == 1,
                scopes: r
                    .get::<_, Option<String>>(3)
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                live_sessions: r.get(4),
                created_at: r.get(5),
            })
            .collect())
    }

    async fn set_user_enabled(&self, id: i64, enabled: bool) -> R<usize> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        tx.execute(
            "UPDATE users SET enabled = $2 WHERE id = $1",
            &[&id, &flag(enabled)],
        )
        .await?;
        let ended = if enabled {
            0
        } else {
            tx.execute(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
                &[&id, &self.now()],
            )
            .await?
        };
        tx.commit().await?;
        Ok(ended as usize)
    }

    async fn set_user_scopes(&self, id: i64, scopes: Vec<String>) -> R<()> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // The user's row first, as a grant holds it: the two wait for each other.
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        tx.execute("DELETE FROM user_scopes WHERE user_id = $1", &[&id])
            .await?;
        for s in &scopes {
            tx.execute(
                "INSERT INTO user_scopes (user_id, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&id, s],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_user_secret(&self, id: i64, password_hash: String) -> R<()> {
        let c = self.pool.get().await?;
        c.execute(
            r#"UPDATE users SET "PASSWORD" = $2 WHERE id = $1"#,
            &[&id, &password_hash],
        )
        .await?;
        Ok(())
    }

    async fn remove_user(&self, id: i64) -> R<usize> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&id])
            .await?;
        let live: i64 = tx
            .query_one(
                "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
                &[&id, &self.now()],
            )
            .await?
            .get(0);
        tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM user_scopes WHERE user_id = $1", &[&id])
            .await?;
        tx.execute("DELETE FROM users WHERE id = $1", &[&id])
            .await?;
        tx.commit().await?;
        Ok(live.try_into().unwrap_or_default())
    }

    async fn scopes(&self) -> R<Vec<ScopeRow>> {
        let c = self.pool.get().await?;
        Ok(c.query(
            r#"SELECT name, description, licensed FROM scopes ORDER BY name COLLATE "C""#,
            &[],
        )
        .await?
        .iter()
        .map(|r| ScopeRow {
            name: r.get(0),
            description: r.get(1),
            licensed: r.get::<_, i32>(2) == 1,
        })
        .collect())
    }

    async fn scope_names(&self) -> R<Vec<String>> {
        let c = self.pool.get().await?;
        Ok(
            c.query(r#"SELECT name FROM scopes ORDER BY name COLLATE "C""#, &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        )
    }

    async fn add_scope(&self, scope: ScopeRow) -> R<bool> {
        let c = self.pool.get().await?;
        Ok(c.execute(
            "INSERT INTO scopes (name, description, licensed) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&scope.name, &scope.description, &flag(scope.licensed)],
        )
        .await?
            == 1)
    }

    async fn signing_keys(&self) -> R<Vec<SigningKey>> {
        self.list_signing_keys().await
    }

    async fn add_signing_key(&self, key: SigningKey, rotate: bool, forget_before: i64) -> R<bool> {
        self.insert_signing_key(key, rotate, forget_before).await
    }

    async fn audit_trail(&self, since: i64, client: Option<String>) -> R<Vec<AuditRecord>> {
        let c = self.pool.get().await?;
        Ok(c.query(
            "SELECT at, event, outcome, client_id, remote, detail FROM audit
                 WHERE at >= $1 AND ($2::TEXT IS NULL OR client_id = $2) ORDER BY at, id",
            &[&since, &client],
        )
        .await?
        .iter()
        .map(audit_record)
        .collect())
    }

    async fn audit_page(
        &self,
        since: i64,
        client: Option<String>,
        limit: i64,
        offset: i64,
    ) -> R<(Vec<AuditRecord>, i64)> {
        let c = self.pool.get().await?;
        let total: i64 = c
            .query_one(
                "SELECT count(*) FROM audit WHERE at >= $1 AND ($2::TEXT IS NULL OR client_id = $2)",
                &[&since, &client],
            )
            .await?
            .get(0);
        let rows = c
            .query(
                "SELECT at, event, outcome, client_id, remote, detail FROM audit
                 WHERE at >= $1 AND ($2::TEXT IS NULL OR client_id = $2)
                 ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
                &[&since, &client, &limit, &offset],
            )
            .await?
            .iter()
            .map(audit_record)
            .collect();
        Ok((rows, total))
    }

    async fn backup(&self, _to: &Path) -> R<()> {
        Err(StoreError::Invalid(
            "backup copies SQLite files; for a PostgreSQL database use pg_dump \
             (for example `pg_dump --format=custom --file=tollgate.dump URL`)"
                .into(),
        ))
    }
}

fn audit_record(r: &tokio_postgres::Row) -> AuditRecord {
    AuditRecord {
        at: r.get(0),
        event: r.get(1),
        outcome: r.get(2),
        client_id: r.get(3),
        remote: r.get(4),
        detail: r.get(5),
    }
}
