//! The token endpoint (RFC 6749 §4.1.3, OIDC Core §3.1.3):
//! `grant_type=authorization_code`.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Provider;
use super::claims::user_claims;
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::params::Params;
use crate::clock::UnixTime;
use crate::crypto::{jws, random_token, sha256_b64, sha256_hex};
use crate::store::{App, CodeGrant, CodeRedemption};

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// RFC 9068 access token claims.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
}

impl Provider {
    pub async fn token(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<TokenResponse> {
        match params.get("grant_type") {
            Some("authorization_code") => self.exchange_code(app, params, now).await,
            Some(_) => client_error(ErrorCode::UnsupportedGrantType, "only grant_type=authorization_code is supported"),
            None => client_error(ErrorCode::InvalidRequest, "grant_type is required"),
        }
    }

    async fn exchange_code(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<TokenResponse> {
        let Some(code) = params.get("code") else {
            return client_error(ErrorCode::InvalidRequest, "code is required");
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return client_error(ErrorCode::InvalidRequest, "redirect_uri is required");
        };
        let verifier = params.get("code_verifier");
        if verifier.is_some_and(|verifier| !is_valid_verifier(verifier)) {
            return client_error(ErrorCode::InvalidRequest, "code_verifier must be 43 to 128 unreserved characters");
        }
        if app.is_public() && verifier.is_none() {
            return client_error(ErrorCode::InvalidRequest, "code_verifier is required for public clients");
        }
        let code_hash = sha256_hex(code);
        let challenge = verifier.map(|verifier| sha256_b64(verifier, false));
        let jti = random_token();
        let expires_at = now + self.access_token_ttl;
        let redemption = CodeRedemption {
            code_hash: &code_hash,
            app_id: &app.id,
            redirect_uri,
            code_challenge: challenge.as_deref(),
            jti: &jti,
            token_expires_at: expires_at,
        };
        let Some(grant) = self.store.redeem_code(redemption, now).await? else {
            return self.explain_failed_redemption(app, &code_hash, redirect_uri, challenge.as_deref(), now).await;
        };
        let Some(user) = self.store.active_user_claims(&grant.user_id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the user is disabled");
        };
        let issuer = self.issuer(&app.slug);
        let key = self.keys.signing_key();
        let access_token = jws::sign(
            key,
            "at+jwt",
            &AccessTokenClaims {
                iss: issuer.clone(),
                sub: user.id.clone(),
                aud: app.client_id.clone(),
                client_id: app.client_id.clone(),
                exp: expires_at,
                iat: now,
                jti,
                scope: grant.scope.clone(),
            },
        )?;
        let id_token = jws::sign(key, "JWT", &self.id_token_claims(app, &grant, &user, &access_token, now))?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.access_token_ttl,
            id_token: Some(id_token),
            scope: grant.scope,
        })
    }

    fn id_token_claims(
        &self,
        app: &App,
        grant: &CodeGrant,
        user: &crate::store::UserClaims,
        access_token: &str,
        now: UnixTime,
    ) -> Map<String, Value> {
        let mut claims = user_claims(user, &grant.scope);
        claims.insert("iss".into(), json!(self.issuer(&app.slug)));
        claims.insert("aud".into(), json!(app.client_id));
        claims.insert("azp".into(), json!(app.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + self.access_token_ttl));
        claims.insert("auth_time".into(), json!(grant.auth_time));
        claims.insert("at_hash".into(), json!(sha256_b64(access_token, true)));
        if let Some(nonce) = &grant.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        claims
    }

    /// Says which binding failed. A code that was already used is being
    /// replayed: what its first use issued is revoked (RFC 6749 §4.1.2).
    async fn explain_failed_redemption<T>(
        &self,
        app: &App,
        code_hash: &str,
        redirect_uri: &str,
        challenge: Option<&str>,
        now: UnixTime,
    ) -> ProtocolResult<T> {
        let Some(state) = self.store.code_state(code_hash, &app.id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the code is unknown or was issued to another client");
        };
        let reason = if state.used {
            self.store.revoke_tokens_of_code(code_hash, &app.id, now).await?;
            tracing::warn!(app = %app.slug, "authorization code replayed; tokens issued for it were revoked");
            "the code was already used"
        } else if state.expires_at <= now {
            "the code has expired"
        } else if state.redirect_uri != redirect_uri {
            "redirect_uri differs from the one in the authorization request"
        } else if state.user_disabled {
            "the user is disabled"
        } else if state.code_challenge.is_none() {
            "code_verifier was sent but the authorization request had no code_challenge"
        } else if challenge.is_none() {
            "code_verifier is required: the authorization request had a code_challenge"
        } else {
            "code_verifier does not match the code_challenge"
        };
        client_error(ErrorCode::InvalidGrant, reason)
    }
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}
