//! The mark Latch puts on an authorization request it sends back through
//! sign-in because the request itself demanded a fresh one (`prompt=login`,
//! `max_age`, an `id_token_hint` naming someone else). A sign-in at or after
//! the marked time satisfies the request when it comes back. The mark is
//! MAC'd with a secret every instance shares, so a browser cannot forge one
//! to skip the step-up.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::clock::UnixTime;

pub const REAUTH_MARKER: &str = "latch_auth_after";

pub struct ReauthMarks {
    key: hmac::Key,
}

impl ReauthMarks {
    pub fn new(secret: &[u8]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    fn tag(&self, after: UnixTime, client_id: &str) -> hmac::Tag {
        hmac::sign(&self.key, format!("reauth:{after}:{client_id}").as_bytes())
    }

    /// `<time>.<mac>`, bound to the client.
    pub fn issue(&self, after: UnixTime, client_id: &str) -> String {
        format!("{after}.{}", URL_SAFE_NO_PAD.encode(self.tag(after, client_id)))
    }

    /// The marked time, if the mark is Latch's own for this client.
    pub fn verify(&self, mark: &str, client_id: &str) -> Option<UnixTime> {
        let (after, mac) = mark.split_once('.')?;
        let after: UnixTime = after.parse().ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        hmac::verify(&self.key, format!("reauth:{after}:{client_id}").as_bytes(), &mac).ok()?;
        Some(after)
    }
}

/// Whether `next` (the path the login page continues to) demands a
/// sign-in after `auth_time`: an authorization request carrying a mark for
/// the same second or later (in doubt, ask), or one that cannot be read. Only the time is read here: a
/// forged mark can at most make the login page ask for the password; the
/// authorization endpoint checks the MAC.
pub fn demands_sign_in_after(next: &str, auth_time: UnixTime) -> bool {
    let query = next.split_once('?').map(|(_, query)| query).unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name == REAUTH_MARKER).any(|(_, mark)| {
        mark.split_once('.')
            .and_then(|(after, _)| after.parse::<UnixTime>().ok())
            .is_none_or(|after| after >= auth_time)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_latch_made_marks_for_the_same_client_verify() {
        let marks = ReauthMarks::new(b"secret");
        let mark = marks.issue(1000, "client-a");
        assert_eq!(marks.verify(&mark, "client-a"), Some(1000));
        assert_eq!(marks.verify(&mark, "client-b"), None);
        assert_eq!(marks.verify("0", "client-a"), None);
        assert_eq!(marks.verify(&mark.replacen("1000", "0", 1), "client-a"), None);
        assert_eq!(ReauthMarks::new(b"other").verify(&mark, "client-a"), None);
    }

    #[test]
    fn only_a_mark_after_the_sign_in_demands_another() {
        let mark = ReauthMarks::new(b"secret").issue(1000, "client-a");
        let next = |mark: &str| {
            format!(
                "/application/o/authorize/?client_id=c&{}",
                serde_urlencoded::to_string([(REAUTH_MARKER, mark)]).unwrap()
            )
        };
        assert!(demands_sign_in_after(&next(&mark), 1000));
        assert!(!demands_sign_in_after(&next(&mark), 1001));
        assert!(demands_sign_in_after(&next("garbage"), 5000));
        assert!(!demands_sign_in_after("/outpost.goauthentik.io/sso?rd=x&state=y", 0));
        assert!(!demands_sign_in_after("/", 0));
    }
}
