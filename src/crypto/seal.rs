//! Sealing one secret under a key derived from another: a rotated refresh
//! token keeps its successor sealed under a key only the rotated token
//! itself derives, so a benign repeat of that token can be answered with
//! the same successor while the database (which holds hashes only) still
//! reveals no live token.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::secret::random_bytes;

/// Separates this key derivation from every other use of the token.
const LABEL: &[u8] = b"latch refresh token successor v1";

/// AES-256-GCM key: HMAC-SHA256 keyed with `source`. The token's stored
/// form is its SHA-256, from which this cannot be computed.
fn key(source: &str) -> Option<LessSafeKey> {
    let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, source.as_bytes()), LABEL);
    UnboundKey::new(&AES_256_GCM, derived.as_ref()).ok().map(LessSafeKey::new)
}

/// `secret` sealed under a key derived from `source`: base64url of a random
/// 96-bit nonce followed by the ciphertext and its tag. `None` only if the
/// cipher refuses, which a 32-byte key and a short input never cause.
pub fn seal(source: &str, secret: &str) -> Option<String> {
    let nonce = random_bytes::<NONCE_LEN>();
    let mut sealed = secret.as_bytes().to_vec();
    key(source)?.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed).ok()?;
    let mut out = nonce.to_vec();
    out.append(&mut sealed);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// The secret `seal(source, …)` produced, or `None` for any other source
/// or altered input.
pub fn open(source: &str, sealed: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut in_out = ciphertext.to_vec();
    let plain = key(source)?.open_in_place(nonce, Aad::empty(), &mut in_out).ok()?;
    String::from_utf8(plain.to_vec()).ok()
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
