//! Token signing keys: rotate, list.

use serde::Serialize;

use super::apps::ensure_signing_key;
use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult, validate};
use crate::clock::{self, UnixTime};
use crate::config::Config;
use crate::crypto::keys::SigningAlg;
use crate::oidc::keyring;
use crate::store::Store;

/// `key rotate`.
#[derive(Debug, Clone)]
pub struct RotateKey {
    pub alg: SigningAlg,
    /// How long every instance publishes the key before signing with it,
    /// as text such as `1h`; at least two key-refresh intervals.
    pub grace: String,
}

/// When the new key signs, and until when the keys it replaces stay
/// published (Unix seconds).
#[derive(Debug, Clone)]
pub struct KeyRotation {
    pub kid: String,
    pub activates_at: UnixTime,
    pub retire_previous_at: UnixTime,
}

/// Schedules the next signing key of `alg`: published now, signing after
/// the grace period; the keys it replaces stay published until every token
/// they signed has expired. Errors: `Invalid` grace.
pub async fn rotate_key(store: &Store, config: &Config, actor: &Actor, command: RotateKey) -> AdminResult<KeyRotation> {
    let grace = validate::lifetime("--grace", &command.grace)?;
    let minimum = 2 * crate::server::KEY_REFRESH_INTERVAL.as_secs() as i64;
    if grace < minimum {
        return Err(AdminError::invalid(
            "--grace",
            format!("--grace must be at least {minimum}s, so that every instance publishes the key before it signs"),
        ));
    }
    let now = clock::now();
    ensure_signing_key(store, command.alg, now).await?;
    let default_ttl = i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let longest_ttl = store.longest_app_token_ttl().await?.unwrap_or(0).max(default_ttl);
    let activates_at = now + grace;
    let retire_previous_at = activates_at + longest_ttl + minimum;
    let kid = keyring::rotate_signing_key(store, command.alg, now, activates_at, retire_previous_at).await?;
    Change::other(ChangeKind::KeyRotated, format!("{} key {kid}", command.alg.as_str())).record(store, actor).await?;
    Ok(KeyRotation { kid, activates_at, retire_previous_at })
}

/// A signing key as `key list` shows it: never the private half. Times are
/// Unix seconds.
#[derive(Debug, Clone, Serialize)]
pub struct KeyListing {
    pub kid: String,
    pub alg: SigningAlg,
    pub status: KeyStatus,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    pub retire_at: Option<UnixTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Published, not signing yet.
    Next,
    Active,
    /// Replaced; published until its tokens have expired.
    Retiring,
    Retired,
}

impl KeyStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }
}

/// Every stored signing key and its status now.
pub async fn list_keys(store: &Store) -> AdminResult<Vec<KeyListing>> {
    let now = clock::now();
    Ok(store
        .signing_keys()
        .await?
        .into_iter()
        .map(|key| {
            let status = match key.retire_at {
                Some(retire) if retire <= now => KeyStatus::Retired,
                Some(_) => KeyStatus::Retiring,
                None if key.activates_at > now => KeyStatus::Next,
                None => KeyStatus::Active,
            };
            KeyListing {
                kid: key.kid,
                alg: key.alg,
                status,
                created_at: key.created_at,
                activates_at: key.activates_at,
                retire_at: key.retire_at,
            }
        })
        .collect())
}
