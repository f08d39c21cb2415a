//! Seats and sessions on PostgreSQL: the licence's count, the live sessions, revocation.
use super::rows::*;
use super::{PostgresStore, SWEEP_STEP};
use crate::crypto::TokenKey;
use crate::store::model::*;
use crate::store::StoreError;

type R<T> = Result<T, StoreError>;

pub(super) async fn revoke_token(
    pg: &PostgresStore,
    owner: i64,
    key: TokenKey,
    hint: Option<TokenKind>,
) -> R<Revoked> {
    let c = pg.pool.get().await?;
    let now = pg.now();
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

pub(super) async fn seats(pg: &PostgresStore) -> R<Seats> {
    let c = pg.pool.get().await?;
    let row = c
        .query_one(
            "SELECT (SELECT seats FROM licence WHERE id = 1),
                    (SELECT count(*) FROM sessions
                     WHERE licensed = 1 AND revoked_at IS NULL AND expires_at > $1)",
            &[&pg.now()],
        )
        .await?;
    Ok(Seats {
        total: row.get(0),
        held: row.get(1),
    })
}

pub(super) async fn set_seats(pg: &PostgresStore, seats: i64) -> R<()> {
    let c = pg.pool.get().await?;
    c.execute("UPDATE licence SET seats = $1 WHERE id = 1", &[&seats])
        .await?;
    Ok(())
}

pub(super) async fn live_sessions(pg: &PostgresStore) -> R<Vec<SessionRow>> {
    let c = pg.pool.get().await?;
    Ok(c.query(
        "SELECT s.id, u.nickname, s.scope, s.licensed, s.created_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.revoked_at IS NULL AND s.expires_at > $1
             ORDER BY s.licensed DESC, s.expires_at, s.id",
        &[&pg.now()],
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

pub(super) async fn revoke_session(pg: &PostgresStore, id: i64) -> R<bool> {
    let c = pg.pool.get().await?;
    revoke_session_in(&c, id, pg.now()).await
}

pub(super) async fn revoke_sessions(pg: &PostgresStore, user_id: Option<i64>) -> R<usize> {
    let c = pg.pool.get().await?;
    Ok(c.execute(
        "UPDATE sessions SET revoked_at = $1
         WHERE revoked_at IS NULL AND expires_at > $1 AND ($2::BIGINT IS NULL OR user_id = $2)",
        &[&pg.now(), &user_id],
    )
    .await? as usize)
}

/// One step of the sweep: at most [`SWEEP_STEP`] rows of each kind gone past `grace`
/// (the audit trail past `audit_retention`); whether a step left more to do.
pub(super) async fn sweep_step(
    pg: &PostgresStore,
    grace: i64,
    audit_retention: i64,
) -> R<(usize, bool)> {
    let now = pg.now();
    let cutoff = now - grace;
    let mut c = pg.pool.get().await?;
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
