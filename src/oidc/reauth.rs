//! The mark Latch puts on an authorization request it sends back through
//! sign-in because the request itself demanded a fresh one (`prompt=login`,
//! `max_age`, an `id_token_hint` naming someone else; OIDC Core §3.1.2.1).
//!
//! The mark is a random token and means nothing by itself: anyone may get
//! one without signing in. Only a sign-in whose form carried it (in `next`)
//! gives it meaning, by marking the session that sign-in created
//! (`bind_reauth`). The repeated request is then satisfied once, in that
//! session only, for `MARK_TTL` seconds (`take_reauth`). The state lives in
//! the store, so it holds across instances, and a mark read off a URL,
//! replayed, or appended to a request in another browser skips nothing.

use super::Provider;
use super::error::InternalError;
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::store::SessionUser;

/// The query parameter that carries the mark.
pub const REAUTH_MARKER: &str = "latch_reauth";

/// How long a sign-in's mark stays usable, in seconds: long enough to follow
/// the redirect after the sign-in or to read the consent page, no longer.
const MARK_TTL: i64 = 5 * 60;

/// The path whose requests carry marks.
const AUTHORIZE_PATH: &str = "/application/o/authorize/";

/// A new, still meaningless mark for a request sent through sign-in.
pub(super) fn new_mark() -> String {
    random_token()
}

/// The mark in `next`, when `next` is an authorization request carrying one.
fn mark_in(next: &str) -> Option<String> {
    let (path, query) = next.split_once('?')?;
    if path != AUTHORIZE_PATH {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == REAUTH_MARKER).map(|(_, mark)| mark.into())
}

impl Provider {
    /// After a successful sign-in: when `next` (where the browser goes now)
    /// is an authorization request carrying a mark, the new session
    /// (`session_token`, the cookie value) becomes the sign-in it stands for.
    pub async fn bind_reauth(&self, next: &str, session_token: &str, now: UnixTime) -> Result<(), InternalError> {
        let Some(mark) = mark_in(next) else { return Ok(()) };
        let expires_at = now.saturating_add(MARK_TTL);
        Ok(self.store.mark_reauthentication(&sha256_hex(session_token), &sha256_hex(&mark), expires_at).await?)
    }

    /// Whether `mark` stands for a sign-in made in `session` in the last
    /// `MARK_TTL` seconds and not used yet. A `true` uses it up.
    pub(super) async fn take_reauth(
        &self,
        mark: &str,
        session: &SessionUser,
        now: UnixTime,
    ) -> Result<bool, InternalError> {
        Ok(self.store.take_reauth_mark(&session.id_hash, &sha256_hex(mark), now).await?)
    }

    /// A fresh mark standing for the same sign-in of `session`, for a page
    /// (consent) that repeats the request once more.
    pub(super) async fn renew_reauth(&self, session: &SessionUser, now: UnixTime) -> Result<String, InternalError> {
        let mark = new_mark();
        let expires_at = now.saturating_add(MARK_TTL);
        self.store.mark_reauthentication(&session.id_hash, &sha256_hex(&mark), expires_at).await?;
        Ok(mark)
    }
}

/// Whether `next` (the path the login page continues to) demands a fresh
/// sign-in: an authorization request carrying a mark. Only a sign-in made
/// with that `next` gives the mark meaning, so a signed-in browser is shown
/// the form rather than sent on (where the request would come straight back).
pub fn demands_sign_in(next: &str) -> bool {
    mark_in(next).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_read_only_from_an_authorization_request() {
        let next = format!("{AUTHORIZE_PATH}?client_id=a&{REAUTH_MARKER}=m%2Bx&state=s");
        assert_eq!(mark_in(&next).as_deref(), Some("m+x"));
        assert_eq!(mark_in(&format!("{AUTHORIZE_PATH}?client_id=a")), None);
        assert_eq!(mark_in(&format!("/outpost.goauthentik.io/sso?{REAUTH_MARKER}=m")), None);
        assert_eq!(mark_in("/"), None);
    }

    #[test]
    fn only_a_marked_authorization_request_demands_a_sign_in() {
        assert!(demands_sign_in(&format!("{AUTHORIZE_PATH}?client_id=c&{REAUTH_MARKER}=m")));
        assert!(!demands_sign_in(&format!("{AUTHORIZE_PATH}?client_id=c")));
        assert!(!demands_sign_in(&format!("/outpost.goauthentik.io/sso?rd=x&{REAUTH_MARKER}=m")));
        assert!(!demands_sign_in("/"));
    }
}
