//! The audit trail: what happened, when, to whom, from where. Never secrets or tokens.
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection};

pub use crate::store::audit_queue::AuditQueue;

/// Writes `rows` in a transaction of their own (or the writer's group's).
pub fn insert_many(c: &mut Connection, rows: &[AuditRecord]) -> Result<(), StoreError> {
    let tx = super::immediate(c)?;
    insert_rows(&tx, rows)?;
    tx.commit()?;
    Ok(())
}

/// Writes `rows` in the transaction `c` is in.
pub fn insert_rows(c: &Connection, rows: &[AuditRecord]) -> Result<(), StoreError> {
    let mut st = c.prepare_cached(
        "INSERT INTO audit (at, event, outcome, client_id, remote, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in rows {
        st.execute(params![
            r.at,
            r.event,
            r.outcome,
            r.client_id,
            r.remote,
            r.detail
        ])?;
    }
    Ok(())
}

/// Rows at or after `since`, optionally for one client, oldest first.
pub fn query(
    c: &Connection,
    since: i64,
    client: Option<&str>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let mut st = c.prepare(
        "SELECT at, event, outcome, client_id, remote, detail FROM audit
         WHERE at >= ?1 AND (?2 IS NULL OR client_id = ?2) ORDER BY at, id",
    )?;
    let rows = st
        .query_map(params![since, client], record)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One page, newest first, and the count of all rows that match.
pub fn page(
    c: &Connection,
    since: i64,
    client: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditRecord>, i64), StoreError> {
    let total: i64 = c.query_row(
        "SELECT count(*) FROM audit WHERE at >= ?1 AND (?2 IS NULL OR client_id = ?2)",
        params![since, client],
        |r| r.get(0),
    )?;
    let mut st = c.prepare(
        "SELECT at, event, outcome, client_id, remote, detail FROM audit
         WHERE at >= ?1 AND (?2 IS NULL OR client_id = ?2)
         ORDER BY at DESC, id DESC LIMIT ?3 OFFSET ?4",
    )?;
    let rows = st
        .query_map(params![since, client, limit, offset], record)?
        .collect::<Result<_, _>>()?;
    Ok((rows, total))
}

fn record(r: &rusqlite::Row) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        at: r.get(0)?,
        event: r.get(1)?,
        outcome: r.get(2)?,
        client_id: r.get(3)?,
        remote: r.get(4)?,
        detail: r.get(5)?,
    })
}

/// Deletes up to `limit` rows older than `before`, oldest first.
pub fn prune(c: &Connection, before: i64, limit: usize) -> Result<usize, StoreError> {
    Ok(c.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 ORDER BY at LIMIT ?2)",
        params![before, limit as i64],
    )?)
}
