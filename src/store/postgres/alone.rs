//! A grant alone in a transaction of its own: what a batch's grants run when their
//! batch failed (batch.rs), so that one failing grant fails only itself. The rules
//! are the batch's, one grant at a time: the client's row re-read FOR SHARE, the
//! licence row locked before the held seats are counted, the presented refresh
//! token's row locked before it is judged.
use super::rows::*;
use super::PostgresStore;
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::StoreError;
use deadpool_postgres::GenericClient;

type R<T> = Result<T, StoreError>;

impl PostgresStore {
    pub(super) async fn open_one(
        &self,
        client: &ClientRecord,
        scope: String,
        licensed: bool,
        tokens: NewTokens,
    ) -> R<Option<OpenOutcome>> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        // The client is confirmed inside the grant's transaction (and its row held
        // until the commit), so a grant never outlives a change to its user.
        if client_by(&tx, Some(client.id), None, true).await?.as_ref() != Some(client) {
            return Ok(None);
        }
        if licensed {
            // Every licensed grant of every instance queues on this row lock: the count
            // below cannot go stale before the insert commits.
            let st = tx
                .prepare_cached("SELECT seats FROM licence WHERE id = 1 FOR UPDATE")
                .await?;
            let total: i64 = tx.query_one(&st, &[]).await?.get(0);
            let now = self.now();
            let st = tx
                .prepare_cached(
                    "SELECT count(*), min(expires_at) FROM sessions
                     WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > $1",
                )
                .await?;
            let row = tx.query_one(&st, &[&now]).await?;
            let (held, first): (i64, Option<i64>) = (row.get(0), row.get(1));
            if held >= total {
                let retry_after = if total > 0 {
                    first.map(|e| (e - now).max(1))
                } else {
                    None
                };
                return Ok(Some(OpenOutcome::NoSeat { retry_after }));
            }
        }
        let now = self.now();
        let st = tx
            .prepare_cached(
                "INSERT INTO sessions (user_id, scope, licensed, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .await?;
        let session_id: i64 = tx
            .query_one(
                &st,
                &[
                    &client.id,
                    &scope,
                    &flag(licensed),
                    &now,
                    &(now + tokens.refresh_ttl),
                ],
            )
            .await?
            .get(0);
        let ids = insert_tokens(&tx, session_id, &scope, &tokens, now).await?;
        tx.commit().await?;
        Ok(Some(OpenOutcome::Opened { session_id, ids }))
    }

    pub(super) async fn refresh_one(
        &self,
        client: &ClientRecord,
        presented: TokenKey,
        tokens: NewTokens,
        narrow: Narrow,
    ) -> R<Option<RefreshOutcome>> {
        let mut c = self.pool.get().await?;
        let tx = c.transaction().await?;
        if client_by(&tx, Some(client.id), None, true).await?.as_ref() != Some(client) {
            return Ok(None);
        }
        let Some(token_id) = presented.id else {
            return Ok(Some(RefreshOutcome::Invalid));
        };
        // The token's row (and its session's) locked: a second use, at this instance or
        // another, waits here and then sees this one's `used_at`.
        let st = tx
            .prepare_cached(
                "SELECT r.session_id, r.used_at, s.user_id, s.scope, s.expires_at, s.revoked_at
                 FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id
                 WHERE r.id = $1 AND r.hash = $2 FOR UPDATE",
            )
            .await?;
        let Some(row) = tx
            .query_opt(&st, &[&token_id, &&presented.hash[..]])
            .await?
        else {
            return Ok(Some(RefreshOutcome::Invalid));
        };
        let now = self.now();
        let (session_id, used_at, user_id, scope, expires_at, revoked_at): (
            i64,
            Option<i64>,
            i64,
            String,
            i64,
            Option<i64>,
        ) = (
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            row.get(4),
            row.get(5),
        );
        // Another client's token is left alone: it proves nothing about its owner.
        if user_id != client.id || revoked_at.is_some() || expires_at <= now {
            return Ok(Some(RefreshOutcome::Invalid));
        }
        if used_at.is_some() {
            revoke_session_in(&tx, session_id, now).await?;
            tx.commit().await?;
            return Ok(Some(RefreshOutcome::Reused));
        }
        let access_scope = match narrow(&scope) {
            Ok(s) => s,
            Err(why) => return Ok(Some(RefreshOutcome::Refused(why))),
        };
        tx.execute(
            "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1",
            &[&token_id, &now],
        )
        .await?;
        tx.execute(
            "UPDATE sessions SET expires_at = $2 WHERE id = $1",
            &[&session_id, &(now + tokens.refresh_ttl)],
        )
        .await?;
        let ids = insert_tokens(&tx, session_id, &access_scope, &tokens, now).await?;
        tx.commit().await?;
        Ok(Some(RefreshOutcome::Rotated {
            session_id,
            scope: access_scope,
            ids,
        }))
    }
}
