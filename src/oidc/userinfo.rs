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
        let invalid = |why: &'static str| client_error(ErrorCode::InvalidToken, why);
        let keys = self.keys.current();
        let Ok(claims) = jws::verify::<AccessTokenClaims>(access_token, jws::ACCESS_TOKEN_TYP, |kid| keys.key(kid))
        else {
            return invalid("the token is not an access token signed by Latch (an ID token is not one)");
        };
        if claims.exp <= now {
            return invalid("the access token has expired");
        }
        let Some((scope, user)) = self.store.access_token_claims(&claims.jti, now).await? else {
            if self.store.live_client_token(&claims.jti, now).await?.is_some() {
                return invalid("the access token is the client's own (client_credentials) and names no user");
            }
            return invalid("the access token was revoked, or its user is disabled");
        };
        Ok(user_claims(&user, &scope))
    }
}
