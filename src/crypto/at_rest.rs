//! Encryption at rest of the secrets the store must be able to read back
//! (signing private keys, deployment secrets), under the key in
//! `secret_key_file`.
//!
//! A sealed value is `sealed-v1:` followed by base64 (standard, padded) of
//! `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`: AES-256-GCM with a
//! random nonce, and the identity of the row it belongs to (such as
//! `signing_keys:<kid>`) as associated data, so a value copied into another
//! row does not open. A value without the prefix is plaintext, as every
//! value was before a key was configured; neither plaintext form Latch
//! stores (standard base64, base64url) can contain the `:` of the prefix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::aead::RandomizedNonceKey;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::aead;
use super::secret::random_bytes;

const PREFIX: &str = "sealed-v1:";
const KEY_LEN: usize = 32;

/// The key-file format, for error messages and documentation.
pub const KEY_FILE_FORMAT: &str =
    "32 random bytes, base64-encoded on one line (make one with `latch secret-key new FILE`)";

/// The key of `secret_key_file`; `Debug` shows only the file's path.
#[derive(Clone)]
pub struct SecretKey {
    path: PathBuf,
    key: Arc<RandomizedNonceKey>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("SecretKey").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The value is sealed but no key is configured.
    #[error("it is encrypted and no secret key is configured")]
    NoKey,
    /// Wrong key, another row's value, or a damaged value.
    #[error("it does not decrypt with this key")]
    WrongKey,
    /// The system's random number generator failed.
    #[error("encryption failed")]
    Failed,
}

impl SecretKey {
    /// Reads a key file: base64 of exactly 32 bytes, surrounding whitespace
    /// ignored. The error is a reason to show beside the setting's name.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read it: {error}"))?;
        let bytes = STANDARD.decode(text.trim()).map_err(|_| format!("it must hold {KEY_FILE_FORMAT}"))?;
        if bytes.len() != KEY_LEN {
            return Err(format!("it holds {} bytes; it must hold {KEY_FILE_FORMAT}", bytes.len()));
        }
        let key = aead::key(&bytes).ok_or_else(|| "not an AES-256 key".to_owned())?;
        Ok(Self { path: path.to_owned(), key: Arc::new(key) })
    }

    /// The contents of a new key file: 32 random bytes, base64, one line.
    pub fn generate() -> String {
        format!("{}\n", STANDARD.encode(random_bytes::<KEY_LEN>()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `plaintext` sealed for the row named `row`.
    pub fn seal(&self, plaintext: &str, row: &str) -> Result<String, SealError> {
        let sealed = aead::seal(&self.key, row.as_bytes(), plaintext.as_bytes()).ok_or(SealError::Failed)?;
        Ok(format!("{PREFIX}{}", STANDARD.encode(sealed)))
    }

    fn open_sealed(&self, body: &str, row: &str) -> Result<String, SealError> {
        let bytes = STANDARD.decode(body).map_err(|_| SealError::WrongKey)?;
        let plaintext = aead::open(&self.key, row.as_bytes(), &bytes).ok_or(SealError::WrongKey)?;
        String::from_utf8(plaintext).map_err(|_| SealError::WrongKey)
    }
}

/// Whether `stored` is a sealed value (else it is plaintext).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The plaintext of the stored value of row `row`: opened with `key` when
/// sealed, as it is when plaintext.
pub fn open(key: Option<&SecretKey>, stored: &str, row: &str) -> Result<String, SealError> {
    match (stored.strip_prefix(PREFIX), key) {
        (None, _) => Ok(stored.to_owned()),
        (Some(_), None) => Err(SealError::NoKey),
        (Some(body), Some(key)) => key.open_sealed(body, row),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_in(dir: &Path, contents: &str) -> Result<SecretKey, String> {
        let path = dir.join("secret.key");
        std::fs::write(&path, contents).unwrap();
        SecretKey::read(&path)
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_for_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let key = key_in(dir.path(), &SecretKey::generate()).unwrap();
        let other = key_in(dir.path(), &SecretKey::generate()).unwrap();
        let sealed = key.seal("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "signing_keys:a").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("MIIEvQ"), "{sealed}");
        assert_ne!(
            sealed,
            key.seal("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "signing_keys:a").unwrap(),
            "nonces are random"
        );
        assert_eq!(open(Some(&key), &sealed, "signing_keys:a").unwrap(), "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC");
        assert_eq!(open(Some(&key), &sealed, "signing_keys:b"), Err(SealError::WrongKey));
        assert_eq!(open(Some(&other), &sealed, "signing_keys:a"), Err(SealError::WrongKey));
        assert_eq!(open(None, &sealed, "signing_keys:a"), Err(SealError::NoKey));
        let mut bytes = STANDARD.decode(sealed.strip_prefix(PREFIX).unwrap()).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        let damaged = format!("{PREFIX}{}", STANDARD.encode(bytes));
        assert_eq!(open(Some(&key), &damaged, "signing_keys:a"), Err(SealError::WrongKey));
        assert_eq!(open(Some(&key), "sealed-v1:AAAA", "signing_keys:a"), Err(SealError::WrongKey));
    }

    #[test]
    fn plaintext_from_before_reads_as_it_is() {
        for plaintext in ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/==", "d2hhdC1hLXRva2VuLWxvb2tzLWxpa2U_-"] {
            assert!(!is_sealed(plaintext));
            assert_eq!(open(None, plaintext, "row").unwrap(), plaintext);
        }
    }

    #[test]
    fn key_files_hold_32_bytes_of_base64() {
        let dir = tempfile::tempdir().unwrap();
        assert!(key_in(dir.path(), &format!("  {}\n", STANDARD.encode([7u8; 32]))).is_ok());
        assert!(key_in(dir.path(), &STANDARD.encode([7u8; 16])).unwrap_err().contains("16 bytes"));
        assert!(key_in(dir.path(), "not base64!").unwrap_err().contains("base64"));
        assert!(SecretKey::read(&dir.path().join("missing")).unwrap_err().contains("cannot read"));
    }
}
