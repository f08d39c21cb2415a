//! Resource input: product bodies and list parameters, parsed at the edge (API.md §4).
use super::body::{read_limited, BodyError};
use crate::clock::rfc3339;
use crate::http::errors::Problem;
use crate::store::Product;
use actix_web::{web, HttpRequest};
use serde::{Deserialize, Serialize};

/// Product writes carry one small JSON object.
pub const PRODUCT_BODY_LIMIT: usize = 64 * 1024;
/// Longest search string, in characters.
pub const MAX_Q: usize = 200;
pub const MAX_LIMIT: i64 = 500;

#[derive(Serialize)]
pub struct ProductOut {
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

/// API.md §4's sku alphabet, minus `.` and `..`: clients remove such dot
/// segments from URLs (RFC 3986 §5.2.4), so the product could never be reached.
pub fn valid_sku(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && s != "."
        && s != ".."
}

impl ProductIn {
    fn validate(self, now: i64) -> Result<Product, Problem> {
        if !valid_sku(&self.sku) {
            return Err(Problem::bad_request(
                "sku must be 1 to 64 characters of A-Z a-z 0-9 . _ -, and not . or ..",
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

pub async fn read_product(
    req: &HttpRequest,
    body: web::Payload,
    now: i64,
) -> Result<Product, Problem> {
    let input: ProductIn = read_json(req, body, PRODUCT_BODY_LIMIT).await?;
    input.validate(now)
}

/// A JSON body of at most `limit` bytes as `T`; a problem names the member at fault.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<T, Problem> {
    let bytes = read_limited(req, body, limit).await.map_err(|e| match e {
        BodyError::TooLarge => Problem::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            format!("body: at most {limit} bytes"),
        ),
        BodyError::Broken => Problem::bad_request("body: could not be read"),
        BodyError::TimedOut(secs) => Problem::new(
            actix_web::http::StatusCode::REQUEST_TIMEOUT,
            "Request Timeout",
            format!("body: did not arrive within {secs} s"),
        ),
    })?;
    // serde would take a struct from a JSON array too; the API takes objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Problem::bad_request("body: expected a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Problem::bad_request(format!("body: {inner}"))
        } else {
            Problem {
                field: Some(path.clone()),
                ..Problem::bad_request(format!("{path}: {inner}"))
            }
        }
    })
}

#[derive(Debug, PartialEq)]
pub struct ListQuery {
    pub q: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

pub fn parse_list_query(qs: &str) -> Result<ListQuery, Problem> {
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
            "q" if v.chars().count() > MAX_Q => {
                return Err(Problem::bad_request("q must be at most 200 characters"))
            }
            "q" if !v.is_empty() => out.q = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(out)
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
