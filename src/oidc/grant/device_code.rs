//! The device code grant (RFC 8628 §3.4, §3.5): the third step of the
//! device flow (`oidc::device` has the first two), a device polling with its
//! device code until the person has answered.

use crate::audit::Actor;
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::oidc::Provider;
use crate::oidc::device::require_device_grant;
use crate::oidc::error::{ErrorCode, ProtocolResult, client_error};
use crate::oidc::params::Params;
use crate::oidc::token::{Issue, Issued};
use crate::store::{App, DeviceRedemption, NewFamily};

impl Provider {
    /// A poll of the token endpoint (RFC 8628 §3.4, §3.5). An approved code
    /// redeems once, atomically, for tokens like the code grant's (the ID
    /// token carries the approving session's `auth_time` and `amr`); otherwise the poll
    /// is told why not, in RFC 8628 §3.5's words.
    pub(super) async fn device_code(&self, app: &App, params: &Params, now: UnixTime) -> ProtocolResult<Issued> {
        require_device_grant(app)?;
        let Some(device_code) = params.get("device_code") else {
            return client_error(ErrorCode::InvalidRequest, "device_code is required");
        };
        let device_code_hash = sha256_hex(device_code);
        let jti = random_token();
        let refresh_token = random_token();
        let family_id = uuid::Uuid::new_v4().to_string();
        let redemption = DeviceRedemption {
            device_code_hash: &device_code_hash,
            app_id: &app.id,
            jti: &jti,
            token_expires_at: now + self.access_token_ttl(app),
            family: NewFamily {
                id: &family_id,
                refresh_hash: &sha256_hex(&refresh_token),
                refresh_expires_at: now + self.refresh_token_ttl(app),
            },
        };
        let Some(grant) = self.store.redeem_device_code(redemption, now).await? else {
            return self.explain_unredeemed(app, &device_code_hash, now).await;
        };
        let Some(user) = self.store.active_user_claims(&grant.user_id).await? else {
            return client_error(ErrorCode::InvalidGrant, "the user is disabled");
        };
        let issue = Issue {
            app,
            user: Some(&user),
            scope: &grant.scope,
            jti,
            auth_time: Some(grant.auth_time),
            amr: Some(&grant.amr),
            sid: grant.sid.as_deref(),
            nonce: None,
            refresh_token: grant.offline.then_some(refresh_token),
        };
        self.issue(issue, now).await
    }

    /// The answer to a poll that did not redeem. A code redeemed before is
    /// being replayed: what its redemption issued is revoked, as for an
    /// authorization code.
    async fn explain_unredeemed<T>(&self, app: &App, device_code_hash: &str, now: UnixTime) -> ProtocolResult<T> {
        let Some(poll) = self.store.poll_device_code(device_code_hash, &app.id, now).await? else {
            return client_error(ErrorCode::InvalidGrant, "the device_code is unknown or was issued to another client");
        };
        if let Some(family) = poll.redeemed_family {
            self.store.revoke_family(&family, now).await?;
            tracing::warn!(app = %app.slug, "device code replayed; the tokens issued for it were revoked");
            let actor = Actor { app: Some(&app.slug), ..Default::default() };
            self.auditor.record("device_code_reuse", &actor, Some("tokens issued for the code revoked".into()));
            return client_error(ErrorCode::InvalidGrant, "the device_code was already used");
        }
        if poll.expires_at <= now {
            return client_error(ErrorCode::ExpiredToken, "the device_code has expired; request a new one");
        }
        match poll.approved {
            Some(false) => client_error(ErrorCode::AccessDenied, "the user denied the request"),
            Some(true) if !poll.admitted => client_error(
                ErrorCode::AccessDenied,
                "the user may not use this app now (disabled, or not in its groups)",
            ),
            Some(true) if !poll.session_live => {
                client_error(ErrorCode::AccessDenied, "the sign-in session that approved the request has ended")
            }
            // Approved between this poll's redemption attempt and now.
            Some(true) => client_error(ErrorCode::AuthorizationPending, "approved just now; poll again"),
            None if poll.slowed_down => client_error(
                ErrorCode::SlowDown,
                format!("polled sooner than the interval; wait {} seconds between polls", poll.interval),
            ),
            None => client_error(ErrorCode::AuthorizationPending, "the user has not answered yet"),
        }
    }
}
