//! The audit trail on PostgreSQL: written in batches, read by time and client.
use super::{PostgresStore, AUDIT_BATCH};
use crate::store::model::*;
use crate::store::StoreError;

type R<T> = Result<T, StoreError>;

/// Writes `rows` in one INSERT.
pub(super) async fn insert<C: tokio_postgres::GenericClient>(c: &C, rows: &[AuditRecord]) -> R<()> {
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

/// Writes the records still waiting, when the store closes: the pool's connections
/// belong to the runtime that is ending, so they go over a connection of their own,
/// on a thread of their own.
pub(super) fn write_at_close(pg: &PostgresStore) {
    let rows = pg.audit.take_all();
    if rows.is_empty() {
        return;
    }
    let config = pg.config.clone();
    let written = std::thread::spawn(move || -> R<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        rt.block_on(async move {
            let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            for chunk in rows.chunks(AUDIT_BATCH) {
                insert(&client, chunk).await?;
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

pub(super) async fn audit_trail(
    pg: &PostgresStore,
    since: i64,
    client: Option<String>,
) -> R<Vec<AuditRecord>> {
    let c = pg.pool.get().await?;
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

pub(super) async fn audit_page(
    pg: &PostgresStore,
    since: i64,
    client: Option<String>,
    limit: i64,
    offset: i64,
) -> R<(Vec<AuditRecord>, i64)> {
    let c = pg.pool.get().await?;
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
