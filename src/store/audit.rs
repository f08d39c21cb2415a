//! The audit trail: what happened, when, to whom, from where. Never secrets or tokens.
use crate::error::StoreError;
use rusqlite::{params, Connection};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: i64,
    /// e.g. `grant.client_credentials`, `grant.refresh_token`, `revoke`, `user.disable`.
    pub event: String,
    /// `ok` or an error code.
    pub outcome: String,
    pub client_id: Option<String>,
    /// Remote address, or `cli` for admin commands.
    pub remote: Option<String>,
    pub detail: String,
}

pub fn insert_many(c: &mut Connection, rows: &[AuditRecord]) -> Result<(), StoreError> {
    let tx = super::immediate(c)?;
    {
        let mut st = tx.prepare_cached(
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
    }
    tx.commit()?;
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
        .query_map(params![since, client], |r| {
            Ok(AuditRecord {
                at: r.get(0)?,
                event: r.get(1)?,
                outcome: r.get(2)?,
                client_id: r.get(3)?,
                remote: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Deletes up to `limit` rows older than `before`, oldest first.
pub fn prune(c: &Connection, before: i64, limit: usize) -> Result<usize, StoreError> {
    Ok(c.execute(
        "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE at < ?1 ORDER BY at LIMIT ?2)",
        params![before, limit as i64],
    )?)
}
