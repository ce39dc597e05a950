//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//!
//! Hashing runs on the blocking pool, never on the async runtime, and a
//! semaphore bounds how many hashes run at once, so memory stays bounded
//! (19 MiB each) however many logins arrive together.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed: {0}")]
    Task(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the username is unknown, so that "no such user"
    /// takes as long as "wrong password".
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // Constant, known-valid parameters: building them cannot fail.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hash(error.to_string()))
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self, PasswordError> {
        let dummy_hash = hash_password_blocking("latch-dummy-password")?;
        Ok(Self { permits: Arc::new(Semaphore::new(max_concurrent.max(1))), dummy_hash: dummy_hash.into() })
    }

    /// One hash per available core.
    pub fn for_this_machine() -> Result<Self, PasswordError> {
        Self::new(std::thread::available_parallelism().map(usize::from).unwrap_or(2))
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let _permit = self.permits.acquire().await.map_err(|error| PasswordError::Task(error.to_string()))?;
        tokio::task::spawn_blocking(move || hash_password_blocking(&password))
            .await
            .map_err(|error| PasswordError::Task(error.to_string()))?
    }

    /// `stored` is `None` for an unknown user; the dummy hash is checked then,
    /// and the answer is always `false`.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        let _permit = self.permits.acquire().await.map_err(|error| PasswordError::Task(error.to_string()))?;
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = tokio::task::spawn_blocking(move || verify_blocking(&password, &stored))
            .await
            .map_err(|error| PasswordError::Task(error.to_string()))?;
        Ok(known && matches)
    }
}

/// A strong password for `latch user add` without `--password-stdin`:
/// 24 characters from a 57-symbol alphabet without look-alikes (~140 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut password = String::with_capacity(24);
    while password.len() < 24 {
        for byte in super::secret::random_bytes::<32>() {
            // Rejection sampling keeps every symbol equally likely.
            let limit = (256 / ALPHABET.len()) * ALPHABET.len();
            if (byte as usize) < limit && password.len() < 24 {
                password.push(ALPHABET[byte as usize % ALPHABET.len()] as char);
            }
        }
    }
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let hasher = PasswordHasher::new(1).unwrap();
        let stored = hasher.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse".into(), Some(stored.clone())).await.unwrap());
        assert!(!hasher.verify("wrong".into(), Some(stored)).await.unwrap());
        assert!(!hasher.verify("latch-dummy-password".into(), None).await.unwrap());
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let password = generate_password();
        assert_eq!(password.len(), 24);
        assert_ne!(password, generate_password());
    }
}
