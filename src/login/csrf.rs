//! CSRF tokens for Latch's forms (sign-in, consent, sign-out), bound to
//! the browser. The browser holds a random id in the CSRF cookie; a form
//! carries a MAC, under a key every instance shares, of that id and of the
//! session cookie the browser had when the form was shown. So:
//!
//! - a cookie of an attacker's choosing (set from a sibling host, where the
//!   `__Host-` prefix is not in use) has no matching form value without the
//!   key: an equal cookie and form value is refused;
//! - a pair an attacker fetched for itself does not fit a victim's session,
//!   which guards the consent and sign-out forms of a signed-in person.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{random_token, sha256_hex};

pub struct CsrfKey {
    key: hmac::Key,
}

/// The length of a browser id `new_browser_id` makes (256 bits in
/// base64url): a CSRF cookie of any other length was not set by Latch, so
/// it is replaced rather than signed.
const BROWSER_ID_LEN: usize = 43;

/// What a posted form brings: where the browser says it was posted from
/// (the `Sec-Fetch-Site` header, if sent), its CSRF and session cookies,
/// and the token in the form.
pub struct Posted<'a> {
    pub fetch_site: Option<&'a [u8]>,
    pub browser_id: Option<&'a str>,
    pub session: Option<&'a str>,
    pub submitted: Option<&'a str>,
}

impl CsrfKey {
    /// `secret`: the deployment's CSRF secret (the same on every instance).
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// A new value for the CSRF cookie: 256 random bits, base64url.
    pub fn new_browser_id() -> String {
        random_token()
    }

    fn message(browser_id: &str, session: Option<&str>) -> String {
        // The session cookie is hashed: fixed length, so no two inputs join
        // into the same message.
        format!("latch-csrf:{}:{browser_id}", sha256_hex(session.unwrap_or_default()))
    }

    /// The form value for the CSRF cookie `browser_id` and the session
    /// cookie `session` (if any): base64url HMAC-SHA256.
    pub fn token(&self, browser_id: &str, session: Option<&str>) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, Self::message(browser_id, session).as_bytes()))
    }

    /// The form value for a form shown to a browser with these cookies,
    /// and the new CSRF cookie value to set when it has no usable one.
    pub fn token_for(&self, browser_id: Option<&str>, session: Option<&str>) -> (String, Option<String>) {
        match browser_id.filter(|id| id.len() == BROWSER_ID_LEN) {
            Some(id) => (self.token(id, session), None),
            None => {
                let id = Self::new_browser_id();
                (self.token(&id, session), Some(id))
            }
        }
    }

    /// Whether a posted form carries the token made for this browser's
    /// cookies and, where the browser says where it was posted from (Fetch
    /// Metadata), was posted from Latch's own pages. A form on a sibling
    /// host is `same-site`, not `same-origin`, even with a cookie and token
    /// it got from Latch for itself and planted (where `__Host-` is not in
    /// use).
    pub fn accepts(&self, posted: &Posted) -> bool {
        self.posted_for(posted, posted.session)
    }

    /// Like `accepts`, but the sign-in form also counts when it was shown
    /// before this browser signed in (in another tab, say): posting it only
    /// signs in again, which the session binding (guarding forms that act
    /// on a session) does not need to stop.
    pub fn accepts_sign_in(&self, posted: &Posted) -> bool {
        self.accepts(posted) || self.posted_for(posted, None)
    }

    fn posted_for(&self, posted: &Posted, session: Option<&str>) -> bool {
        let from_latch = posted.fetch_site.is_none_or(|site| site == b"same-origin" || site == b"none");
        from_latch && self.verify(posted.browser_id, session, posted.submitted)
    }

    /// Whether `submitted` is the form value for these cookies (constant time).
    fn verify(&self, browser_id: Option<&str>, session: Option<&str>, submitted: Option<&str>) -> bool {
        let (Some(browser_id), Some(submitted)) = (browser_id, submitted) else { return false };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(submitted) else { return false };
        !browser_id.is_empty() && hmac::verify(&self.key, Self::message(browser_id, session).as_bytes(), &tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_made_for_these_cookies_verifies() {
        let csrf = CsrfKey::new(b"secret");
        let id = CsrfKey::new_browser_id();
        let token = csrf.token(&id, None);
        assert!(csrf.verify(Some(&id), None, Some(&token)));
        // The cookie's own value as the form value: what a planted cookie gives.
        assert!(!csrf.verify(Some(&id), None, Some(&id)));
        assert!(!csrf.verify(Some("other"), None, Some(&token)));
        assert!(!csrf.verify(Some(&id), Some("a session"), Some(&token)));
        assert!(!csrf.verify(None, None, Some(&token)));
        assert!(!csrf.verify(Some(&id), None, None));
        assert!(!csrf.verify(Some(""), None, Some(&csrf.token("", None))));
        assert!(!CsrfKey::new(b"other").verify(Some(&id), None, Some(&token)));
        let signed_in = csrf.token(&id, Some("s"));
        assert!(csrf.verify(Some(&id), Some("s"), Some(&signed_in)));
        assert!(!csrf.verify(Some(&id), None, Some(&signed_in)));
    }
}
