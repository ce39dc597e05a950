//! High-entropy tokens and their stored form.
//!
//! Every bearer secret Latch hands out (codes, session ids, client secrets,
//! tokens) is 256 random bits, base64url without padding, and only its SHA-256
//! is stored, so a leaked database grants nothing.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// 32 random bytes as 43 base64url characters.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system RNG failing is not a condition Latch can serve through.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        panic!("the operating system's random number generator failed");
    }
    bytes
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn sha256_hex(secret: &str) -> String {
    let hash = digest(&SHA256, secret.as_bytes());
    hash.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// base64url of the left half of SHA-256 (OIDC `at_hash`) or of all of it
/// (PKCE S256), chosen by `half`.
pub fn sha256_b64(input: &str, half: bool) -> String {
    let hash = digest(&SHA256, input.as_bytes());
    let bytes = hash.as_ref();
    let used = if half { &bytes[..bytes.len() / 2] } else { bytes };
    URL_SAFE_NO_PAD.encode(used)
}

pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    left.len() == right.len() && bool::from(left.ct_eq(right))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let first = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&first).unwrap().len(), 32);
        assert_ne!(first, random_token());
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(sha256_b64(verifier, false), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn hex_digest_is_stable() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
