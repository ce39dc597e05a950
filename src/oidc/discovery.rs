//! OpenID Provider Metadata (OIDC Discovery 1.0), one document per app.
//! Lists only what works: endpoints that later work adds (revocation,
//! introspection, end session) appear here when they do.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use super::Provider;
use super::claims::SUPPORTED_CLAIMS;
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::values::{Acr, ClientAuthMethod, CodeChallengeMethod, GrantType, Prompt, ResponseMode, ResponseType, Scope};
use crate::clock::UnixTime;
use crate::crypto::keys::SigningAlg;

#[derive(Debug, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub end_session_endpoint: String,
    /// Back-Channel Logout 1.0 §2.1: logout tokens are sent, with `sid`.
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    /// RFC 8628 §4; the grant itself is allowed per app.
    pub device_authorization_endpoint: String,
    pub response_types_supported: &'static [ResponseType],
    pub response_modes_supported: &'static [ResponseMode],
    pub grant_types_supported: &'static [GrantType],
    pub subject_types_supported: [&'static str; 1],
    pub id_token_signing_alg_values_supported: &'static [SigningAlg],
    pub scopes_supported: &'static [Scope],
    pub claims_supported: [&'static str; 20],
    pub acr_values_supported: &'static [Acr],
    pub prompt_values_supported: &'static [Prompt],
    pub token_endpoint_auth_methods_supported: &'static [ClientAuthMethod],
    pub revocation_endpoint_auth_methods_supported: &'static [ClientAuthMethod],
    pub introspection_endpoint_auth_methods_supported: &'static [ClientAuthMethod],
    pub code_challenge_methods_supported: &'static [CodeChallengeMethod],
    pub authorization_response_iss_parameter_supported: bool,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
}

/// How long (seconds) an app, once found, is taken to exist without asking
/// the store: within the second it was found in, by the server's clock.
const KNOWN_APP_TTL: i64 = 1;

/// Slugs of apps found in the store, and when. Discovery and JWKS are public
/// documents every relying party polls; a stale entry serves them for a
/// removed app for at most a second, which grants nothing (codes and tokens
/// of a removed app are refused by their own checks). Only slugs the store
/// confirmed are kept, so the map is no larger than the number of apps.
#[derive(Default)]
pub(super) struct KnownApps {
    seen: Mutex<HashMap<String, UnixTime>>,
}

impl KnownApps {
    fn recently_seen(&self, slug: &str, now: UnixTime) -> bool {
        let seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.get(slug).is_some_and(|at| (*at..at.saturating_add(KNOWN_APP_TTL)).contains(&now))
    }

    fn saw(&self, slug: &str, now: UnixTime) {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.insert(slug.to_owned(), now);
    }
}

impl Provider {
    pub async fn discovery(&self, slug: &str, now: UnixTime) -> ProtocolResult<Discovery> {
        self.require_app(slug, now).await?;
        Ok(self.discovery_document(slug))
    }

    async fn require_app(&self, slug: &str, now: UnixTime) -> ProtocolResult<()> {
        if self.known_apps.recently_seen(slug, now) {
            return Ok(());
        }
        if !self.store.app_exists(slug).await? {
            return client_error(ErrorCode::InvalidRequest, "no such application");
        }
        self.known_apps.saw(slug, now);
        Ok(())
    }

    fn discovery_document(&self, slug: &str) -> Discovery {
        let url = |path: &str| self.public_url.join(path);
        Discovery {
            issuer: self.issuer(slug),
            authorization_endpoint: url("/application/o/authorize/"),
            token_endpoint: url("/application/o/token/"),
            userinfo_endpoint: url("/application/o/userinfo/"),
            jwks_uri: url(&format!("/application/o/{slug}/jwks/")),
            revocation_endpoint: url("/application/o/revoke/"),
            introspection_endpoint: url("/application/o/introspect/"),
            end_session_endpoint: url(&format!("/application/o/{slug}/end-session/")),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            device_authorization_endpoint: url("/application/o/device/"),
            response_types_supported: ResponseType::ALL,
            response_modes_supported: ResponseMode::ALL,
            grant_types_supported: GrantType::ALL,
            subject_types_supported: ["public"],
            id_token_signing_alg_values_supported: SigningAlg::ALL,
            scopes_supported: Scope::ALL,
            claims_supported: SUPPORTED_CLAIMS,
            acr_values_supported: Acr::ALL,
            prompt_values_supported: Prompt::ALL,
            token_endpoint_auth_methods_supported: ClientAuthMethod::ALL,
            revocation_endpoint_auth_methods_supported: ClientAuthMethod::ALL,
            introspection_endpoint_auth_methods_supported: ClientAuthMethod::WITH_SECRET,
            code_challenge_methods_supported: CodeChallengeMethod::ALL,
            authorization_response_iss_parameter_supported: true,
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
        }
    }

    /// The JWK Set for an app's `jwks_uri`.
    pub async fn jwks(&self, slug: &str, now: UnixTime) -> ProtocolResult<std::sync::Arc<str>> {
        self.require_app(slug, now).await?;
        Ok(self.keys.current().jwks_json())
    }
}
