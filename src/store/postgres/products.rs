//! Products on PostgreSQL: the resource API's list, create, replace and delete.
use super::rows::*;
use super::PostgresStore;
use crate::store::model::*;
use crate::store::StoreError;

type R<T> = Result<T, StoreError>;

pub(super) async fn list_products(
    pg: &PostgresStore,
    q: Option<String>,
    limit: i64,
    offset: i64,
) -> R<(Vec<Product>, i64)> {
    let c = pg.pool.get().await?;
    let pattern = crate::store::like_pattern(q.as_deref().unwrap_or(""));
    // SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does the same.
    let filter = r"sku ILIKE $1 ESCAPE '\' OR name ILIKE $1 ESCAPE '\'";
    let total: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM products WHERE {filter}"),
            &[&pattern],
        )
        .await?
        .get(0);
    let items = c
        .query(
            &format!(
                r#"SELECT {PRODUCT_COLUMNS} FROM products WHERE {filter}
                   ORDER BY sku COLLATE "C" LIMIT $2 OFFSET $3"#
            ),
            &[&pattern, &limit, &offset],
        )
        .await?
        .iter()
        .map(product)
        .collect();
    Ok((items, total))
}

pub(super) async fn add_product(pg: &PostgresStore, p: Product) -> R<bool> {
    let c = pg.pool.get().await?;
    let n = c
        .execute(
            &format!(
                "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (sku) DO NOTHING"
            ),
            &[
                &p.sku,
                &p.name,
                &p.description,
                &p.price_cents,
                &p.stock,
                &p.updated_at,
            ],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn put_product(pg: &PostgresStore, p: Product, cond: Option<IfMatch>) -> R<Write> {
    let mut c = pg.pool.get().await?;
    let tx = c.transaction().await?;
    let current = match current_unless_refused(&tx, &p.sku, cond).await? {
        Ok(current) => current,
        Err(refused) => return Ok(refused),
    };
    tx.execute(
        &format!(
            "INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description,
               price_cents = excluded.price_cents, stock = excluded.stock, updated_at = excluded.updated_at"
        ),
        &[
            &p.sku,
            &p.name,
            &p.description,
            &p.price_cents,
            &p.stock,
            &p.updated_at,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(if current.is_some() {
        Write::Replaced
    } else {
        Write::Created
    })
}

pub(super) async fn delete_product(
    pg: &PostgresStore,
    sku: String,
    cond: Option<IfMatch>,
) -> R<Write> {
    let mut c = pg.pool.get().await?;
    let tx = c.transaction().await?;
    let current = match current_unless_refused(&tx, &sku, cond).await? {
        Ok(current) => current,
        Err(refused) => return Ok(refused),
    };
    if current.is_none() {
        return Ok(Write::NotFound);
    }
    tx.execute("DELETE FROM products WHERE sku = $1", &[&sku])
        .await?;
    tx.commit().await?;
    Ok(Write::Deleted)
}

/// The product's row, locked until the transaction ends, or the answer when `cond`
/// does not hold for it.
async fn current_unless_refused<C: deadpool_postgres::GenericClient>(
    tx: &C,
    sku: &str,
    cond: Option<IfMatch>,
) -> R<Result<Option<Product>, Write>> {
    let current = get_product(tx, sku, true).await?;
    match cond {
        Some(cond) if !cond.passes(current.as_ref()) => {
            Ok(Err(Write::PreconditionFailed(current.map(|c| c.etag()))))
        }
        _ => Ok(Ok(current)),
    }
}
