//! The published GetData queries (API.md §7).
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

pub fn get(c: &Connection, name: &str) -> Result<Option<SavedQuery>, StoreError> {
    Ok(
        c.prepare_cached("SELECT name, sql, scope, description FROM queries WHERE name = ?1")?
            .query_row([name], |r| {
                Ok(SavedQuery {
                    name: r.get(0)?,
                    sql: r.get(1)?,
                    scope: r.get(2)?,
                    description: r.get(3)?,
                })
            })
            .optional()?,
    )
}

pub fn list(c: &Connection) -> Result<Vec<SavedQuery>, StoreError> {
    let mut st = c.prepare("SELECT name, sql, scope, description FROM queries ORDER BY name")?;
    let rows = st
        .query_map([], |r| {
            Ok(SavedQuery {
                name: r.get(0)?,
                sql: r.get(1)?,
                scope: r.get(2)?,
                description: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Saves a new query; false if the name is taken.
pub fn insert(c: &Connection, q: &SavedQuery, now: i64) -> Result<bool, StoreError> {
    Ok(c.execute(
        "INSERT INTO queries (name, sql, scope, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO NOTHING",
        params![q.name, q.sql, q.scope, q.description, now],
    )? == 1)
}

/// Saves a query over any of the same name; true if it is new.
pub fn upsert(c: &Connection, q: &SavedQuery, now: i64) -> Result<bool, StoreError> {
    let existed = get(c, &q.name)?.is_some();
    c.execute(
        "INSERT INTO queries (name, sql, scope, description, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE
         SET sql = excluded.sql, scope = excluded.scope, description = excluded.description",
        params![q.name, q.sql, q.scope, q.description, now],
    )?;
    Ok(!existed)
}

pub fn remove(c: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM queries WHERE name = ?1", [name])? == 1)
}
