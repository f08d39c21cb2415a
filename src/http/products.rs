//! Resource routes: the product catalogue and /me (API.md §4).
use super::bearer::Authenticated;
use super::body::{read_limited, BodyError};
use super::State;
use crate::clock::rfc3339;
use crate::error::Problem;
use crate::store::products::{self, Product};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

type Reply = Result<HttpResponse, actix_web::Error>;

const READ: &[&str] = &["view", "all"];
const WRITE: &[&str] = &["all"];
/// Product writes carry one small JSON object.
pub const PRODUCT_BODY_LIMIT: usize = 64 * 1024;
pub const MAX_LIMIT: i64 = 500;

#[derive(Serialize)]
struct ProductOut {
    sku: String,
    name: String,
    description: String,
    price_cents: i64,
    stock: i64,
    updated_at: String,
}

impl From<Product> for ProductOut {
    fn from(p: Product) -> Self {
        Self {
            updated_at: rfc3339(p.updated_at),
            sku: p.sku,
            name: p.name,
            description: p.description,
            price_cents: p.price_cents,
            stock: p.stock,
        }
    }
}

/// What POST and PUT accept; anything else in the body is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductIn {
    sku: String,
    name: String,
    #[serde(default)]
    description: String,
    price_cents: i64,
    stock: i64,
}

pub fn valid_sku(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl ProductIn {
    fn validate(self, now: i64) -> Result<Product, Problem> {
        if !valid_sku(&self.sku) {
            return Err(Problem::bad_request(
                "sku must be 1 to 64 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        if !(1..=200).contains(&self.name.chars().count()) {
            return Err(Problem::bad_request("name must be 1 to 200 characters"));
        }
        if self.description.chars().count() > 2000 {
            return Err(Problem::bad_request(
                "description must be at most 2000 characters",
            ));
        }
        if self.price_cents < 0 {
            return Err(Problem::bad_request("price_cents must be an integer >= 0"));
        }
        if self.stock < 0 {
            return Err(Problem::bad_request("stock must be an integer >= 0"));
        }
        Ok(Product {
            sku: self.sku,
            name: self.name,
            description: self.description,
            price_cents: self.price_cents,
            stock: self.stock,
            updated_at: now,
        })
    }
}

async fn read_product(req: &HttpRequest, body: web::Payload, now: i64) -> Result<Product, Problem> {
    let bytes = read_limited(req, body, PRODUCT_BODY_LIMIT)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => Problem::new(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "Payload Too Large",
                format!("body: at most {PRODUCT_BODY_LIMIT} bytes"),
            ),
            BodyError::Broken => Problem::bad_request("body: could not be read"),
        })?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let input: ProductIn = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Problem::bad_request(format!("body: {inner}"))
        } else {
            Problem::bad_request(format!("{path}: {inner}"))
        }
    })?;
    input.validate(now)
}

#[derive(Debug, PartialEq)]
struct ListQuery {
    q: Option<String>,
    limit: i64,
    offset: i64,
}

fn parse_list_query(qs: &str) -> Result<ListQuery, Problem> {
    let mut out = ListQuery {
        q: None,
        limit: 50,
        offset: 0,
    };
    for (k, v) in form_urlencoded::parse(qs.as_bytes()) {
        match &*k {
            "limit" => {
                out.limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| Problem::bad_request("limit must be an integer from 1 to 500"))?
            }
            "offset" => {
                out.offset = v
                    .parse()
                    .ok()
                    .filter(|n: &i64| *n >= 0)
                    .ok_or_else(|| Problem::bad_request("offset must be an integer >= 0"))?
            }
            "q" if !v.is_empty() => out.q = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(out)
}

pub async fn list_products(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    auth.require(READ, "view")?;
    let q = parse_list_query(req.query_string())?;
    let (limit, offset) = (q.limit, q.offset);
    let (items, total) = state
        .db
        .read(move |c| products::list(c, q.q.as_deref(), limit, offset))
        .await
        .map_err(Problem::from)?;
    let items: Vec<ProductOut> = items.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"items": items, "total": total, "limit": limit, "offset": offset})))
}

pub async fn get_product(auth: Authenticated, sku: web::Path<String>, state: State) -> Reply {
    auth.require(READ, "view")?;
    let sku = sku.into_inner();
    let key = sku.clone();
    match state
        .db
        .read(move |c| products::get(c, &key))
        .await
        .map_err(Problem::from)?
    {
        Some(p) => Ok(HttpResponse::Ok().json(ProductOut::from(p))),
        None => Err(Problem::not_found(format!("sku {sku}: no such product")).into()),
    }
}

fn location(state: &State, sku: &str) -> String {
    format!("{}/api/v1/products/{sku}", state.settings.base_path)
}

pub async fn post_product(
    auth: Authenticated,
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Reply {
    auth.require(WRITE, "all")?;
    let p = read_product(&req, body, state.clock.now()).await?;
    let stored = p.clone();
    if !state
        .db
        .write(move |c| products::insert(c, &stored))
        .await
        .map_err(Problem::from)?
    {
        return Err(Problem::conflict(format!(
            "sku {}: a product with this sku exists; use PUT to replace it",
            p.sku
        ))
        .into());
    }
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location(&state, &p.sku)))
        .json(ProductOut::from(p)))
}

pub async fn put_product(
    auth: Authenticated,
    sku: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Reply {
    auth.require(WRITE, "all")?;
    let p = read_product(&req, body, state.clock.now()).await?;
    if p.sku != *sku {
        return Err(Problem::bad_request("sku: the body's sku differs from the URL's").into());
    }
    let stored = p.clone();
    let created = state
        .db
        .write(move |c| products::upsert(c, &stored))
        .await
        .map_err(Problem::from)?;
    let mut b = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    if created {
        b.insert_header((header::LOCATION, location(&state, &p.sku)));
    }
    Ok(b.json(ProductOut::from(p)))
}

pub async fn delete_product(auth: Authenticated, sku: web::Path<String>, state: State) -> Reply {
    auth.require(WRITE, "all")?;
    let sku = sku.into_inner();
    let key = sku.clone();
    if state
        .db
        .write(move |c| products::delete(c, &key))
        .await
        .map_err(Problem::from)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Problem::not_found(format!("sku {sku}: no such product")).into())
    }
}

/// GET /api/v1/me: what the presented token is.
pub async fn get_me(auth: Authenticated) -> HttpResponse {
    let g = auth.0;
    HttpResponse::Ok().json(json!({
        "client_id": g.client_id,
        "scope": g.scope,
        "expires_at": g.expires_at,
        "session_id": g.session_id,
        "session_expires_at": g.session_expires_at,
        "seat": g.seat,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_bounds() {
        assert_eq!(
            parse_list_query("").unwrap(),
            ListQuery {
                q: None,
                limit: 50,
                offset: 0
            }
        );
        assert!(parse_list_query("limit=abc")
            .unwrap_err()
            .detail
            .contains("limit"));
        assert!(parse_list_query("limit=0").is_err());
        assert!(parse_list_query("limit=501").is_err());
        assert!(parse_list_query("offset=-1")
            .unwrap_err()
            .detail
            .contains("offset"));
        assert_eq!(
            parse_list_query("q=nut&limit=5").unwrap().q.as_deref(),
            Some("nut")
        );
    }
}
