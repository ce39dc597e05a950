//! The logout token of OpenID Connect Back-Channel Logout 1.0 (§2.4): a JWT
//! telling an app that a session it received tokens in has ended. One is
//! minted for every delivery attempt, so its `exp` can stay short however
//! long the retries go on.

use serde::Serialize;
use serde_json::{Value, json};

use super::Provider;
use super::error::ProtocolResult;
use crate::clock::UnixTime;
use crate::crypto::keys::KeyError;
use crate::crypto::{jws, random_token};
use crate::store::LogoutNotice;

/// Seconds a logout token is valid: long enough for a slow receiver and some
/// clock skew, short enough that a captured one is soon useless.
pub const LOGOUT_TOKEN_TTL: i64 = 120;

/// The member of `events` that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// §2.4: `iss aud iat exp jti events`, with `sub` and `sid` (`sid` only for
/// sessions that have one); never `nonce`.
#[derive(Debug, Serialize)]
struct LogoutClaims {
    iss: String,
    aud: String,
    iat: UnixTime,
    exp: UnixTime,
    jti: String,
    sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    events: Value,
}

impl Provider {
    /// A logout token for `notice`, issued at `now`, signed like the app's
    /// ID tokens (its algorithm, the deployment's current key of it, header
    /// `typ: logout+jwt`). Errors when the key cannot be found or used.
    pub async fn logout_token(&self, notice: &LogoutNotice, now: UnixTime) -> ProtocolResult<String> {
        let (keys, kid) = self.signing_key(notice.signing_alg, now).await?;
        let claims = LogoutClaims {
            iss: self.issuer(&notice.app_slug),
            aud: notice.client_id.clone(),
            iat: now,
            exp: now + LOGOUT_TOKEN_TTL,
            jti: random_token(),
            sub: notice.user_id.clone(),
            sid: notice.sid.clone(),
            events: json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        };
        let token = self
            .signing
            .run(move || {
                let key = keys.key(&kid).ok_or(KeyError::Sign)?;
                jws::sign(key, jws::LOGOUT_TOKEN_TYP, &claims)
            })
            .await?;
        Ok(token)
    }
}
