//! Client authentication at the token endpoint (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, and `none` for public
//! clients (which must then prove possession with PKCE).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Provider;
use super::error::{ErrorCode, OAuthError, ProtocolResult, client_error};
use super::params::{Params, has_control_character};
use crate::audit::Actor;
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::store::App;

/// The audit event of a registered client that failed to authenticate;
/// the detail says how (one of the refusals below, e.g. `WRONG_SECRET`).
pub const CLIENT_AUTH_FAILED: &str = "client_auth_failed";

/// The refusal of a client_secret that is not the client's.
pub const WRONG_SECRET: &str = "the client_secret is wrong";

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
/// Each way a header can be wrong gets its own `invalid_client` description.
pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed = |why: &'static str| OAuthError::new(ErrorCode::InvalidClient, why);
    let (scheme, encoded) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed("the Authorization header must use the Basic scheme to authenticate a client"));
    }
    if encoded.trim().is_empty() {
        return Err(malformed("the Authorization header has no credentials after Basic"));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed("the Basic credentials are not valid base64 (standard alphabet, padded)"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed("the Basic credentials are not UTF-8"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| malformed("the Basic credentials have no colon between client_id and client_secret"))?;
    let unescape = |part: &str| {
        let plus_as_space = part.replace('+', " ");
        percent_decode(&plus_as_space)
            .filter(|value| !has_control_character("", value))
            .ok_or_else(|| malformed("the Basic credentials are not form-urlencoded, or carry a control character"))
    };
    Ok((unescape(id)?, unescape(secret)?))
}

fn percent_decode(input: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={}", input.replace('&', "%26"))).ok()?;
    pairs.into_iter().next().map(|(_, value)| value)
}

impl Provider {
    /// The app behind the presented credentials, or `invalid_client`.
    /// `basic` is the decoded `Authorization: Basic` header, if one was sent.
    pub async fn authenticate_client(&self, basic: Option<&(String, String)>, params: &Params) -> ProtocolResult<App> {
        let body_id = params.get("client_id");
        let body_secret = params.get("client_secret");
        let (client_id, secret) = match (basic, body_id, body_secret) {
            (Some(_), _, Some(_)) => {
                return client_error(
                    ErrorCode::InvalidRequest,
                    "client_secret was sent both in the Authorization header and in the body; use one of them",
                );
            }
            (Some((id, _)), Some(body_id), None) if id != body_id => {
                return client_error(ErrorCode::InvalidRequest, "client_id differs from the Authorization header");
            }
            (Some((id, secret)), _, None) => (id.as_str(), Some(secret.as_str())),
            (None, Some(id), secret) => (id, secret),
            (None, None, Some(_)) => {
                return client_error(ErrorCode::InvalidClient, "client_secret was sent without client_id");
            }
            (None, None, None) => {
                return client_error(
                    ErrorCode::InvalidClient,
                    "client authentication is required: send client_id and client_secret with HTTP Basic \
                     or in the body",
                );
            }
        };
        let Some(app) = self.store.app_by_client_id(client_id).await? else {
            return client_error(ErrorCode::InvalidClient, "no client is registered with this client_id");
        };
        let refusal = match (&app.client_secret_hash, secret) {
            (Some(stored), Some(secret)) if constant_time_eq(stored.as_bytes(), sha256_hex(secret).as_bytes()) => {
                return Ok(app);
            }
            (None, None) => return Ok(app),
            (Some(_), Some(_)) => WRONG_SECRET,
            (Some(_), None) => {
                "this client is confidential: send its client_secret (client_secret_basic or client_secret_post)"
            }
            (None, Some(_)) => "this client is public and has no secret",
        };
        let actor = Actor { app: Some(&app.slug), ..Default::default() };
        self.auditor.record(CLIENT_AUTH_FAILED, &actor, Some(refusal.to_owned()));
        client_error(ErrorCode::InvalidClient, refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let header = format!("Basic {}", STANDARD.encode("my%3Aclient:s%2Bcr+t"));
        assert_eq!(parse_basic(&header).unwrap(), ("my:client".into(), "s+cr t".into()));
        assert_eq!(parse_basic(&format!("basic {}", STANDARD.encode("a:b&c"))).unwrap(), ("a".into(), "b&c".into()));
    }

    #[test]
    fn malformed_basic_headers_are_invalid_client_and_say_why() {
        let no_colon = format!("Basic {}", STANDARD.encode("no-colon"));
        let not_utf8 = format!("Basic {}", STANDARD.encode([0xff, b':', b'x']));
        for (header, why) in [
            ("Bearer x", "Basic scheme"),
            ("Basic", "no credentials"),
            ("Basic  ", "no credentials"),
            ("Basic !!!", "not valid base64"),
            (&no_colon, "no colon"),
            (&not_utf8, "not UTF-8"),
        ] {
            let error = parse_basic(header).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidClient, "{header}");
            assert!(error.description.contains(why), "{header}: {}", error.description);
        }
    }
}
