//! PBKDF2 verification, bounded and shared.
//!
//! - At most `permits` verifications run at once (one per core), on the blocking pool.
//! - Requests presenting the same client id and secret against the same stored hash
//!   share one verification (single flight): 40 clients starting together cost one.
//! - Past the bound, a request waits briefly for a permit and then fails fast, so a
//!   flood of wrong secrets cannot starve clients whose credentials are already
//!   verified (they never get here) nor the resource routes (they never hash).
use crate::crypto::{verify_password, CredentialKey, Secret, TokenHash};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore};

/// Every permit is taken and the queue is full or waited too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many secrets are being verified right now")]
pub struct Busy;

type Flight = Arc<OnceCell<bool>>;

pub struct Verifier {
    permits: Semaphore,
    /// Most requests allowed to wait for a permit at once.
    max_waiting: usize,
    waiting: AtomicUsize,
    queue_wait: Duration,
    key: CredentialKey,
    flights: Mutex<HashMap<TokenHash, Flight>>,
    computed: AtomicUsize,
}

impl Verifier {
    pub fn new(permits: usize, queue_wait: Duration) -> Self {
        let permits = permits.max(1);
        Self {
            permits: Semaphore::new(permits),
            max_waiting: permits * 16,
            waiting: AtomicUsize::new(0),
            queue_wait,
            key: CredentialKey::random(),
            flights: Mutex::new(HashMap::new()),
            computed: AtomicUsize::new(0),
        }
    }

    /// PBKDF2 computations run so far.
    pub fn computed(&self) -> usize {
        self.computed.load(Ordering::Relaxed)
    }

    /// Does `secret` match `stored`? Identical concurrent questions share one answer.
    pub async fn verify(
        &self,
        client_id: &str,
        secret: &Secret,
        stored: &str,
    ) -> Result<bool, Busy> {
        let mut flight_key = self.key.tag(client_id, secret.expose());
        // Distinct stored hashes are distinct questions.
        for (k, b) in flight_key.iter_mut().zip(crate::crypto::token_hash(stored)) {
            *k ^= b;
        }
        let flight = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            flights.entry(flight_key).or_default().clone()
        };
        let result = flight
            .get_or_try_init(|| self.compute(secret.clone(), stored.to_owned()))
            .await
            .copied();
        // The first to finish clears the entry; later askers start a new flight
        // (a success is remembered elsewhere, so they rarely need one).
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights
            .get(&flight_key)
            .is_some_and(|f| Arc::ptr_eq(f, &flight))
        {
            flights.remove(&flight_key);
        }
        result
    }

    async fn compute(&self, secret: Secret, stored: String) -> Result<bool, Busy> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let permit = tokio::time::timeout(self.queue_wait, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let _permit = match permit {
            Ok(Ok(p)) => p,
            _ => return Err(Busy),
        };
        self.computed.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || verify_password(secret.expose(), &stored))
            .await
            .map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hash_password;

    #[tokio::test]
    async fn identical_requests_share_one_verification_and_answer_alike() {
        let v = Arc::new(Verifier::new(1, Duration::from_secs(5)));
        let stored = hash_password("right", 200_000);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (v, stored) = (v.clone(), stored.clone());
                tokio::spawn(async move { v.verify("demo", &Secret::new("right"), &stored).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(true));
        }
        assert_eq!(v.computed(), 1, "twenty identical requests, one PBKDF2");
        assert_eq!(
            v.verify("demo", &Secret::new("wrong"), &stored).await,
            Ok(false)
        );
    }

    #[tokio::test]
    async fn past_the_bound_requests_fail_fast() {
        let v = Arc::new(Verifier::new(1, Duration::from_millis(1)));
        let stored = hash_password("x", 200_000);
        let tasks: Vec<_> = (0..30)
            .map(|i| {
                let (v, stored) = (v.clone(), stored.clone());
                tokio::spawn(async move {
                    v.verify("demo", &Secret::new(format!("wrong-{i}")), &stored)
                        .await
                })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            if t.await.unwrap() == Err(Busy) {
                busy += 1;
            }
        }
        assert!(
            busy > 0,
            "distinct secrets beyond the bound must be refused"
        );
    }
}
