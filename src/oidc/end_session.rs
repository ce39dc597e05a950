//! RP-Initiated Logout 1.0: end the SSO session, then go back to the app
//! only if it registered the target exactly.

use super::Provider;
use super::error::{ErrorCode, ProtocolResult, client_error};
use super::params::Params;
use crate::clock::UnixTime;
use crate::store::SessionUser;

#[derive(Debug)]
pub enum LogoutOutcome {
    /// Back to the app's registered post-logout URI.
    Redirect(String),
    /// No valid registered target: tell the person they are signed out.
    SignedOut,
}

impl Provider {
    pub async fn end_session(
        &self,
        slug: &str,
        params: &Params,
        session: Option<&SessionUser>,
        now: UnixTime,
    ) -> ProtocolResult<LogoutOutcome> {
        let Some(app) = self.store.app_by_slug(slug).await? else {
            return client_error(ErrorCode::InvalidRequest, "no such application");
        };
        if params.get("client_id").is_some_and(|client_id| client_id != app.client_id) {
            return client_error(ErrorCode::InvalidRequest, "client_id does not belong to this application");
        }
        let hint_ok = match params.get("id_token_hint") {
            Some(hint) => self.hinted_subject(hint, &app).is_ok(),
            None => true,
        };
        if let Some(session) = session {
            self.store.end_session(&session.id_hash, now).await?;
        }
        let target = params.get("post_logout_redirect_uri").filter(|target| {
            hint_ok && app.options.post_logout_redirect_uris.iter().any(|registered| registered == target)
        });
        Ok(match target {
            Some(target) => {
                let mut url = match url::Url::parse(target) {
                    Ok(url) => url,
                    Err(_) => return Ok(LogoutOutcome::SignedOut),
                };
                if let Some(state) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", state);
                }
                LogoutOutcome::Redirect(url.into())
            }
            None => LogoutOutcome::SignedOut,
        })
    }
}
