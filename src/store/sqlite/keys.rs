//! JWT signing keys (API.md §10): the table, and the writer's record of the current key.
use crate::store::{SigningKey, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row};

type R<T> = Result<T, StoreError>;

/// The current key's row id as the writer last read it, and the `data_version` it
/// read it at: another connection's commit (`tollgate keys rotate`) moves the
/// version, and the next signed grant reads the table again.
#[derive(Debug, Default)]
pub struct CurrentKey {
    version: Option<i64>,
    id: Option<i64>,
}

impl CurrentKey {
    pub fn invalidate(&mut self) {
        self.version = None;
    }

    /// The key a grant signs with, as of its transaction; None when unsigned.
    pub fn for_grant(&mut self, c: &Connection, signed: bool) -> R<Option<i64>> {
        if !signed {
            return Ok(None);
        }
        let version: i64 = c
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.version != Some(version) {
            self.id = current(c)?;
            self.version = Some(version);
        }
        Ok(self.id)
    }
}

fn current(c: &Connection) -> R<Option<i64>> {
    Ok(
        c.prepare_cached("SELECT id FROM signing_keys WHERE retired_at IS NULL")?
            .query_row([], |row| row.get(0))
            .optional()?,
    )
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<SigningKey> {
    Ok(SigningKey {
        id: row.get(0)?,
        kid: row.get(1)?,
        private_key: row.get(2)?,
        public_x: row.get(3)?,
        public_y: row.get(4)?,
        created_at: row.get(5)?,
        retired_at: row.get(6)?,
    })
}

pub fn list(c: &Connection) -> R<Vec<SigningKey>> {
    let mut st = c.prepare_cached(
        "SELECT id, kid, private_key, public_x, public_y, created_at, retired_at
         FROM signing_keys ORDER BY id DESC",
    )?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// See [`crate::store::Store::add_signing_key`].
pub fn add(
    c: &mut Connection,
    k: &SigningKey,
    rotate: bool,
    forget_before: i64,
    now: i64,
) -> R<bool> {
    let c = super::immediate(c)?;
    if rotate {
        c.execute(
            "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL",
            params![now],
        )?;
    } else if current(&c)?.is_some() {
        return Ok(false);
    }
    c.execute(
        "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?1",
        params![forget_before],
    )?;
    c.execute(
        "INSERT INTO signing_keys (kid, alg, private_key, public_x, public_y, created_at)
         VALUES (?1, 'ES256', ?2, ?3, ?4, ?5)",
        params![k.kid, k.private_key, k.public_x, k.public_y, now],
    )?;
    c.commit()?;
    Ok(true)
}
