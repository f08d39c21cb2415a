//! USERS, their allowed scopes, and the scope catalogue.
use crate::error::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// What client authentication and scope resolution need to know about a user.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub id: i64,
    pub password_hash: String,
    pub api_user: bool,
    pub enabled: bool,
    /// Allowed scopes with their licensed flag, sorted by name.
    pub scopes: Vec<(String, bool)>,
}

pub fn find_client(c: &Connection, nickname: &str) -> Result<Option<ClientRecord>, StoreError> {
    let row = c
        .prepare_cached(
            r#"SELECT ID, "PASSWORD", APIUSER, ENABLED FROM USERS WHERE NICKNAME = ?1"#,
        )?
        .query_row([nickname], |r| {
            Ok(ClientRecord {
                id: r.get(0)?,
                password_hash: r.get(1)?,
                api_user: r.get(2)?,
                enabled: r.get(3)?,
                scopes: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut rec) = row else { return Ok(None) };
    let mut st = c.prepare_cached(
        "SELECT s.name, s.licensed FROM user_scopes us JOIN scopes s ON s.name = us.scope
         WHERE us.user_id = ?1 ORDER BY s.name",
    )?;
    rec.scopes = st
        .query_map([rec.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(Some(rec))
}

pub struct NewUser<'a> {
    pub nickname: &'a str,
    pub password_hash: &'a str,
    pub api_user: bool,
    pub scopes: &'a [&'a str],
}

pub fn create(c: &Connection, u: &NewUser<'_>, now: i64) -> Result<i64, StoreError> {
    c.execute(
        r#"INSERT INTO USERS (NICKNAME, "PASSWORD", APIUSER, ENABLED, CREATED_AT) VALUES (?1, ?2, ?3, 1, ?4)"#,
        params![u.nickname, u.password_hash, u.api_user, now],
    )?;
    let id = c.last_insert_rowid();
    for s in u.scopes {
        c.execute(
            "INSERT INTO user_scopes (user_id, scope) VALUES (?1, ?2)",
            params![id, s],
        )?;
    }
    Ok(id)
}

pub fn set_seats(c: &Connection, seats: i64) -> Result<(), StoreError> {
    c.execute("UPDATE licence SET seats = ?1 WHERE id = 1", [seats])?;
    Ok(())
}

/// Every scope name, sorted.
pub fn scope_names(c: &Connection) -> Result<Vec<String>, StoreError> {
    let mut st = c.prepare_cached("SELECT name FROM scopes ORDER BY name")?;
    let names = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(names)
}
