//! Every error type turned into its wire format, here and only here.
//!
//! - [`OAuthError`]: the token, revocation and introspection endpoints (RFC 6749 §5.2).
//! - [`BearerError`]: resource routes' authentication (RFC 6750 §3).
//! - [`Problem`]: resource input and lookups (RFC 9457 problem details).
//! - [`StoreError`]: anything below the HTTP layer that is not the client's fault.
use crate::admin::AdminError;
use crate::oauth::OAuthError;
use crate::store::StoreError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

pub const REALM: &str = "tollgate";

/// What a client is told while the database is unavailable.
const UNAVAILABLE: &str = "the database cannot take requests right now; try again shortly";
/// `Retry-After` while the database is unavailable, seconds.
const UNAVAILABLE_RETRY_SECS: i64 = 5;
/// Repeated failures of the database are logged at most this often.
static STORE_FAULTS: crate::log_limit::Limited =
    crate::log_limit::Limited::new(std::time::Duration::from_secs(10));

/// Logs a failure below the HTTP layer once, where it becomes a response: a bug at
/// error level every time, an unavailable database at warn level, rate-limited.
fn report(context: &str, e: &StoreError) {
    if !e.is_unavailable() {
        log::error!("{context}: {e}");
    } else if let Some(held) = STORE_FAULTS.admit() {
        log::warn!("{context}: database unavailable: {e}{held}");
    }
}

/// `Retry-After` is whole seconds, at least 1.
pub fn retry_after_value(secs: i64) -> HeaderValue {
    HeaderValue::from(secs.max(1))
}

/// RFC 6749 §5.1: token responses, errors included, must not be cached.
pub fn no_store(resp: &mut HttpResponse) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::LicenceUnavailable { .. } => StatusCode::FORBIDDEN,
            Self::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Server(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Server(e) = self {
            report("token endpoint", e);
        }
        let mut b = HttpResponse::build(self.status_code());
        match self {
            Self::InvalidClient => {
                b.insert_header((header::WWW_AUTHENTICATE, format!("Basic realm=\"{REALM}\"")));
            }
            Self::LicenceUnavailable {
                retry_after: Some(s),
            } => {
                b.insert_header((header::RETRY_AFTER, retry_after_value(*s)));
            }
            Self::MethodNotAllowed => {
                b.insert_header((header::ALLOW, "POST"));
            }
            Self::SlowDown { retry_after } => {
                b.insert_header((header::RETRY_AFTER, retry_after_value(*retry_after)));
            }
            Self::TemporarilyUnavailable => {
                b.insert_header((header::RETRY_AFTER, retry_after_value(1)));
            }
            Self::Server(e) if e.is_unavailable() => {
                b.insert_header((
                    header::RETRY_AFTER,
                    retry_after_value(UNAVAILABLE_RETRY_SECS),
                ));
            }
            _ => {}
        }
        let description = match self {
            Self::Server(e) if e.is_unavailable() => UNAVAILABLE.to_owned(),
            other => other.to_string(),
        };
        let mut resp = b.json(json!({"error": self.code(), "error_description": description}));
        no_store(&mut resp);
        resp
    }
}

/// RFC 6750 §3: failures to authenticate a resource request.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// §3.1: no authentication information at all — no error code.
    #[error("no bearer token")]
    Missing,
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// Why: unknown, expired or revoked (the presenter holds the token).
    #[error("{0}")]
    InvalidToken(&'static str),
    /// The scope that would have sufficed.
    #[error("the access token lacks the required scope")]
    InsufficientScope(String),
    #[error("internal error")]
    Server(#[from] StoreError),
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Server(e) => Problem::from_store(e).status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let challenge = match self {
            Self::Missing => format!("Bearer realm=\"{REALM}\""),
            Self::InvalidRequest(_) => {
                format!("Bearer realm=\"{REALM}\", error=\"invalid_request\"")
            }
            Self::InvalidToken(_) => format!(
                "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{self}\""
            ),
            Self::InsufficientScope(scope) => {
                format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\"")
            }
            Self::Server(e) => {
                report("resource authentication", e);
                return Problem::from_store(e).error_response();
            }
        };
        let code = match self {
            Self::Missing => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope(_) => Some("insufficient_scope"),
            Self::Server(_) => None,
        };
        let mut b = HttpResponse::build(self.status_code());
        b.insert_header((header::WWW_AUTHENTICATE, challenge));
        match code {
            Some(code) => b.json(json!({"error": code, "error_description": self.to_string()})),
            None => b.finish(),
        }
    }
}

/// RFC 9457 problem details for resource input and lookups.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{title}: {detail}")]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    pub retry_after: Option<i64>,
    /// The request member at fault, when one is (an extension member, `field`).
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            title,
            detail: detail.into(),
            retry_after: None,
            field: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", detail)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "internal error",
        )
    }
}

impl Problem {
    /// What a client is told of a failure below the HTTP layer (not logged here).
    fn from_store(e: &StoreError) -> Self {
        if e.is_unavailable() {
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable",
                UNAVAILABLE,
            );
            p.retry_after = Some(UNAVAILABLE_RETRY_SECS);
            p
        } else {
            Problem::internal()
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        report("resource route", &e);
        Problem::from_store(&e)
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid { field, detail } => Problem {
                field: Some(field.to_owned()),
                ..Problem::bad_request(format!("{field}: {detail}"))
            },
            AdminError::NotFound(m) => Problem::not_found(m),
            AdminError::Conflict(m) => Problem::conflict(m),
            AdminError::Store(e) => {
                report("admin route", &e);
                Problem::from_store(&e)
            }
        }
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        b.content_type("application/problem+json");
        if let Some(s) = self.retry_after {
            b.insert_header((header::RETRY_AFTER, retry_after_value(s)));
        }
        let mut body = json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = &self.field {
            body["field"] = json!(field);
        }
        b.body(body.to_string())
    }
}

impl From<actix_web::error::BlockingError> for StoreError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        StoreError::Cancelled
    }
}
