//! Password hashing with argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//!
//! Hashing runs on the blocking pool, never on the async runtime, and a
//! semaphore bounds how many hashes run at once, so memory stays bounded
//! (19 MiB each) however many logins arrive together.
//!
//! Each running check borrows its 19 MiB of working memory from a free list
//! and gives it back, so at most one buffer per permit ever exists. Letting
//! argon2 allocate and free 19 MiB per check instead makes glibc keep
//! several such blocks resident per blocking thread (its mmap threshold
//! adapts upwards): the process grew to hundreds of MB after a burst of
//! logins, where the free list holds it at permits × 19 MiB.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
    /// Argon2 working memory not in use; never more buffers than permits.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Verified against when the username is unknown, so that "no such user"
    /// takes as long as "wrong password". Made on a thread of its own when
    /// the hasher is built, so that start-up does not wait for an argon2
    /// hash; the first unknown username may.
    dummy_hash: Arc<OnceLock<Result<Arc<str>, String>>>,
}

fn dummy_hash(cell: &OnceLock<Result<Arc<str>, String>>) -> Result<Arc<str>, PasswordError> {
    let made =
        cell.get_or_init(|| hash_password_blocking("latch-dummy-password").map(Into::into).map_err(|e| e.to_string()));
    made.clone().map_err(PasswordError::Hash)
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

/// What `PasswordVerifier::verify_password` does (the stored hash's
/// algorithm, version, parameters and salt; a constant-time comparison of
/// the outputs), with `memory` as argon2's working memory.
fn verify_blocking(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let mut verify = || -> argon2::password_hash::Result<bool> {
        let parsed = PasswordHash::new(stored)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return Ok(false) };
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        let mut salt_buffer = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buffer)?;
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = Output::init_with(expected.len(), |out| {
            Ok(argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, &mut memory[..blocks])?)
        })?;
        // `Output` compares in constant time.
        Ok(computed == expected)
    };
    verify().unwrap_or(false)
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Result<Self, PasswordError> {
        let cell = Arc::new(OnceLock::new());
        let background = cell.clone();
        std::thread::Builder::new()
            .name("latch-dummy-hash".into())
            .spawn(move || drop(dummy_hash(&background)))
            .map_err(|error| PasswordError::Task(error.to_string()))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
            dummy_hash: cell,
        })
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
        let dummy = self.dummy_hash.clone();
        let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_default();
        let (matches, memory) = tokio::task::spawn_blocking(move || {
            let matches = match stored {
                Some(stored) => Ok(verify_blocking(&password, &stored, &mut memory)),
                None => dummy_hash(&dummy).map(|dummy| verify_blocking(&password, &dummy, &mut memory)),
            };
            (matches, memory)
        })
        .await
        .map_err(|error| PasswordError::Task(error.to_string()))?;
        self.memory.lock().unwrap_or_else(PoisonError::into_inner).push(memory);
        Ok(known && matches?)
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
        assert!(hasher.memory.lock().unwrap().len() <= 1, "one buffer per permit at most");
    }

    #[tokio::test]
    async fn verifies_hashes_made_with_other_parameters() {
        let hasher = PasswordHasher::new(2).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        for (m, t, p) in [(4096, 3, 1), (19 * 1024, 2, 1), (8192, 1, 2)] {
            let params = Params::new(m, t, p, None).unwrap();
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let stored = argon2.hash_password(b"hunter2", &salt).unwrap().to_string();
            assert!(hasher.verify("hunter2".into(), Some(stored.clone())).await.unwrap(), "{stored}");
            assert!(!hasher.verify("hunter3".into(), Some(stored)).await.unwrap());
        }
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, Params::new(4096, 2, 1, None).unwrap());
        let stored = argon2i.hash_password(b"hunter2", &salt).unwrap().to_string();
        assert!(hasher.verify("hunter2".into(), Some(stored.clone())).await.unwrap(), "{stored}");
        assert!(!hasher.verify("hunter2".into(), Some(stored.replace("$argon2i$", "$argon2id$"))).await.unwrap());
        assert!(!hasher.verify("hunter2".into(), Some("not a hash".into())).await.unwrap());
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let password = generate_password();
        assert_eq!(password.len(), 24);
        assert_ne!(password, generate_password());
    }
}
