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

    /// Whether `submitted` is the form value for these cookies (constant time).
    pub fn verify(&self, browser_id: Option<&str>, session: Option<&str>, submitted: Option<&str>) -> bool {
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
