//! The PostgreSQL engine's statements that several operations share: rows into
//! domain types, client records, token lookups and inserts, and the GetData
//! sandbox's transaction. The operations themselves are in surface.rs.
use super::getdata;
use crate::crypto::TokenKey;
use crate::store::getdata::{Page, QueryError};
use crate::store::model::*;
use crate::store::StoreError;
use deadpool_postgres::GenericClient;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_postgres::Row;

type R<T> = Result<T, StoreError>;

pub(super) const PRODUCT_COLUMNS: &str = "sku, name, description, price_cents, stock, updated_at";

pub(super) fn product(r: &Row) -> Product {
    product_at(r, 0)
}

/// The product whose [`PRODUCT_COLUMNS`] start at column `at`.
fn product_at(r: &Row, at: usize) -> Product {
    Product {
        sku: r.get(at),
        name: r.get(at + 1),
        description: r.get(at + 2),
        price_cents: r.get(at + 3),
        stock: r.get(at + 4),
        updated_at: r.get(at + 5),
    }
}

pub(super) fn flag(b: bool) -> i32 {
    i32::from(b)
}

/// A client record by user id, with its scopes in byte order (as SQLite sorts).
/// `lock`: hold the user row (FOR SHARE) until the transaction ends, so that an
/// administrator's change to it waits for the grant, and the grant for it.
pub(super) async fn client_by<C: GenericClient>(
    c: &C,
    by_id: Option<i64>,
    nickname: Option<&str>,
    lock: bool,
) -> R<Option<ClientRecord>> {
    let sql = match (by_id.is_some(), lock) {
        (true, true) => {
            r#"SELECT id, "PASSWORD", apiuser, enabled FROM users WHERE id = $1 FOR SHARE"#
        }
        (true, false) => r#"SELECT id, "PASSWORD", apiuser, enabled FROM users WHERE id = $1"#,
        (false, _) => r#"SELECT id, "PASSWORD", apiuser, enabled FROM users WHERE nickname = $1"#,
    };
    let st = c.prepare_cached(sql).await?;
    let row = match by_id {
        Some(id) => c.query_opt(&st, &[&id]).await?,
        None => c.query_opt(&st, &[&nickname.unwrap_or_default()]).await?,
    };
    let Some(row) = row else { return Ok(None) };
    let mut rec = ClientRecord {
        id: row.get(0),
        password_hash: row.get(1),
        api_user: row.get::<_, i32>(2) == 1,
        enabled: row.get::<_, i32>(3) == 1,
        scopes: Vec::new(),
    };
    let st = c
        .prepare_cached(
            r#"SELECT s.name, s.licensed FROM user_scopes us JOIN scopes s ON s.name = us.scope
               WHERE us.user_id = $1 ORDER BY s.name COLLATE "C""#,
        )
        .await?;
    rec.scopes = c
        .query(&st, &[&rec.id])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get::<_, i32>(1) == 1))
        .collect();
    Ok(Some(rec))
}

