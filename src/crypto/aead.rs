//! The project's one authenticated-encryption primitive: AES-256-GCM
//! (aws-lc-rs) with a random 96-bit nonce per message, laid out as
//! `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. Callers choose the key,
//! the associated data and how the bytes are encoded where they are stored.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};

/// An AES-256-GCM key from 32 bytes; `None` for any other length.
pub fn key(bytes: &[u8]) -> Option<RandomizedNonceKey> {
    RandomizedNonceKey::new(&AES_256_GCM, bytes).ok()
}

/// `plaintext` sealed under `key`, bound to `aad`. `None` only if the
/// system's random number generator fails.
pub fn seal(key: &RandomizedNonceKey, aad: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    let mut in_out = plaintext.to_vec();
    let nonce = key.seal_in_place_append_tag(Aad::from(aad), &mut in_out).ok()?;
    let mut sealed = nonce.as_ref().to_vec();
    sealed.append(&mut in_out);
    Some(sealed)
}

/// What `seal(key, aad, …)` sealed; `None` for another key, other associated
/// data, or altered or truncated bytes.
pub fn open(key: &RandomizedNonceKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut in_out = ciphertext.to_vec();
    key.open_in_place(nonce, Aad::from(aad), &mut in_out).ok().map(|plaintext| plaintext.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_key_and_associated_data_open_a_sealed_message() {
        let (one, other) = (key(&[1; 32]).unwrap(), key(&[2; 32]).unwrap());
        let sealed = seal(&one, b"row a", b"secret").unwrap();
        assert_eq!(open(&one, b"row a", &sealed).as_deref(), Some(&b"secret"[..]));
        assert_eq!(open(&one, b"row b", &sealed), None);
        assert_eq!(open(&other, b"row a", &sealed), None);
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(open(&one, b"row a", &altered), None);
        assert_eq!(open(&one, b"row a", &sealed[..NONCE_LEN - 1]), None);
        assert_ne!(seal(&one, b"row a", b"secret").unwrap(), sealed, "a fresh nonce each time");
        assert!(key(&[1; 16]).is_none());
    }
}
