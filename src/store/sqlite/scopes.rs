//! The scope catalogue.
use crate::store::model::ScopeRow;
use crate::store::StoreError;
use rusqlite::{params, Connection};

/// Every scope name, sorted.
pub fn scope_names(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached("SELECT name FROM scopes ORDER BY name")?;
    let names = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(names)
}

pub fn scopes(c: &Connection) -> Result<Vec<ScopeRow>, StoreError> {
    let mut st = c.prepare("SELECT name, description, licensed FROM scopes ORDER BY name")?;
    let rows = st
        .query_map([], |r| {
            Ok(ScopeRow {
                name: r.get(0)?,
                description: r.get(1)?,
                licensed: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Adds a scope; false if one with that name exists.
pub fn add_scope(c: &Connection, s: &ScopeRow) -> Result<bool, StoreError> {
    Ok(c.execute(
        "INSERT INTO scopes (name, description, licensed) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
        params![s.name, s.description, s.licensed],
    )? == 1)
}
