//! The client credentials grant (RFC 6749 §4.4).

use crate::clock::UnixTime;
use crate::crypto::random_token;
use crate::oidc::Provider;
use crate::oidc::claims::granted_scope;
use crate::oidc::error::{ErrorCode, ProtocolResult, client_error};
use crate::oidc::params::Params;
use crate::oidc::token::{Issue, Issued};
use crate::store::App;

impl Provider {
    /// The client acting for itself (RFC 6749 §4.4): an access token whose
    /// subject is the client; no ID token, no refresh token.
    pub(super) async fn client_credentials(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        if app.is_public() {
            return client_error(
                ErrorCode::UnauthorizedClient,
                "a public client cannot use the client_credentials grant",
            );
        }
        if !app.options.client_credentials {
            return client_error(
                ErrorCode::UnauthorizedClient,
                "the client_credentials grant is not enabled for this app (latch app update --client-credentials)",
            );
        }
        let scope = params.get("scope").map(granted_scope).unwrap_or_default();
        let jti = random_token();
        let expires_at = now + self.access_token_ttl(app);
        self.store.insert_client_token(&jti, &app.id, &scope, now, expires_at).await?;
        self.issue(
            Issue {
                app,
                user: None,
                scope: &scope,
                jti,
                auth_time: None,
                amr: None,
                nonce: None,
                sid: None,
                refresh_token: None,
            },
            now,
        )
        .await
    }
}