/// Inserts a new token pair for `session_id`; their row ids.
pub(super) async fn insert_tokens<C: GenericClient>(
    c: &C,
    session_id: i64,
    scope: &str,
    t: &NewTokens,
    now: i64,
) -> R<TokenIds> {
    let st = c
        .prepare_cached(
            "INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .await?;
    let refresh: i64 = c
        .query_one(&st, &[&&t.refresh_hash[..], &session_id, &now])
        .await?
        .get(0);
    let st = c
        .prepare_cached(
            "INSERT INTO access_tokens (hash, session_id, scope, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .await?;
    let access: i64 = c
        .query_one(
            &st,
            &[
                &&t.access_hash[..],
                &session_id,
                &scope,
                &now,
                &(now + t.access_ttl),
            ],
        )
        .await?
        .get(0);
    let key = match t.signed {
        true => {
            let st = c.prepare_cached(super::batch::CURRENT_KEY).await?;
            c.query_opt(&st, &[]).await?.map(|r| r.get(0))
        }
        false => None,
    };
    Ok(TokenIds {
        access,
        refresh,
        issued_at: now,
        key,
    })
}

/// A token of one kind by its key (row id and hash), live or not. A fresh
/// PostgreSQL database never held a token from before row ids: a key without one is unknown.
pub(super) async fn find_kind<C: GenericClient>(
    c: &C,
    key: &TokenKey,
    kind: TokenKind,
    now: i64,
) -> R<Option<FoundToken>> {
    let Some(id) = key.id else { return Ok(None) };
    let sql = match kind {
        TokenKind::Access => {
            "SELECT s.id, u.id, u.nickname, a.scope, a.issued_at, LEAST(a.expires_at, s.expires_at),
                    a.revoked_at IS NULL AND a.expires_at > $3,
                    s.revoked_at IS NULL AND s.expires_at > $3 AND u.enabled = 1, a.id
             FROM access_tokens a JOIN sessions s ON s.id = a.session_id JOIN users u ON u.id = s.user_id
             WHERE a.id = $1 AND a.hash = $2"
        }
        TokenKind::Refresh => {
            "SELECT s.id, u.id, u.nickname, s.scope, r.issued_at, s.expires_at,
                    r.used_at IS NULL,
                    s.revoked_at IS NULL AND s.expires_at > $3 AND u.enabled = 1, r.id
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id
             WHERE r.id = $1 AND r.hash = $2"
        }
    };
    let st = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&st, &[&id, &&key.hash[..], &now])
        .await?
        .map(|r| FoundToken {
            kind,
            id: r.get(8),
            session_id: r.get(0),
            user_id: r.get(1),
            client_id: r.get(2),
            scope: r.get(3),
            issued_at: r.get(4),
            expires_at: r.get(5),
            active: r.get::<_, bool>(6) && r.get::<_, bool>(7),
        }))
}

pub(super) async fn find_any<C: GenericClient>(
    c: &C,
    key: &TokenKey,
    hint: Option<TokenKind>,
    now: i64,
) -> R<Option<FoundToken>> {
    let order = match hint {
        Some(TokenKind::Refresh) => [TokenKind::Refresh, TokenKind::Access],
        _ => [TokenKind::Access, TokenKind::Refresh],
    };
    for kind in order {
        if let Some(t) = find_kind(c, key, kind, now).await? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// What [`access`] reads of an access token `a`, its session `s` and its client
/// `u` ([`ACCESS_FROM`]); `$3` is now.
const ACCESS_COLUMNS: &str = "u.nickname, a.scope, a.expires_at, a.issued_at, s.id, s.expires_at,
    s.licensed, a.revoked_at IS NOT NULL, a.expires_at <= $3, s.id IS NULL,
    s.revoked_at IS NOT NULL, coalesce(s.expires_at <= $3, true), coalesce(u.enabled, 0) = 0";
const ACCESS_FROM: &str = "FROM access_tokens a
    LEFT JOIN sessions s ON s.id = a.session_id
    LEFT JOIN users u ON u.id = s.user_id";
/// How many columns [`ACCESS_COLUMNS`] has.
const ACCESS_WIDTH: usize = 13;

static FIND_ACCESS: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ACCESS_COLUMNS} {ACCESS_FROM} WHERE a.id = $1 AND a.hash = $2")
});

/// The token's row and the product's in one statement: a Bearer GET of a product
/// is one round trip.
static ACCESS_AND_PRODUCT: LazyLock<String> = LazyLock::new(|| {
    let product: Vec<String> = PRODUCT_COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect();
    format!(
        "SELECT {ACCESS_COLUMNS}, {} {ACCESS_FROM} LEFT JOIN products p ON p.sku = $4
         WHERE a.id = $1 AND a.hash = $2",
        product.join(", ")
    )
});

const UNKNOWN: &str = "the access token is unknown";

/// A live access token's grant, or why the token is not live (store/sqlite/access.rs).
pub(super) async fn find_access<C: GenericClient>(c: &C, key: &TokenKey, now: i64) -> R<Access> {
    let Some(id) = key.id else {
        return Ok(Err(UNKNOWN));
    };
    let st = c.prepare_cached(&FIND_ACCESS).await?;
    Ok(
        match c.query_opt(&st, &[&id, &&key.hash[..], &now]).await? {
            Some(r) => access(&r),
            None => Err(UNKNOWN),
        },
    )
}

