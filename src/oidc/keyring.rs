//! The signing keys every instance shares, loaded from the store and
//! reloaded when another instance (or `latch key rotate`) changes them.

use std::sync::{Arc, RwLock};

use serde::Serialize;

use super::error::InternalError;
use crate::clock::UnixTime;
use crate::crypto::keys::{KeyError, PublicJwk, SigningAlg, SigningKey};
use crate::store::{Store, StoreError, StoredKey};

struct RingKey {
    key: SigningKey,
    activates_at: UnixTime,
    retire_at: Option<UnixTime>,
}

/// One consistent view of the keys.
pub struct KeyRing {
    keys: Vec<RingKey>,
    fingerprint: String,
    /// The JWK Set, serialized once: JWKS requests are the most frequent.
    jwks_json: Arc<str>,
    /// When the published set or the signing key next changes by time alone.
    next_change: UnixTime,
}

#[derive(Serialize)]
struct JwkSet<'a> {
    keys: Vec<&'a PublicJwk>,
}

impl KeyRing {
    fn build(stored: &[StoredKey], fingerprint: String, now: UnixTime) -> Result<Self, InternalError> {
        let keys = stored
            .iter()
            .map(|stored| {
                let key = SigningKey::from_stored(&stored.kid, stored.alg, &stored.private_key)?;
                Ok(RingKey { key, activates_at: stored.activates_at, retire_at: stored.retire_at })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let published: Vec<&PublicJwk> = keys
            .iter()
            .filter(|key| key.retire_at.is_none_or(|retire| retire > now))
            .map(|key| key.key.public_jwk())
            .collect();
        let jwks_json = serde_json::to_string(&JwkSet { keys: published }).map_err(|_| KeyError::Sign)?;
        let next_change = keys
            .iter()
            .flat_map(|key| [Some(key.activates_at), key.retire_at])
            .flatten()
            .filter(|moment| *moment > now)
            .min()
            .unwrap_or(UnixTime::MAX);
        Ok(Self { keys, fingerprint, jwks_json: jwks_json.into(), next_change })
    }

    /// The key new tokens of `alg` are signed with: the newest active one.
    pub fn signing_key(&self, alg: SigningAlg, now: UnixTime) -> Option<&SigningKey> {
        self.keys
            .iter()
            .filter(|key| key.key.alg() == alg && key.activates_at <= now)
            .filter(|key| key.retire_at.is_none_or(|retire| retire > now))
            .max_by_key(|key| key.activates_at)
            .or_else(|| self.keys.iter().filter(|key| key.key.alg() == alg).min_by_key(|key| key.activates_at))
            .map(|key| &key.key)
    }

    pub fn key(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().map(|key| &key.key).find(|key| key.kid() == kid)
    }

    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks_json.clone()
    }
}

/// The shared, swappable key ring of one process.
pub struct Keys {
    current: RwLock<Arc<KeyRing>>,
}

impl Keys {
    /// Loads the deployment's keys, creating the first RS256 key if there
    /// is none.
    pub async fn load(store: &Store, now: UnixTime) -> Result<Self, InternalError> {
        ensure_signing_key(store, SigningAlg::RS256, now).await?;
        let ring = load_ring(store, now).await?;
        Ok(Self { current: RwLock::new(Arc::new(ring)) })
    }

    pub fn current(&self) -> Arc<KeyRing> {
        match self.current.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads when the stored keys changed or a key's activation or
    /// retirement time has come. Cheap when nothing changed: one small query.
    pub async fn refresh(&self, store: &Store, now: UnixTime) -> Result<(), InternalError> {
        let current = self.current();
        let fingerprint = store.signing_keys_fingerprint().await?;
        if fingerprint == current.fingerprint && now < current.next_change {
            return Ok(());
        }
        let ring = Arc::new(load_ring(store, now).await?);
        match self.current.write() {
            Ok(mut slot) => *slot = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }
}

async fn load_ring(store: &Store, now: UnixTime) -> Result<KeyRing, InternalError> {
    let fingerprint = store.signing_keys_fingerprint().await?;
    let stored = store.signing_keys().await?;
    if stored.is_empty() {
        return Err(StoreError::Corrupt("no signing key is stored".into()).into());
    }
    KeyRing::build(&stored, fingerprint, now)
}

/// Creates the deployment's first key of `alg` unless one exists.
/// Concurrent callers agree on one key: the losers drop their own.
pub async fn ensure_signing_key(store: &Store, alg: SigningAlg, now: UnixTime) -> Result<(), InternalError> {
    if store.signing_keys().await?.iter().any(|key| key.alg == alg) {
        return Ok(());
    }
    let (key, private_key) = generate(alg).await?;
    store
        .insert_first_signing_key(StoredKey {
            kid: key.kid().to_owned(),
            alg,
            private_key,
            created_at: now,
            activates_at: now,
            retire_at: None,
        })
        .await?;
    Ok(())
}

/// Generates the next key of `alg`: published at once, signing from
/// `activates_at`; the keys it supersedes stay published until
/// `retire_previous_at`. Returns the new `kid`.
pub async fn rotate_signing_key(
    store: &Store,
    alg: SigningAlg,
    now: UnixTime,
    activates_at: UnixTime,
    retire_previous_at: UnixTime,
) -> Result<String, InternalError> {
    let (key, private_key) = generate(alg).await?;
    let kid = key.kid().to_owned();
    let stored = StoredKey { kid: kid.clone(), alg, private_key, created_at: now, activates_at, retire_at: None };
    store.insert_next_signing_key(stored, retire_previous_at).await?;
    Ok(kid)
}

/// RSA key generation takes tens of milliseconds: off the async runtime.
async fn generate(alg: SigningAlg) -> Result<(SigningKey, String), InternalError> {
    let generated =
        tokio::task::spawn_blocking(move || SigningKey::generate(alg)).await.map_err(|_| KeyError::Generate)?;
    Ok(generated?)
}
