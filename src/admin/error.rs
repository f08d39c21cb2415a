//! The admin operations' one error type; each front end maps it to its own form
//! (an exit message, or problem+json in `http::errors`).
use crate::store::StoreError;
use std::fmt;

#[derive(Debug)]
pub enum AdminError {
    /// The input named by `field` is wrong; `detail` says how.
    Invalid { field: &'static str, detail: String },
    /// What it acts on does not exist.
    NotFound(String),
    /// The name is taken.
    Conflict(String),
    /// The store failed.
    Store(StoreError),
}

impl AdminError {
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            detail: detail.into(),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { field, detail } => write!(f, "{field}: {detail}"),
            Self::NotFound(m) | Self::Conflict(m) => f.write_str(m),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AdminError {}
