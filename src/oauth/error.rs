//! The OAuth endpoints' errors (RFC 6749 §5.2) as plain values: their codes and
//! descriptions. The HTTP layer turns them into responses (http/errors.rs).
use crate::store::StoreError;

/// RFC 6749 §5.2 error responses, plus tollgate's licence and throttling codes.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Always the same description: a response never says whether a client exists.
    #[error("client authentication failed")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("grant_type must be client_credentials or refresh_token")]
    UnsupportedGrantType,
    /// `retry_after` is None when the pool has no seats at all.
    #[error("{}", licence_unavailable(retry_after.is_some()))]
    LicenceUnavailable { retry_after: Option<i64> },
    /// Too many failed authentications from this address for this client.
    #[error("too many failed authentications; try again later")]
    SlowDown { retry_after: i64 },
    /// Every PBKDF2 slot is busy and the queue is full.
    #[error("the server is busy verifying secrets; try again shortly")]
    TemporarilyUnavailable,
    #[error("only POST is allowed here")]
    MethodNotAllowed,
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive within this many seconds.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("internal error")]
    Server(#[from] StoreError),
}

/// Says how a seat comes free, since the client can often free one itself.
fn licence_unavailable(has_seats: bool) -> &'static str {
    if has_seats {
        "every licence seat is held; only the view scope can be granted now. A seat frees \
         when a session's refresh token expires (Retry-After), when its holder revokes that \
         refresh token (POST /revoke), or when an administrator ends sessions \
         (`tollgate sessions revoke ID | --client NAME | --all`)"
    } else {
        "the licence has no seats; only the view scope can be granted. An administrator \
         can add seats with `tollgate licences set N`"
    }
}

impl OAuthError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_)
            | Self::MethodNotAllowed
            | Self::PayloadTooLarge(_)
            | Self::RequestTimeout(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::LicenceUnavailable { .. } => "licence_unavailable",
            Self::SlowDown { .. } => "slow_down",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::Server(e) if e.is_unavailable() => "temporarily_unavailable",
            Self::Server(_) => "server_error",
        }
    }
}