/// [`find_access`], and the product `sku` if the token is live.
pub(super) async fn access_and_product<C: GenericClient>(
    c: &C,
    key: &TokenKey,
    sku: &str,
    now: i64,
) -> R<(Access, Option<Product>)> {
    let Some(id) = key.id else {
        return Ok((Err(UNKNOWN), None));
    };
    let st = c.prepare_cached(&ACCESS_AND_PRODUCT).await?;
    let Some(r) = c.query_opt(&st, &[&id, &&key.hash[..], &now, &sku]).await? else {
        return Ok((Err(UNKNOWN), None));
    };
    let access = access(&r);
    let product = match (&access, r.get::<_, Option<String>>(ACCESS_WIDTH)) {
        (Ok(_), Some(_)) => Some(product_at(&r, ACCESS_WIDTH)),
        _ => None,
    };
    Ok((access, product))
}

fn access(r: &Row) -> Access {
    let why: [bool; 6] = [
        r.get(7),
        r.get(8),
        r.get(9),
        r.get(10),
        r.get(11),
        r.get(12),
    ];
    match why {
        [false, false, false, false, false, false] => Ok(AccessGrant {
            client_id: r.get(0),
            scope: r.get(1),
            expires_at: r.get(2),
            issued_at: r.get(3),
            session_id: r.get(4),
            session_expires_at: r.get(5),
            seat: r.get::<_, i32>(6) == 1,
        }),
        [true, ..] => Err("the access token was revoked"),
        [_, _, true, ..] => Err("the access token's session has ended"),
        [_, _, _, true, ..] => Err(
            "the access token's session was revoked (its refresh token was revoked or reused, or an administrator ended it)",
        ),
        [_, true, ..] => Err("the access token expired; refresh it or request a new one"),
        [_, _, _, _, true, _] => Err("the access token's session expired; request a new token"),
        _ => Err("the access token's client is disabled"),
    }
}

/// Ends a session if it was live-or-expired but not revoked; whether it was.
pub(super) async fn revoke_session_in<C: GenericClient>(c: &C, id: i64, now: i64) -> R<bool> {
    let st = c
        .prepare_cached("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .await?;
    Ok(c.execute(&st, &[&id, &now]).await? == 1)
}

pub(super) async fn get_product<C: GenericClient>(
    c: &C,
    sku: &str,
    lock: bool,
) -> R<Option<Product>> {
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE sku = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let st = c.prepare_cached(&sql).await?;
    Ok(c.query_opt(&st, &[&sku]).await?.as_ref().map(product))
}

pub(super) fn saved_query(r: &Row) -> SavedQuery {
    SavedQuery {
        name: r.get(0),
        sql: r.get(1),
        scope: r.get(2),
        description: r.get(3),
    }
}

/// A READ ONLY transaction for GetData, with the sandbox entered.
pub(super) async fn sandbox_tx(
    c: &mut tokio_postgres::Client,
    limit: Duration,
) -> Result<tokio_postgres::Transaction<'_>, QueryError> {
    let tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(StoreError::from)?;
    getdata::enter(&tx, limit).await?;
    Ok(tx)
}

pub(super) async fn check_in(
    c: &mut tokio_postgres::Client,
    sql: &str,
    limit: Duration,
) -> Result<usize, QueryError> {
    let tx = sandbox_tx(c, limit).await?;
    getdata::check(&tx, sql).await
}

pub(super) async fn run_in(
    c: &mut tokio_postgres::Client,
    sql: &str,
    params: &[String],
    page: Page,
    limit: Duration,
) -> Result<serde_json::Value, QueryError> {
    let tx = sandbox_tx(c, limit).await?;
    let prepared = getdata::prepare(&tx, sql).await?;
    getdata::run(&tx, &prepared, params, page, limit).await
}

/// After a query, whatever it did (its transaction was rolled back when dropped):
/// releases any session-level advisory lock it took, so that the connection goes
/// back to the pool as it came.
pub(super) async fn release(c: &tokio_postgres::Client) -> Result<(), QueryError> {
    c.batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .map_err(StoreError::from)?;
    Ok(())
}
