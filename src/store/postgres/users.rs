//! API users and scopes on PostgreSQL (the Store surface's admin half: surface.rs).
use super::rows::*;
use super::PostgresStore;
use crate::store::model::*;
use crate::store::StoreError;

type R<T> = Result<T, StoreError>;

pub(super) async fn user_id(pg: &PostgresStore, nickname: &str) -> R<Option<i64>> {
    let c = pg.pool.get().await?;
    Ok(
        c.query_opt("SELECT id FROM users WHERE nickname = $1", &[&nickname])
            .await?
            .map(|r| r.get(0)),
    )
}

pub(super) async fn add_user(pg: &PostgresStore, user: NewUser) -> R<i64> {
    let mut c = pg.pool.get().await?;
    let tx = c.transaction().await?;
    let id: i64 = tx
        .query_one(
            r#"INSERT INTO users (nickname, "PASSWORD", apiuser, enabled, created_at)
               VALUES ($1, $2, $3, 1, $4) RETURNING id"#,
            &[
                &user.nickname,
                &user.password_hash,
                &flag(user.api_user),
                &pg.now(),
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

pub(super) async fn users(pg: &PostgresStore) -> R<Vec<UserSummary>> {
    let c = pg.pool.get().await?;
    Ok(c
        .query(
            r#"SELECT u.nickname, u.apiuser, u.enabled,
                  (SELECT string_agg(scope, ' ' ORDER BY scope COLLATE "C") FROM user_scopes WHERE user_id = u.id),
                  (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL AND s.expires_at > $1),
                  u.created_at
               FROM users u ORDER BY u.nickname COLLATE "C""#,
            &[&pg.now()],
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

pub(super) async fn set_user_enabled(pg: &PostgresStore, id: i64, enabled: bool) -> R<usize> {
    let mut c = pg.pool.get().await?;
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
            &[&id, &pg.now()],
        )
        .await?
    };
    tx.commit().await?;
    Ok(ended as usize)
}

pub(super) async fn set_user_scopes(pg: &PostgresStore, id: i64, scopes: Vec<String>) -> R<()> {
    let mut c = pg.pool.get().await?;
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

pub(super) async fn set_user_secret(pg: &PostgresStore, id: i64, password_hash: String) -> R<()> {
    let c = pg.pool.get().await?;
    c.execute(
        r#"UPDATE users SET "PASSWORD" = $2 WHERE id = $1"#,
        &[&id, &password_hash],
    )
    .await?;
    Ok(())
}

pub(super) async fn remove_user(pg: &PostgresStore, id: i64) -> R<usize> {
    let mut c = pg.pool.get().await?;
    let tx = c.transaction().await?;
    tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&id])
        .await?;
    let live: i64 = tx
        .query_one(
            "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            &[&id, &pg.now()],
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

pub(super) async fn scopes(pg: &PostgresStore) -> R<Vec<ScopeRow>> {
    let c = pg.pool.get().await?;
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

pub(super) async fn scope_names(pg: &PostgresStore) -> R<Vec<String>> {
    let c = pg.pool.get().await?;
    Ok(
        c.query(r#"SELECT name FROM scopes ORDER BY name COLLATE "C""#, &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect(),
    )
}

pub(super) async fn add_scope(pg: &PostgresStore, scope: ScopeRow) -> R<bool> {
    let c = pg.pool.get().await?;
    Ok(c.execute(
        "INSERT INTO scopes (name, description, licensed) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        &[&scope.name, &scope.description, &flag(scope.licensed)],
    )
    .await?
        == 1)
}
