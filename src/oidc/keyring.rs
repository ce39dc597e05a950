//! The signing keys every instance shares, loaded from the store.

use std::sync::Arc;

use serde::Serialize;

use super::error::InternalError;
use crate::clock::UnixTime;
use crate::crypto::keys::{KeyError, PublicJwk, SigningAlg, SigningKey};
use crate::store::{Store, StoreError, StoredKey};

#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
    /// The JWK Set, serialized once: JWKS requests are the most frequent.
    jwks_json: Arc<str>,
}

#[derive(Serialize)]
struct JwkSet<'a> {
    keys: &'a [PublicJwk],
}

impl KeyRing {
    /// Loads the deployment's keys, creating the first one if there is none.
    /// Concurrent first starts agree on one key: the loser drops its own.
    pub async fn load_or_create(store: &Store, now: UnixTime) -> Result<Self, InternalError> {
        let mut stored = store.signing_keys().await?;
        if stored.is_empty() {
            let (key, private_key) = tokio::task::spawn_blocking(|| SigningKey::generate(SigningAlg::RS256))
                .await
                .map_err(|_| InternalError::Signing(KeyError::Generate))??;
            store
                .insert_first_signing_key(StoredKey {
                    kid: key.kid().to_owned(),
                    alg: key.alg().as_str().to_owned(),
                    private_key,
                    created_at: now,
                })
                .await?;
            stored = store.signing_keys().await?;
        }
        let keys = stored
            .iter()
            .map(|key| SigningKey::from_stored(&key.kid, &key.alg, &key.private_key))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(StoreError::Corrupt("no signing key is stored".into()).into());
        }
        let public: Vec<PublicJwk> = keys.iter().map(SigningKey::public_jwk).collect();
        let jwks_json =
            serde_json::to_string(&JwkSet { keys: &public }).map_err(|_| InternalError::Signing(KeyError::Sign))?;
        Ok(Self { keys, jwks_json: jwks_json.into() })
    }

    /// The key new tokens are signed with: the newest. `load_or_create`
    /// never builds an empty ring.
    pub fn signing_key(&self) -> &SigningKey {
        &self.keys[self.keys.len() - 1]
    }

    pub fn key(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|key| key.kid() == kid)
    }

    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks_json.clone()
    }
}
