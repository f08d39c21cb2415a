//! Recently verified client credentials, so that a client asking for tokens again
//! pays neither PBKDF2 nor a database read.
//!
//! Holds a keyed HMAC of (client id, secret) — never the secret — together with the
//! client record it was checked against. The record may go stale when an
//! administrator changes the user from another process, so whoever acts on it must
//! confirm it first: the token endpoint confirms it on the writer, inside the grant's
//! transaction (the SQLite engine keeps confirmed records: store/sqlite/users.rs), and forgets it if it
//! changed. A reset secret changes the stored hash, so the old entry no longer
//! confirms.
use crate::crypto::{digest_eq, CredentialKey, TokenHash};
use crate::store::ClientRecord;
use std::collections::HashMap;
use std::sync::Mutex;

/// Bound on remembered clients; past it the record starts afresh.
const MAX_ENTRIES: usize = 10_000;

pub struct VerifiedCredentials {
    key: CredentialKey,
    entries: Mutex<HashMap<String, (TokenHash, ClientRecord)>>,
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
    /// The remembered record, if this secret is the one verified for this client.
    pub fn client(&self, client_id: &str, secret: &str) -> Option<ClientRecord> {
        let tag = self.key.tag(client_id, secret);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(client_id)
            .filter(|(t, _)| digest_eq(t, &tag))
            .map(|(_, r)| r.clone())
    }

    /// Whether this secret was verified against this stored hash.
    pub fn is_verified(&self, client_id: &str, secret: &str, stored_hash: &str) -> bool {
        self.client(client_id, secret)
            .is_some_and(|r| r.password_hash == stored_hash)
    }

    pub fn remember(&self, client_id: &str, secret: &str, record: &ClientRecord) {
        let tag = self.key.tag(client_id, secret);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(client_id) {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), (tag, record.clone()));
    }

    /// Drops a record found stale.
    pub fn forget(&self, client_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hash: &str) -> ClientRecord {
        ClientRecord {
            id: 1,
            password_hash: hash.into(),
            api_user: true,
            enabled: true,
            scopes: vec![("view".into(), false)],
        }
    }

    #[test]
    fn entry_dies_with_the_stored_hash() {
        let v = VerifiedCredentials::default();
        v.remember("demo", "s", &record("hash1"));
        assert!(v.is_verified("demo", "s", "hash1"));
        assert!(!v.is_verified("demo", "wrong", "hash1"));
        assert!(!v.is_verified("demo", "s", "hash2"));
        assert!(!v.is_verified("other", "s", "hash1"));
        assert_eq!(v.client("demo", "s"), Some(record("hash1")));
        assert_eq!(v.client("demo", "wrong"), None);
        v.forget("demo");
        assert_eq!(v.client("demo", "s"), None);
    }
}
