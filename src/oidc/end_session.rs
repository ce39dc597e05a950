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
    /// No valid registered target: tell the person they are signed out and,
    /// when the app asked to be returned to, why it was not.
    SignedOut { not_returned: Option<&'static str> },
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
            return client_error(ErrorCode::InvalidRequest, format!("no application has the slug {slug}"));
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
        let Some(target) = params.get("post_logout_redirect_uri") else {
            return Ok(LogoutOutcome::SignedOut { not_returned: None });
        };
        let refused = |why: &'static str| {
            tracing::info!(app = %app.slug, %target, reason = why, "post-logout redirect refused");
            Ok(LogoutOutcome::SignedOut { not_returned: Some(why) })
        };
        if !hint_ok {
            return refused("Its id_token_hint is not a valid ID token of this app, so Latch does not send you back.");
        }
        if !app.options.post_logout_redirect_uris.iter().any(|registered| registered == target) {
            return refused(
                "The address it asked to return to is not registered for it as a post-logout redirect URI \
                 (latch app update --post-logout-redirect-uri).",
            );
        }
        let Ok(mut url) = url::Url::parse(target) else {
            return refused("The registered address it asked to return to is not a valid URL.");
        };
        if let Some(state) = params.get("state") {
            url.query_pairs_mut().append_pair("state", state);
        }
        Ok(LogoutOutcome::Redirect(url.into()))
    }
}
