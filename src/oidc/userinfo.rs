//! The UserInfo endpoint (OIDC Core §5.3). An access token is good only while
//! its signature verifies, it has not expired, and its row in the store says
//! it is live and its user active: revocation and disabling work at once.

use serde_json::{Map, Value};

use super::Provider;
use super::claims::user_claims;
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::token::AccessTokenClaims;
use crate::clock::UnixTime;
use crate::crypto::jws;

impl Provider {
    pub async fn userinfo(&self, access_token: &str, now: UnixTime) -> ProtocolResult<Map<String, Value>> {
        let invalid = || client_error(ErrorCode::InvalidToken, "the access token is invalid, expired or revoked");
        let keys = self.keys.current();
        let Ok(claims) = jws::verify::<AccessTokenClaims>(access_token, jws::ACCESS_TOKEN_TYP, |kid| keys.key(kid))
        else {
            return invalid();
        };
        if claims.exp <= now {
            return invalid();
        }
        let Some((scope, user)) = self.store.access_token_claims(&claims.jti, now).await? else {
            return invalid();
        };
        Ok(user_claims(&user, &scope))
    }
}
