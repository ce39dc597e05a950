//! The refresh token grant (RFC 6749 §6).

use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::keys::KeyError;
use crate::crypto::{random_token, seal, sha256_hex};
use crate::login::flow::has_mfa;
use crate::oidc::Provider;
use crate::oidc::claims::{granted_scope, has_scope};
use crate::oidc::error::{ErrorCode, ProtocolResult, client_error};
use crate::oidc::params::Params;
use crate::oidc::token::{Issue, Issued};
use crate::oidc::values::Scope;
use crate::store::{App, Rotation, RotationOutcome};

impl Provider {
    /// Rotation on every use (RFC 9700 §4.14.2): the presented token is
    /// spent and a new one replaces it. Presenting the immediately previous
    /// token again within the app's grace window (two tabs, two replicas, a
    /// retry after a lost response) is benign: it gets the same successor
    /// the first use got, so the family stays one chain and either holder
    /// continues with it. Any other spent token revokes the whole family.
    /// Every refresh re-applies the access rule, and the app's second-factor
    /// requirement: tokens from a password-only sign-in stop once the app
    /// requires more.
    pub(super) async fn refresh_token(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        let Some(presented) = params.get("refresh_token") else {
            return client_error(ErrorCode::InvalidRequest, "refresh_token is required");
        };
        let presented_hash = sha256_hex(presented);
        let next = random_token();
        let Some(next_sealed) = seal::seal(presented, &next) else {
            return Err(KeyError::Seal.into());
        };
        let jti = random_token();
        let rotation = Rotation {
            presented_hash: &presented_hash,
            app_id: &app.id,
            next_hash: &sha256_hex(&next),
            next_sealed: &next_sealed,
            next_expires_at: now + self.refresh_token_ttl(app),
            jti: &jti,
            access_expires_at: now + self.access_token_ttl(app),
            reuse_grace: app.options.refresh_token_reuse_grace,
        };
        // A refresh may narrow the scope (RFC 6749 §6), never widen it.
        let requested = params.get("scope");
        let narrow = |granted: &str| match requested {
            Some(requested) if requested.split(' ').all(|scope| is_granted(granted, scope)) => {
                Some(granted_scope(requested))
            }
            Some(_) => None,
            None => Some(granted.to_owned()),
        };
        let refused = || {
            client_error(
                ErrorCode::InvalidGrant,
                "the refresh token is invalid, expired, revoked or already used, or its user may not use this app",
            )
        };
        let (grant, refresh_token) = match self.store.rotate_refresh_token(rotation, now, narrow).await? {
            RotationOutcome::Rotated(grant) => (grant, next),
            RotationOutcome::Repeated { grant, successor_sealed } => {
                // Sealed under the presented token: only its holder opens it.
                let Some(successor) = seal::open(presented, &successor_sealed) else { return refused() };
                tracing::info!(app = %app.slug, "refresh token presented again within the grace window");
                (grant, successor)
            }
            RotationOutcome::ScopeRefused => {
                return client_error(ErrorCode::InvalidScope, "a refresh cannot widen the granted scope");
            }
            RotationOutcome::Replayed { username } => {
                tracing::warn!(app = %app.slug, %username, "refresh token replayed; its family was revoked");
                let actor = Actor { username: Some(&username), app: Some(&app.slug), ..Default::default() };
                self.auditor.record("refresh_token_reuse", &actor, Some("family revoked".into()));
                return refused();
            }
            RotationOutcome::NotFound => return refused(),
        };
        let scope = grant.scope.clone();
        let Some(user) = self.store.active_user_claims(&grant.user_id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the user is disabled");
        };
        if self.mfa.required_for(app.options.require_mfa) && !has_mfa(&grant.amr) {
            return client_error(
                ErrorCode::InvalidGrant,
                "the app requires a second factor: the user must sign in again",
            );
        }
        self.issue(
            Issue {
                app,
                user: Some(&user),
                scope: &scope,
                jti,
                auth_time: Some(grant.auth_time),
                amr: Some(&grant.amr),
                nonce: None,
                sid: grant.sid.as_deref(),
                refresh_token: Some(refresh_token),
            },
            now,
        )
        .await
    }
}

/// Whether `scope`, as a client spelled it, is among the `granted` ones: a
/// scope Latch does not know was never granted.
fn is_granted(granted: &str, scope: &str) -> bool {
    scope.parse::<Scope>().is_ok_and(|scope| has_scope(granted, scope))
}
