//! Resource routes: the product catalogue and /me (API.md §4).
use super::bearer::{Authenticated, Bearer};
use super::product_input::{parse_list_query, read_product, ProductOut};
use super::State;
use crate::error::Problem;
use crate::store::products::{self, IfMatch, Product, Write};
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
        .db
        .read(move |c| products::list(c, q.q.as_deref(), limit, offset))
        .await
        .map_err(Problem::from)?;
    let items: Vec<ProductOut> = items.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok()
        .json(json!({"items": items, "total": total, "limit": limit, "offset": offset})))
}

/// The token and the product are read in one trip to a reader.
pub async fn get_product(bearer: Bearer, sku: web::Path<String>) -> Reply {
    let sku = sku.into_inner();
    let key = sku.clone();
    let (_, found) = bearer
        .read(READ, "view", move |c| products::get(c, &key))
        .await?;
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
    let stored = p.clone();
    if !state
        .db
        .write(move |c| products::insert(c, &stored))
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
    let (stored, cond) = (p.clone(), if_match(&req));
    let outcome = state
        .db
        .write(move |c| products::upsert(c, &stored, cond.as_ref()))
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
    let (key, cond) = (sku.clone(), if_match(&req));
    let outcome = state
        .db
        .write(move |c| products::delete(c, &key, cond.as_ref()))
        .await
        .map_err(Problem::from)?;
    match outcome {
        Write::Deleted => Ok(HttpResponse::NoContent().finish()),
        Write::PreconditionFailed(current) => Err(precondition_failed(&sku, current)),
        _ => Err(Problem::not_found(format!("sku {sku}: no such product")).into()),
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
