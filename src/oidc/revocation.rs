//! Token revocation (RFC 7009) and introspection (RFC 7662). Both take an
//! authenticated client and answer only about that client's own tokens.

use serde::Serialize;

use super::Provider;
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::params::Params;
use super::token::AccessTokenClaims;
use super::values::TokenKind;
use crate::clock::UnixTime;
use crate::crypto::{jws, sha256_hex};
use crate::store::App;

/// RFC 7662 §2.2. An inactive token is exactly `{"active": false}`.
#[derive(Debug, Serialize, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// A presented token, told apart by kind: access tokens are JWTs Latch
/// signed with `typ: at+jwt` (an ID token is not one), anything else can
/// only be a refresh token.
enum Presented {
    Access(AccessTokenClaims),
    Refresh(String),
}

impl Provider {
    fn classify(&self, token: &str) -> Presented {
        let keys = self.keys.current();
        match jws::verify::<AccessTokenClaims>(token, jws::ACCESS_TOKEN_TYP, |kid| keys.key(kid)) {
            Ok(claims) => Presented::Access(claims),
            Err(_) => Presented::Refresh(sha256_hex(token)),
        }
    }

    /// Revokes the token if it is `app`'s. Unknown tokens are not an error
    /// (RFC 7009 §2.2); another client's token is refused. `token_type_hint`
    /// is only a hint (RFC 7009 §2.1) and needs no handling: the token's own
    /// kind decides, so a wrong hint neither hides a token nor passes one
    /// kind off as another.
    pub async fn revoke(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<()> {
        let Some(token) = params.get("token") else {
            return client_error(ErrorCode::InvalidRequest, "token is required");
        };
        if let Some(Err(unknown)) = params.get("token_type_hint").map(str::parse::<TokenKind>) {
            return client_error(ErrorCode::UnsupportedTokenType, unknown.to_string());
        }
        let not_yours = || client_error(ErrorCode::UnauthorizedClient, "the token was issued to another client");
        match self.classify(token) {
            Presented::Access(claims) => match self.store.access_token_app(&claims.jti).await? {
                Some(owner) if owner != app.id => return not_yours(),
                Some(_) => self.store.revoke_access_token(&claims.jti, now).await?,
                None => {}
            },
            Presented::Refresh(hash) => match self.store.refresh_token_owner(&hash).await? {
                Some((_, owner)) if owner != app.id => return not_yours(),
                Some((family, _)) => self.store.revoke_family(&family, now).await?,
                None => {}
            },
        }
        Ok(())
    }

    /// RFC 7662 §2.1: the caller is a resource server, which holds a
    /// secret; a public client (anyone can be one) learns nothing here.
    pub async fn introspect(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Introspection> {
        if app.is_public() {
            return client_error(ErrorCode::InvalidClient, "introspection requires a confidential client");
        }
        let Some(token) = params.get("token") else {
            return client_error(ErrorCode::InvalidRequest, "token is required");
        };
        let inactive = Introspection::default();
        let iss = Some(self.issuer(&app.slug));
        Ok(match self.classify(token) {
            Presented::Access(claims) if claims.client_id == app.client_id && claims.exp > now => {
                let live = match self.store.live_access_token(&claims.jti, now).await? {
                    Some(grant) => grant.app_id == app.id,
                    None => self
                        .store
                        .live_client_token(&claims.jti, now)
                        .await?
                        .is_some_and(|grant| grant.app_id == app.id),
                };
                if !live {
                    return Ok(inactive);
                }
                Introspection {
                    active: true,
                    sub: Some(claims.sub),
                    client_id: Some(claims.client_id),
                    scope: Some(claims.scope),
                    exp: Some(claims.exp),
                    iat: Some(claims.iat),
                    iss,
                    token_type: Some("Bearer"),
                }
            }
            Presented::Refresh(hash) => match self.store.live_refresh_token(&hash, now).await? {
                Some(info) if info.app_id == app.id => Introspection {
                    active: true,
                    sub: Some(info.user_id),
                    client_id: Some(app.client_id.clone()),
                    scope: Some(info.scope),
                    exp: Some(info.expires_at),
                    iat: Some(info.issued_at),
                    iss,
                    token_type: Some(TokenKind::RefreshToken.as_str()),
                },
                _ => inactive,
            },
            Presented::Access(_) => inactive,
        })
    }
}
