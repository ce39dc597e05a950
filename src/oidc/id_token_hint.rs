//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout §2): an ID token
//! Latch issued earlier, presented back as a hint about who the app thinks
//! is signed in. Its signature must verify and it must be an ID token
//! (`typ: JWT`): an access token (`at+jwt`, RFC 9068 §4) names the same
//! person for the same app but is no hint, whether live or revoked. Expiry
//! does not matter.

use serde::Deserialize;

use super::Provider;
use super::error::{ErrorCode, OAuthError};
use crate::crypto::jws;
use crate::store::App;

#[derive(Debug, Deserialize)]
struct HintClaims {
    iss: String,
    sub: String,
    aud: Audience,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Who an ID token hint names.
#[derive(Debug, Clone)]
pub struct HintedSubject {
    pub subject: String,
}

impl Provider {
    /// The subject of a hint issued by Latch to `app`.
    pub fn hinted_subject(&self, hint: &str, app: &App) -> Result<HintedSubject, OAuthError> {
        let refused =
            || OAuthError::new(ErrorCode::InvalidRequest, "id_token_hint is not an ID token Latch issued to this app");
        let keys = self.keys.current();
        let claims: HintClaims = jws::verify(hint, jws::ID_TOKEN_TYP, |kid| keys.key(kid)).map_err(|_| refused())?;
        let for_app = match &claims.aud {
            Audience::One(audience) => *audience == app.client_id,
            Audience::Many(audiences) => audiences.contains(&app.client_id),
        };
        if claims.iss != self.issuer(&app.slug) || !for_app {
            return Err(refused());
        }
        Ok(HintedSubject { subject: claims.sub })
    }
}
