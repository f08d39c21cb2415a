//! Randomness, token hashing and password hashing, in one place.
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use std::fmt;
use std::num::NonZeroU32;

/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

pub type TokenHash = [u8; 32];

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails when the OS has no entropy source; nothing can go on then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random source failed");
    buf
}

/// A new token's secret part: 256 bits from the CSPRNG. The token a client sees is
/// base64url(row id as 8 bytes big-endian ‖ secret), so that it finds its row by the
/// row id (tokens are appended to their tables instead of being scattered over them
/// by a random key); the row keeps only the SHA-256 of the secret.
pub struct NewToken {
    secret: [u8; 32],
    pub hash: TokenHash,
}

pub fn new_token() -> NewToken {
    token_from(random_bytes::<32>())
}

/// An access and a refresh token from one call to the OS's random source.
pub fn new_token_pair() -> (NewToken, NewToken) {
    let both = random_bytes::<64>();
    let (mut a, mut r) = ([0u8; 32], [0u8; 32]);
    a.copy_from_slice(&both[..32]);
    r.copy_from_slice(&both[32..]);
    (token_from(a), token_from(r))
}

fn token_from(secret: [u8; 32]) -> NewToken {
    let hash = sha256(&secret);
    NewToken { secret, hash }
}

impl NewToken {
    /// The text handed to the client, once its row id is known.
    pub fn text(&self, id: i64) -> String {
        let mut raw = [0u8; 40];
        raw[..8].copy_from_slice(&id.to_be_bytes());
        raw[8..].copy_from_slice(&self.secret);
        URL_SAFE_NO_PAD.encode(raw)
    }
}

/// How a presented token is looked up: by row id and the hash of its secret, or,
/// for a token issued before tokens carried their row id, by the hash of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenKey {
    pub id: Option<i64>,
    pub hash: TokenHash,
}

pub fn token_key(text: &str) -> TokenKey {
    let mut raw = [0u8; 40];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut raw) {
        Ok(40) => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&raw[..8]);
            TokenKey {
                id: Some(i64::from_be_bytes(id)),
                hash: sha256(&raw[8..]),
            }
        }
        _ => TokenKey {
            id: None,
            hash: token_hash(text),
        },
    }
}

fn sha256(bytes: &[u8]) -> TokenHash {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of a text: the stored form of tokens issued before row ids (and a key
/// for the PBKDF2 single flight).
pub fn token_hash(token: &str) -> TokenHash {
    sha256(token.as_bytes())
}

/// A client secret for `user add`: 32 random bytes, base64url.
pub fn new_secret() -> Secret {
    Secret(URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// `$pbkdf2-sha256$i=<iterations>$<salt b64>$<hash b64>` (PHC string format, unpadded base64).
pub fn hash_password(secret: &str, iterations: u32) -> String {
    let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    let salt = random_bytes::<SALT_LEN>();
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        secret.as_bytes(),
        &mut out,
    );
    format!(
        "$pbkdf2-sha256$i={}${}${}",
        iterations,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

struct Phc {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

fn parse_phc(stored: &str) -> Option<Phc> {
    let mut parts = stored.split('$');
    if !parts.next()?.is_empty() || parts.next()? != "pbkdf2-sha256" {
        return None;
    }
    let iterations = parts.next()?.strip_prefix("i=")?.parse::<u32>().ok()?;
    let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
    let hash = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
    if parts.next().is_some() || hash.is_empty() {
        return None;
    }
    Some(Phc {
        iterations: NonZeroU32::new(iterations)?,
        salt,
        hash,
    })
}

/// The iteration count of a stored PHC string.
pub fn iterations(stored: &str) -> Option<u32> {
    parse_phc(stored).map(|p| p.iterations.get())
}

/// Constant-time check of `secret` against a stored PHC string; a malformed string never matches.
pub fn verify_password(secret: &str, stored: &str) -> bool {
    match parse_phc(stored) {
        Some(p) => pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            p.iterations,
            &p.salt,
            secret.as_bytes(),
            &p.hash,
        )
        .is_ok(),
        None => false,
    }
}

/// Keyed digest for the verified-credential cache: lets us recognise a secret
/// we have already checked without keeping the secret itself.
pub struct CredentialKey(hmac::Key);

impl CredentialKey {
    pub fn random() -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>()))
    }
    pub fn tag(&self, client_id: &str, secret: &str) -> TokenHash {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(client_id.as_bytes());
        ctx.update(&[0]);
        ctx.update(secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

/// A new ECDSA P-256 signing key (API.md §10): PKCS#8 DER, and the public key's
/// affine coordinates in base64url, as a JWK carries them.
pub struct NewSigningKey {
    pub private_pkcs8: Vec<u8>,
    pub x: String,
    pub y: String,
    /// RFC 7638 thumbprint of the public JWK: a `kid` that names the key itself.
    pub thumbprint: String,
}

pub fn new_signing_key() -> NewSigningKey {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = SystemRandom::new();
    // Fails only without an entropy source, as random_bytes does.
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("the operating system's random source failed");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("ring parses the key it generated");
    // An uncompressed SEC1 point: 0x04 ‖ x ‖ y.
    let point = pair.public_key().as_ref();
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
    // RFC 7638 §3.2: the required members, lexicographic, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let thumbprint = URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()));
    NewSigningKey {
        private_pkcs8: pkcs8.as_ref().to_vec(),
        x,
        y,
        thumbprint,
    }
}

/// SHA-256 of anything: the key the JWT verification cache files a token under.
pub fn digest(bytes: &[u8]) -> TokenHash {
    sha256(bytes)
}

/// Constant-time equality for digests (`subtle`, as rustls uses it).
pub fn digest_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_its_row_id_and_only_its_secret_is_hashed() {
        let t = new_token();
        let text = t.text(42);
        assert_eq!(text.len(), 54);
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            token_key(&text),
            TokenKey {
                id: Some(42),
                hash: t.hash
            }
        );
        let other = new_token();
        assert_ne!(token_key(&other.text(42)).hash, t.hash);
        // A token from before row ids (43 characters) is looked up by its text's hash.
        let legacy = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(
            token_key(&legacy),
            TokenKey {
                id: None,
                hash: token_hash(&legacy)
            }
        );
        assert_eq!(token_key("not base64!").id, None);
    }

    #[test]
    fn password_round_trip_and_wrong_secret() {
        let h = hash_password("s3cret", 1000);
        assert!(h.starts_with("$pbkdf2-sha256$i=1000$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3creT", &h));
        assert!(!verify_password("s3cret", "garbage"));
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a.text(1), b.text(1));
        assert_ne!(a.hash, b.hash);
        let (c, d) = new_token_pair();
        assert_ne!(c.secret, d.secret);
        assert_ne!(c.hash, d.hash);
    }

    #[test]
    fn secret_debug_hides_value() {
        assert_eq!(format!("{:?}", Secret::new("x")), "***");
    }
}
