//! Saved GetData queries on PostgreSQL (running them: getdata.rs).
use super::PostgresStore;
use crate::store::model::*;
use crate::store::StoreError;

type R<T> = Result<T, StoreError>;

pub(super) async fn saved_query(pg: &PostgresStore, name: &str) -> R<Option<SavedQuery>> {
    let c = pg.pool.get().await?;
    Ok(c.query_opt(
        "SELECT name, sql, scope, description FROM queries WHERE name = $1",
        &[&name],
    )
    .await?
    .as_ref()
    .map(super::rows::saved_query))
}

pub(super) async fn queries(pg: &PostgresStore) -> R<Vec<SavedQuery>> {
    let c = pg.pool.get().await?;
    Ok(c.query(
        r#"SELECT name, sql, scope, description FROM queries ORDER BY name COLLATE "C""#,
        &[],
    )
    .await?
    .iter()
    .map(super::rows::saved_query)
    .collect())
}

pub(super) async fn add_query(pg: &PostgresStore, q: SavedQuery) -> R<bool> {
    let c = pg.pool.get().await?;
    Ok(c.execute(
        "INSERT INTO queries (name, sql, scope, description, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO NOTHING",
        &[&q.name, &q.sql, &q.scope, &q.description, &pg.now()],
    )
    .await?
        == 1)
}

pub(super) async fn put_query(pg: &PostgresStore, q: SavedQuery) -> R<bool> {
    let c = pg.pool.get().await?;
    Ok(c.query_one(
        "INSERT INTO queries (name, sql, scope, description, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE
         SET sql = excluded.sql, scope = excluded.scope, description = excluded.description
         RETURNING (xmax = 0)",
        &[&q.name, &q.sql, &q.scope, &q.description, &pg.now()],
    )
    .await?
    .get(0))
}

pub(super) async fn remove_query(pg: &PostgresStore, name: &str) -> R<bool> {
    let c = pg.pool.get().await?;
    Ok(c.execute("DELETE FROM queries WHERE name = $1", &[&name])
        .await?
        == 1)
}
