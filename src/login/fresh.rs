//! Fresh sign-ins for sensitive actions, and sessions that start without a
//! sign-in form (after a one-time link).
//!
//! A sensitive action (showing or rotating a secret, rotating keys,
//! granting admin, resetting someone's factors, changing one's password)
//! needs a proof made in the last few minutes: `is_fresh` says whether the
//! session has one; if not, the person proves their password again
//! (`reprove_password`, throttled as a sign-in), which makes the session's
//! `auth_time` now, and then goes on. The web side of this is
//! `web::fresh`.

use super::{Authenticator, LoginError, NewSession};
use crate::clock::UnixTime;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{NewSessionRecord, SessionUser};

/// Seconds a proof counts as fresh for a sensitive action: five minutes,
/// as GitHub's sudo mode asks again after a while, not on every click.
pub const FRESH_FOR: i64 = 5 * 60;

/// Whether `session`'s last proof (its `auth_time`) is at most `max_age`
/// seconds old at `now`.
pub fn is_fresh(session: &SessionUser, now: UnixTime, max_age: i64) -> bool {
    now.saturating_sub(session.auth_time) <= max_age
}

impl Authenticator {
    /// Checks `password` for the person of `session`, throttled like a
    /// sign-in (same per-user and per-address counters), and on success
    /// makes the session's `auth_time` `now`. `InvalidCredentials` or
    /// `Locked` otherwise (the person is told the same either way).
    pub async fn reprove_password(
        &self,
        session: &SessionUser,
        password: String,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<(), LoginError> {
        let user_id = self.check_password(&session.username, password, client_ip, now).await?;
        if user_id != session.user_id {
            // Renamed since the session began, and the name now another's.
            return Err(LoginError::InvalidCredentials);
        }
        self.store.refresh_auth_time(&session.id_hash, now).await?;
        Ok(())
    }

    /// Starts a session for `user_id` with the password they just chose
    /// through a one-time link (no form to fill in again). `replaces`: the
    /// session cookie the browser held, which the new one replaces.
    pub async fn start_session_after_link(
        &self,
        user_id: &str,
        replaces: Option<&str>,
        now: UnixTime,
    ) -> Result<NewSession, LoginError> {
        let token = random_token();
        let (id_hash, replaces) = (sha256_hex(&token), replaces.map(sha256_hex));
        let expires_at = now.saturating_add(self.session_ttl);
        let record = NewSessionRecord {
            id_hash: &id_hash,
            user_id,
            auth_time: now,
            amr: super::flow::Method::Password.amr(),
            expires_at,
            replaces: replaces.as_deref(),
        };
        self.store.create_session(record, None, now).await?;
        Ok(NewSession { token, expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_fresh_for_its_age_limit_and_no_longer() {
        let session = SessionUser {
            id_hash: "h".into(),
            user_id: "u".into(),
            username: "ada".into(),
            auth_time: 1000,
            amr: "pwd".into(),
            last_seen_at: None,
        };
        assert!(is_fresh(&session, 1000 + FRESH_FOR, FRESH_FOR));
        assert!(!is_fresh(&session, 1001 + FRESH_FOR, FRESH_FOR));
    }
}
