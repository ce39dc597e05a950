//! Sealing one secret under a key derived from another: a rotated refresh
//! token keeps its successor sealed under a key only the rotated token
//! itself derives, so a benign repeat of that token can be answered with
//! the same successor while the database (which holds hashes only) still
//! reveals no live token.

use aws_lc_rs::aead::RandomizedNonceKey;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::aead;

/// Separates this key derivation from every other use of the token.
const LABEL: &[u8] = b"latch refresh token successor v1";

/// AES-256-GCM key: HMAC-SHA256 keyed with `source`. The token's stored
/// form is its SHA-256, from which this cannot be computed.
fn key(source: &str) -> Option<RandomizedNonceKey> {
    aead::key(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, source.as_bytes()), LABEL).as_ref())
}

/// `secret` sealed under a key derived from `source` (`aead` layout),
/// base64url. `None` only if the system's random number generator fails.
pub fn seal(source: &str, secret: &str) -> Option<String> {
    Some(URL_SAFE_NO_PAD.encode(aead::seal(&key(source)?, &[], secret.as_bytes())?))
}

/// The secret `seal(source, …)` produced, or `None` for any other source
/// or altered input.
pub fn open(source: &str, sealed: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    String::from_utf8(aead::open(&key(source)?, &[], &bytes)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_source_opens_what_it_sealed() {
        let sealed = seal("presented", "successor").unwrap();
        assert_eq!(open("presented", &sealed).as_deref(), Some("successor"));
        assert_eq!(open("another", &sealed), None);
        assert_eq!(open("presented", "AAAA"), None);
        let mut altered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(open("presented", &URL_SAFE_NO_PAD.encode(altered)), None);
        assert_ne!(seal("presented", "successor").unwrap(), sealed, "a fresh nonce each time");
    }
}
