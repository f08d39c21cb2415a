//! The demo data (store/demo.rs) written to a new SQLite database.
use super::users;
use crate::crypto::hash_password;
use crate::store::demo::{DEMO_QUERIES, DEMO_SEATS, DEMO_USERS, PRODUCTS};
use crate::store::model::{NewUser, SavedQuery};
use crate::store::script::{Script, DEMO_SCRIPTS};
use crate::store::StoreError;
use rusqlite::{params, Connection};

/// Adds the demo users, seats, products and queries to a migrated, empty database.
pub fn seed(c: &mut Connection, iterations: u32, now: i64) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    for (name, secret, api_user, scopes) in DEMO_USERS {
        let hash = hash_password(secret, iterations);
        users::create(
            &tx,
            &NewUser {
                nickname: (*name).to_owned(),
                password_hash: hash,
                api_user: *api_user,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            },
            now,
        )?;
    }
    super::sessions::set_seats(&tx, DEMO_SEATS)?;
    for (sku, name, desc, price, stock) in PRODUCTS {
        tx.execute(
            "INSERT INTO products (sku, name, description, price_cents, stock, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![sku, name, desc, price, stock, now],
        )?;
    }
    for (name, sql, description) in DEMO_QUERIES {
        let q = SavedQuery {
            name: (*name).into(),
            sql: (*sql).into(),
            scope: "view".into(),
            description: (*description).into(),
        };
        super::queries::insert(&tx, &q, now)?;
    }
    for (name, method, scope, writes, description, source) in DEMO_SCRIPTS {
        let s = Script {
            name: (*name).into(),
            source: (*source).into(),
            method: (*method).into(),
            scope: (*scope).into(),
            writes: *writes,
            description: (*description).into(),
            version: 1,
        };
        super::scripts::save(&tx, &s, false, now)?;
    }
    tx.commit()?;
    Ok(())
}
