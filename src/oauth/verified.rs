//! Recently verified client credentials, so that a client asking for tokens again
//! does not pay PBKDF2 each time.
//!
//! Holds a keyed HMAC of (client id, secret) — never the secret — together with the
//! stored password hash it was checked against: when an administrator resets the
//! secret the stored hash changes and the entry no longer matches.
use crate::crypto::{digest_eq, CredentialKey, TokenHash};
use std::collections::HashMap;
use std::sync::Mutex;

/// Bound on remembered clients; past it the record starts afresh.
const MAX_ENTRIES: usize = 10_000;

pub struct VerifiedCredentials {
    key: CredentialKey,
    entries: Mutex<HashMap<String, (TokenHash, String)>>,
}

impl Default for VerifiedCredentials {
    fn default() -> Self {
        Self {
            key: CredentialKey::random(),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl VerifiedCredentials {
    pub fn is_verified(&self, client_id: &str, secret: &str, stored_hash: &str) -> bool {
        let tag = self.key.tag(client_id, secret);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(client_id)
            .is_some_and(|(t, h)| h == stored_hash && digest_eq(t, &tag))
    }

    pub fn remember(&self, client_id: &str, secret: &str, stored_hash: &str) {
        let tag = self.key.tag(client_id, secret);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(client_id) {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), (tag, stored_hash.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_dies_with_the_stored_hash() {
        let v = VerifiedCredentials::default();
        v.remember("demo", "s", "hash1");
        assert!(v.is_verified("demo", "s", "hash1"));
        assert!(!v.is_verified("demo", "wrong", "hash1"));
        assert!(!v.is_verified("demo", "s", "hash2"));
        assert!(!v.is_verified("other", "s", "hash1"));
    }
}
