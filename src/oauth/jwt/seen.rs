//! JWTs this process has signed or verified, by the SHA-256 of their text: the
//! same bytes need no second signature check. Two generations bound the memory: when
//! the newer fills, it becomes the older and the oldest goes.
use crate::crypto::{TokenHash, TokenKey};
use std::collections::HashMap;
use std::sync::Mutex;

/// Tokens per generation: about 90 bytes each, so the two hold under 2 MiB. A
/// token pushed out costs one signature check when it is next presented.
const GENERATION: usize = 8_192;

type Generation = HashMap<TokenHash, (TokenKey, i64)>;

#[derive(Default)]
pub struct Seen(Mutex<(Generation, Generation)>);

impl Seen {
    /// The row the token names and its `exp`.
    pub fn get(&self, tag: &TokenHash) -> Option<(TokenKey, i64)> {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.0.get(tag).or_else(|| g.1.get(tag)).copied()
    }

    pub fn insert(&self, tag: TokenHash, key: TokenKey, exp: i64) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.len() >= GENERATION {
            g.1 = std::mem::take(&mut g.0);
        }
        g.0.insert(tag, (key, exp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_generation_goes_when_the_newest_fills() {
        let seen = Seen::default();
        let key = |i: usize| TokenKey {
            id: Some(i as i64),
            hash: [0; 32],
        };
        let tag = |i: usize| {
            let mut t = [0u8; 32];
            t[..8].copy_from_slice(&i.to_be_bytes());
            t
        };
        for i in 0..=2 * GENERATION {
            seen.insert(tag(i), key(i), 1);
        }
        assert_eq!(seen.get(&tag(0)), None);
        assert_eq!(seen.get(&tag(GENERATION)), Some((key(GENERATION), 1)));
        assert_eq!(
            seen.get(&tag(2 * GENERATION)),
            Some((key(2 * GENERATION), 1))
        );
    }
}
