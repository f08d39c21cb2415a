//! The JWT signing keys (API.md §10): listing them and rotating to a new one.
use super::{Admin, R};
use crate::store::SigningKey;
use serde::Serialize;

/// One row of `keys list`: never the private key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    pub kid: String,
    pub alg: &'static str,
    /// `signing` for the current key, `retired` for the others.
    pub status: &'static str,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl From<&SigningKey> for KeyRow {
    fn from(k: &SigningKey) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: "ES256",
            status: if k.retired_at.is_none() {
                "signing"
            } else {
                "retired"
            },
            created_at: k.created_at,
            retired_at: k.retired_at,
        }
    }
}

impl Admin {
    /// Newest first.
    pub async fn keys(&self) -> R<Vec<KeyRow>> {
        Ok(self
            .store
            .signing_keys()
            .await?
            .iter()
            .map(KeyRow::from)
            .collect())
    }

    /// A new key signs from the next grant of every instance; the old one is retired
    /// and stays published until the tokens it signed have expired. The new key's id.
    pub async fn rotate_key(&self) -> R<String> {
        let key = crate::oauth::jwt::rotate(&self.store, self.now).await?;
        self.record("keys.rotate", "", &format!("new signing key {}", key.kid))
            .await;
        Ok(key.kid)
    }
}
