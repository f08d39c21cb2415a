//! jsonwebtoken's JOSE handling (header, claims, validation, JWK) over ring's ECDSA
//! P-256: the one algorithm tollgate signs with, ES256 (RFC 7518 §3.4). Any other
//! algorithm is refused here, so a token whose header names `none`, an HMAC or
//! anything else never reaches a verifier. ring is already tollgate's crypto, signs
//! several times faster than the RustCrypto backend, and brings no C toolchain
//! (the aws-lc backend would).
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{new_error, ErrorKind, Result};
use jsonwebtoken::signature::{Error, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use std::sync::{Arc, Mutex, OnceLock};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes this provider jsonwebtoken's for the process (once; later calls do nothing).
pub fn install() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Err: a provider was installed already, which can only be this one.
        let _ = PROVIDER.install_default();
    });
}

/// Parsed key pairs by their PKCS#8 bytes: parsing one costs about as much as a
/// signature, and jsonwebtoken hands the signer the bytes on every call.
fn key_pair(pkcs8: &[u8]) -> Result<Arc<EcdsaKeyPair>> {
    static PARSED: Mutex<Vec<(Vec<u8>, Arc<EcdsaKeyPair>)>> = Mutex::new(Vec::new());
    let mut parsed = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, k)) = parsed.iter().find(|(b, _)| b == pkcs8) {
        return Ok(k.clone());
    }
    let k = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
    let k = Arc::new(k);
    // A few keys live at once (the current one and those retired lately).
    if parsed.len() >= 8 {
        parsed.remove(0);
    }
    parsed.push((pkcs8.to_vec(), k.clone()));
    Ok(k)
}

struct Es256Signer(Arc<EcdsaKeyPair>);

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, Error> {
        let sig = self
            .0
            .sign(&SystemRandom::new(), msg)
            .map_err(|_| Error::new())?;
        Ok(sig.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct Es256Verifier(Vec<u8>);

impl Verifier<Vec<u8>> for Es256Verifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), Error> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(msg, signature)
            .map_err(|_| Error::new())
    }
}

impl JwtVerifier for Es256Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::ES256 || key.family() != AlgorithmFamily::Ec {
        return Err(new_error(ErrorKind::InvalidAlgorithm));
    }
    Ok(Box::new(Es256Signer(key_pair(key.as_bytes())?)))
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::ES256 || key.family() != AlgorithmFamily::Ec {
        return Err(new_error(ErrorKind::InvalidAlgorithm));
    }
    Ok(Box::new(Es256Verifier(key.try_get_as_bytes()?.to_vec())))
}
