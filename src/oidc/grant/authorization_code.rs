//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6).

use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_b64, sha256_hex};
use crate::oidc::Provider;
use crate::oidc::error::{ErrorCode, ProtocolResult, client_error};
use crate::oidc::params::Params;
use crate::oidc::token::{CODE_EXPIRED, CODE_REFUSED, CODE_REUSE, CODE_UNKNOWN, Issue, Issued, PKCE_FAILED};
use crate::store::{App, CodeRedemption, NewFamily};

const BAD_VERIFIER: &str = "code_verifier must be 43 to 128 unreserved characters";
const PUBLIC_WITHOUT_VERIFIER: &str = "code_verifier is required for public clients";

impl Provider {
    /// RFC 6749 §4.1.3: the code, bound to the client, the redirect URI and
    /// (RFC 7636 §4.6) the code verifier, is spent in one atomic statement.
    pub(super) async fn authorization_code(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        let Some(code) = params.get("code") else {
            return client_error(ErrorCode::InvalidRequest, "code is required");
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return client_error(ErrorCode::InvalidRequest, "redirect_uri is required");
        };
        let verifier = params.get("code_verifier");
        if verifier.is_some_and(|verifier| !is_valid_verifier(verifier)) {
            return self.refuse(app, None, PKCE_FAILED, ErrorCode::InvalidRequest, BAD_VERIFIER);
        }
        if app.is_public() && verifier.is_none() {
            return self.refuse(app, None, PKCE_FAILED, ErrorCode::InvalidRequest, PUBLIC_WITHOUT_VERIFIER);
        }
        let code_hash = sha256_hex(code);
        let challenge = verifier.map(|verifier| sha256_b64(verifier, false));
        let jti = random_token();
        let refresh_token = random_token();
        let family_id = uuid::Uuid::new_v4().to_string();
        let redemption = CodeRedemption {
            code_hash: &code_hash,
            app_id: &app.id,
            redirect_uri,
            code_challenge: challenge.as_deref(),
            jti: &jti,
            token_expires_at: now + self.access_token_ttl(app),
            family: NewFamily {
                id: &family_id,
                refresh_hash: &sha256_hex(&refresh_token),
                refresh_expires_at: now + self.refresh_token_ttl(app),
            },
        };
        let Some(grant) = self.store.redeem_code(redemption, now).await? else {
            return self.explain_failed_redemption(app, &code_hash, redirect_uri, challenge.as_deref(), now).await;
        };
        let Some(user) = self.store.active_user_claims(&grant.user_id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the user is disabled");
        };
        self.issue(
            Issue {
                app,
                user: Some(&user),
                scope: &grant.scope,
                jti,
                auth_time: Some(grant.auth_time),
                amr: Some(&grant.amr),
                nonce: grant.nonce.as_deref(),
                sid: grant.sid.as_deref(),
                refresh_token: grant.offline.then_some(refresh_token),
            },
            now,
        )
        .await
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
        let Some(state) = self.store.code_state(code_hash, &app.id, now).await? else {
            return self.refuse(app, None, CODE_REFUSED, ErrorCode::InvalidGrant, CODE_UNKNOWN);
        };
        let (kind, reason) = if state.used {
            self.store.revoke_tokens_of_code(code_hash, &app.id, now).await?;
            tracing::warn!(app = %app.slug, "authorization code replayed; tokens issued for it were revoked");
            let actor = Actor { app: Some(&app.slug), username: Some(&state.username), ..Default::default() };
            self.auditor.record(CODE_REUSE, &actor, Some("tokens issued for the code revoked".into()));
            return client_error(ErrorCode::InvalidGrant, "the code was already used");
        } else if state.expires_at <= now {
            (CODE_REFUSED, CODE_EXPIRED)
        } else if state.redirect_uri != redirect_uri {
            (CODE_REFUSED, "redirect_uri differs from the one in the authorization request")
        } else if !state.admitted {
            (CODE_REFUSED, "the user may not use this app now (disabled, or not in its groups)")
        } else if !state.session_live {
            (CODE_REFUSED, "the sign-in session the code was issued in has ended")
        } else if state.code_challenge.is_none() {
            (PKCE_FAILED, "code_verifier was sent but the authorization request had no code_challenge")
        } else if challenge.is_none() {
            (PKCE_FAILED, "code_verifier is required: the authorization request had a code_challenge")
        } else {
            (PKCE_FAILED, "code_verifier does not match the code_challenge")
        };
        self.refuse(app, Some(&state.username), kind, ErrorCode::InvalidGrant, reason)
    }

    /// Records the refusal as the audit event `kind` (with `reason` as its
    /// detail, for `latch doctor`) and returns it as the error `code`.
    fn refuse<T>(
        &self,
        app: &App,
        username: Option<&str>,
        kind: &str,
        code: ErrorCode,
        reason: &'static str,
    ) -> ProtocolResult<T> {
        let actor = Actor { app: Some(&app.slug), username, ..Default::default() };
        self.auditor.record(kind, &actor, Some(reason.to_owned()));
        client_error(code, reason)
    }
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}
