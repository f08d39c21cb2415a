//! The product catalogue.
use crate::store::model::*;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "sku, name, description, price_cents, stock, updated_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        sku: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        price_cents: r.get(3)?,
        stock: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

/// A page ordered by sku, and the total that matched.
pub fn list(
    c: &Connection,
    q: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Product>, i64), StoreError> {
    let pattern = crate::store::like_pattern(q.unwrap_or(""));
    let filter = "sku LIKE ?1 ESCAPE '\\' OR name LIKE ?1 ESCAPE '\\'";
    let total = c
        .prepare_cached(&format!("SELECT count(*) FROM products WHERE {filter}"))?
        .query_row([&pattern], |r| r.get(0))?;
    let items = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM products WHERE {filter} ORDER BY sku LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(params![pattern, limit, offset], from_row)?
        .collect::<Result<_, _>>()?;
    Ok((items, total))
}

pub fn get(c: &Connection, sku: &str) -> Result<Option<Product>, StoreError> {
    Ok(
        c.prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE sku = ?1"))?
            .query_row([sku], from_row)
            .optional()?,
    )
}

/// Inserts a new product; false if the sku exists.
pub fn insert(c: &Connection, p: &Product) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached(&format!(
            "INSERT INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (sku) DO NOTHING"
        ))?
        .execute(params![
            p.sku,
            p.name,
            p.description,
            p.price_cents,
            p.stock,
            p.updated_at
        ])?;
    Ok(n == 1)
}

/// The current product, or `Err(PreconditionFailed)` if `cond` does not hold for it.
fn current_if(
    tx: &Connection,
    sku: &str,
    cond: Option<&IfMatch>,
) -> Result<Result<Option<Product>, Write>, StoreError> {
    let current = get(tx, sku)?;
    match cond {
        Some(cond) if !cond.passes(current.as_ref()) => {
            Ok(Err(Write::PreconditionFailed(current.map(|c| c.etag()))))
        }
        _ => Ok(Ok(current)),
    }
}

/// Creates or replaces, if `cond` holds for the current product; checked and
/// written in one transaction so two editors cannot overwrite each other.
pub fn upsert(
    c: &mut Connection,
    p: &Product,
    cond: Option<&IfMatch>,
) -> Result<Write, StoreError> {
    let tx = super::immediate(c)?;
    let current = match current_if(&tx, &p.sku, cond)? {
        Ok(current) => current,
        Err(failed) => return Ok(failed),
    };
    tx.prepare_cached(&format!(
        "INSERT INTO products ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description,
           price_cents = excluded.price_cents, stock = excluded.stock, updated_at = excluded.updated_at"
    ))?
    .execute(params![
        p.sku,
        p.name,
        p.description,
        p.price_cents,
        p.stock,
        p.updated_at
    ])?;
    tx.commit()?;
    Ok(if current.is_some() {
        Write::Replaced
    } else {
        Write::Created
    })
}

/// Deletes, if `cond` holds for the current product.
pub fn delete(c: &mut Connection, sku: &str, cond: Option<&IfMatch>) -> Result<Write, StoreError> {
    let tx = super::immediate(c)?;
    let current = match current_if(&tx, sku, cond)? {
        Ok(current) => current,
        Err(failed) => return Ok(failed),
    };
    if current.is_none() {
        return Ok(Write::NotFound);
    }
    tx.prepare_cached("DELETE FROM products WHERE sku = ?1")?
        .execute([sku])?;
    tx.commit()?;
    Ok(Write::Deleted)
}

#[cfg(test)]
mod tests {
    use super::Product;

    /// The quoted lower-case hex of the first 16 bytes of SHA-256 over the fields
    /// (strings NUL-terminated, numbers 8 bytes big-endian): clients hold ETags, so the
    /// format stays the same from release to release.
    #[test]
    fn etag_is_the_quoted_hex_of_half_the_digest() {
        let p = Product {
            sku: "NUT-M6".into(),
            name: "Hex nut M6".into(),
            description: "DIN 934".into(),
            price_cents: 5,
            stock: 8000,
            updated_at: 1_700_000_000,
        };
        let mut bytes = Vec::new();
        for part in [&p.sku, &p.name, &p.description] {
            bytes.extend_from_slice(part.as_bytes());
            bytes.push(0);
        }
        for n in [p.price_cents, p.stock, p.updated_at] {
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(p.etag(), format!("\"{hex}\""));
        assert_eq!(p.etag().len(), 34);
    }
}
