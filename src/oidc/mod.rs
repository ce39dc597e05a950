//! The OpenID Connect provider: each protocol step as a function of its
//! parsed inputs, the store and the clock. Nothing here knows about HTTP.

pub mod authorize;
pub mod backchannel_logout;
pub mod claims;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod end_session;
pub mod error;
mod grant;
pub mod id_token_hint;
pub mod keyring;
pub mod params;
pub mod reauth;
pub mod redirect_uri;
pub mod revocation;
pub mod token;
pub mod userinfo;
pub mod values;

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Auditor;
use crate::clock::UnixTime;
use crate::config::{MfaPolicy, PublicUrl};
use crate::crypto::keys::{KeyError, SigningAlg};
use crate::crypto::signing_threads::SigningThreads;
use crate::store::Store;
use error::ProtocolResult;
use keyring::{KeyRing, Keys};

pub struct Provider {
    store: Store,
    keys: Arc<Keys>,
    public_url: PublicUrl,
    code_ttl: i64,
    access_token_ttl: i64,
    refresh_token_ttl: i64,
    auditor: Auditor,
    signing: SigningThreads,
    known_apps: discovery::KnownApps,
    /// Which apps require a second factor.
    mfa: MfaPolicy,
}

/// Deployment-wide defaults; each app may set its own.
pub struct Lifetimes {
    pub code: Duration,
    pub access_token: Duration,
    pub refresh_token: Duration,
}

impl Provider {
    pub fn new(
        store: Store,
        keys: Arc<Keys>,
        public_url: PublicUrl,
        lifetimes: Lifetimes,
        auditor: Auditor,
        signing: SigningThreads,
        mfa: MfaPolicy,
    ) -> Self {
        Self {
            store,
            keys,
            public_url,
            code_ttl: seconds(lifetimes.code),
            access_token_ttl: seconds(lifetimes.access_token),
            refresh_token_ttl: seconds(lifetimes.refresh_token),
            auditor,
            signing,
            known_apps: discovery::KnownApps::default(),
            mfa,
        }
    }

    /// `{public_url}/application/o/<slug>/`, trailing slash included, as
    /// Authentik spells it, so an app's existing config only changes host.
    pub fn issuer(&self, slug: &str) -> String {
        self.public_url.join(&format!("/application/o/{slug}/"))
    }

    /// The key ring and the `kid` of the key new tokens of `alg` are signed
    /// with at `now`. Errors with `KeyError::NoKey` when there is none.
    async fn signing_key(&self, alg: SigningAlg, now: UnixTime) -> ProtocolResult<(Arc<KeyRing>, String)> {
        let mut keys = self.keys.current();
        if keys.signing_key(alg, now).is_none() {
            // A key made moments ago (an app switched to a new algorithm)
            // may not have reached this instance's periodic reload yet.
            self.keys.refresh(&self.store, now).await?;
            keys = self.keys.current();
        }
        let Some(kid) = keys.signing_key(alg, now).map(|key| key.kid().to_owned()) else {
            return Err(KeyError::NoKey(alg).into());
        };
        Ok((keys, kid))
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
