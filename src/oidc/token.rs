//! The token endpoint (RFC 6749 §4.1.3, §4.4, §6; OIDC Core §3.1.3, §12).

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Provider;
use super::claims::{has_scope, user_claims};
use super::error::{ErrorCode, OAuthError, ProtocolResult, client_error};
use super::params::Params;
use super::values::{Acr, GrantType, Scope};
use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::jws;
use crate::crypto::keys::KeyError;
use crate::store::{App, UserClaims};

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

/// RFC 9068 access token claims. For the client credentials grant `sub` is
/// the client itself.
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

/// A token response and whom it was for, for the audit trail.
pub(super) struct Issued {
    response: TokenResponse,
    username: Option<String>,
}

/// What a grant decided to issue: tokens about `user` (none for the client
/// acting for itself) with `scope`, the access token's `jti` already
/// recorded by the grant, and the refresh token, if any, already stored.
pub(super) struct Issue<'a> {
    pub app: &'a App,
    pub user: Option<&'a UserClaims>,
    pub scope: &'a str,
    pub jti: String,
    pub auth_time: Option<UnixTime>,
    /// The sign-in's RFC 8176 methods, space-separated.
    pub amr: Option<&'a str>,
    pub nonce: Option<&'a str>,
    /// The session's public id, for the ID token (Back-Channel Logout §2.1).
    pub sid: Option<&'a str>,
    pub refresh_token: Option<String>,
}

impl Provider {
    /// The token response for `app`, already authenticated, and the grant
    /// it answered. Errors: `invalid_request` without `grant_type`,
    /// `unsupported_grant_type` naming one outside `GrantType::ALL`
    /// (RFC 6749 §5.2), and each grant's own.
    pub async fn token(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<(GrantType, TokenResponse)> {
        let Some(grant_type) = params.get("grant_type") else {
            return client_error(ErrorCode::InvalidRequest, "grant_type is required");
        };
        let grant_type = grant_type
            .parse::<GrantType>()
            .map_err(|unknown| OAuthError::new(ErrorCode::UnsupportedGrantType, unknown.to_string()))?;
        let issued = self.grant(grant_type, app, params, now).await?;
        let actor = Actor { username: issued.username.as_deref(), app: Some(&app.slug), ..Default::default() };
        self.auditor.record("tokens_issued", &actor, Some(grant_type.to_string()));
        Ok((grant_type, issued.response))
    }

    pub(super) fn access_token_ttl(&self, app: &App) -> i64 {
        app.options.access_token_ttl.unwrap_or(self.access_token_ttl)
    }

    pub(super) fn refresh_token_ttl(&self, app: &App) -> i64 {
        app.options.refresh_token_ttl.unwrap_or(self.refresh_token_ttl)
    }

    pub(super) async fn issue(&self, issue: Issue<'_>, now: UnixTime) -> ProtocolResult<Issued> {
        let app = issue.app;
        let alg = app.options.signing_alg;
        let (keys, kid) = self.signing_key(alg, now).await?;
        let expires_in = self.access_token_ttl(app);
        let subject = issue.user.map_or_else(|| app.client_id.clone(), |user| user.id.clone());
        let access_claims = AccessTokenClaims {
            iss: self.issuer(&app.slug),
            sub: subject,
            aud: app.client_id.clone(),
            client_id: app.client_id.clone(),
            exp: now + expires_in,
            iat: now,
            jti: issue.jti.clone(),
            scope: issue.scope.to_owned(),
        };
        let id_claims = match issue.user {
            Some(user) if has_scope(issue.scope, Scope::OpenId) => Some(self.id_token_claims(&issue, user, now)),
            _ => None,
        };
        let (access_token, id_token) = self
            .signing
            .run(move || {
                let key = keys.key(&kid).ok_or(KeyError::Sign)?;
                let access_token = jws::sign(key, "at+jwt", &access_claims)?;
                let id_token = id_claims
                    .map(|mut claims| {
                        claims.insert("at_hash".into(), json!(alg.left_half_hash(&access_token)));
                        jws::sign(key, "JWT", &claims)
                    })
                    .transpose()?;
                Ok((access_token, id_token))
            })
            .await?;
        let response = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            id_token,
            refresh_token: issue.refresh_token,
            scope: issue.scope.to_owned(),
        };
        Ok(Issued { response, username: issue.user.map(|user| user.username.clone()) })
    }

    /// All but `at_hash`, which is added once the access token is signed.
    fn id_token_claims(&self, issue: &Issue<'_>, user: &UserClaims, now: UnixTime) -> Map<String, Value> {
        let app = issue.app;
        let mut claims = user_claims(user, issue.scope);
        claims.insert("iss".into(), json!(self.issuer(&app.slug)));
        claims.insert("aud".into(), json!(app.client_id));
        claims.insert("azp".into(), json!(app.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + self.access_token_ttl(app)));
        if let Some(auth_time) = issue.auth_time {
            claims.insert("auth_time".into(), json!(auth_time));
        }
        if let Some(amr) = issue.amr {
            claims.insert("amr".into(), json!(amr.split(' ').collect::<Vec<_>>()));
            claims.insert("acr".into(), json!(Acr::of_amr(amr).as_str()));
        }
        if let Some(nonce) = issue.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        if let Some(sid) = issue.sid {
            claims.insert("sid".into(), json!(sid));
        }
        claims
    }
}
