//! Resource routes: the product catalogue (API.md §4).
use super::bearer::{Authenticated, Bearer};
use super::errors::Problem;
use super::product_input::{parse_list_query, read_product, ProductOut};
use super::State;
use crate::store::{IfMatch, Product, Write};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

type Reply = Result<HttpResponse, actix_web::Error>;

const READ: &[&str] = &["view", "all"];
const WRITE: &[&str] = &["all"];

pub async fn list_products(auth: Authenticated, req: HttpRequest, state: State) -> Reply {
    auth.require(READ, "view")?;
    let q = parse_list_query(req.query_string())?;
    let (limit, offset) = (q.limit, q.offset);
    let (items, total) = state
        .store
        .list_products(q.q, limit, offset)
        .await
        .map_err(Problem::from)?;
    let items: Vec<ProductOut> = items.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"items": items, "total": total, "limit": limit, "offset": offset})))
}

/// The token and the product are read in one trip to a reader.
pub async fn get_product(bearer: Bearer, sku: web::Path<String>) -> Reply {
    let sku = sku.into_inner();
    let (_, found) = bearer.product(READ, "view", sku.clone()).await?;
    let p = found.ok_or_else(|| Problem::not_found(format!("sku {sku}: no such product")))?;
    Ok(with_etag(HttpResponse::Ok(), p))
}

fn location(state: &State, sku: &str) -> String {
    format!("{}/api/v1/products/{sku}", state.settings.base_path)
}

/// The product with its `ETag` (RFC 9110 §8.8.3), for conditional writes.
fn with_etag(mut b: actix_web::HttpResponseBuilder, p: Product) -> HttpResponse {
    b.insert_header((header::ETAG, p.etag()))
        .json(ProductOut::from(p))
}

/// RFC 9110 §13.1.1 `If-Match`: `*` or a list of entity tags. Weak tags never
/// match under strong comparison, so they are dropped here.
fn if_match(req: &HttpRequest) -> Option<IfMatch> {
    let values: Vec<&str> = req
        .headers()
        .get_all(header::IF_MATCH)
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    if values.iter().any(|v| v.trim() == "*") {
        return Some(IfMatch::Any);
    }
    let tags = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| t.len() >= 2 && t.starts_with('"') && t.ends_with('"'))
        .map(str::to_owned)
        .collect();
    Some(IfMatch::Tags(tags))
}

fn precondition_failed(sku: &str, current: Option<String>) -> actix_web::Error {
    let detail = match current {
        Some(tag) => format!("If-Match: product {sku} has changed; its ETag is now {tag}"),
        None => format!("If-Match: product {sku} does not exist"),
    };
    Problem::new(
        actix_web::http::StatusCode::PRECONDITION_FAILED,
        "Precondition Failed",
        detail,
    )
    .into()
}

pub async fn post_product(
    auth: Authenticated,
    req: HttpRequest,
    body: web::Payload,
    state: State,
) -> Reply {
    auth.require(WRITE, "all")?;
    let p = read_product(&req, body, state.clock.now()).await?;
    if !state
        .store
        .add_product(p.clone())
        .await
        .map_err(Problem::from)?
    {
        let detail = format!(
            "sku {}: a product with this sku exists; use PUT to replace it",
            p.sku
        );
        return Err(Problem::conflict(detail).into());
    }
    let mut b = HttpResponse::Created();
    b.insert_header((header::LOCATION, location(&state, &p.sku)));
    Ok(with_etag(b, p))
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
    let outcome = state
        .store
        .put_product(p.clone(), if_match(&req))
        .await
        .map_err(Problem::from)?;
    match outcome {
        Write::Created => {
            let mut b = HttpResponse::Created();
            b.insert_header((header::LOCATION, location(&state, &p.sku)));
            Ok(with_etag(b, p))
        }
        Write::PreconditionFailed(current) => Err(precondition_failed(&p.sku, current)),
        _ => Ok(with_etag(HttpResponse::Ok(), p)),
    }
}

pub async fn delete_product(
    auth: Authenticated,
    sku: web::Path<String>,
    req: HttpRequest,
    state: State,
) -> Reply {
    auth.require(WRITE, "all")?;
    let sku = sku.into_inner();
    let outcome = state
        .store
        .delete_product(sku.clone(), if_match(&req))
        .await
        .map_err(Problem::from)?;
    match outcome {
        Write::Deleted => Ok(HttpResponse::NoContent().finish()),
        Write::PreconditionFailed(current) => Err(precondition_failed(&sku, current)),
        _ => Err(Problem::not_found(format!("sku {sku}: no such product")).into()),
    }
}
