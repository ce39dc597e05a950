//! RP-Initiated Logout 1.0: end the SSO session, then go back to the app
//! only if it registered the target exactly. Without an ID token that names
//! the signed-in person, the person is asked first (§2: the OP should
//! confirm), so that a link or an image on any site cannot sign them out.

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
    /// Ask the person whether to sign out; nothing has ended yet.
    Confirm { app_name: String },
}

impl Provider {
    pub async fn end_session(
        &self,
        slug: &str,
        params: &Params,
        session: Option<&SessionUser>,
        confirmed: bool,
        now: UnixTime,
    ) -> ProtocolResult<LogoutOutcome> {
        let Some(app) = self.store.app_by_slug(slug).await? else {
            return client_error(ErrorCode::InvalidRequest, "no such application");
        };
        if params.get("client_id").is_some_and(|client_id| client_id != app.client_id) {
            return client_error(ErrorCode::InvalidRequest, "client_id does not belong to this application");
        }
        let hinted = params.get("id_token_hint").map(|hint| self.hinted_subject(hint, &app).ok());
        let hint_ok = !matches!(hinted, Some(None));
        if let Some(session) = session {
            let names_this_person = matches!(&hinted, Some(Some(hinted)) if hinted.subject == session.user_id);
            if !names_this_person && !confirmed {
                return Ok(LogoutOutcome::Confirm { app_name: app.name.clone() });
            }
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
