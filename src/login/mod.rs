//! Signing people in: the steps of a sign-in (`flow`), the password check,
//! sessions, CSRF, and where to go after.

mod attempt;
pub mod csrf;
pub mod flow;

use attempt::Gate;
use flow::Method;

use crate::clock::UnixTime;
use crate::config::ThrottleLimits;
use crate::crypto::password::{PasswordError, PasswordHasher};
use crate::crypto::{recovery, sha256_hex, totp};
use crate::oidc::reauth::demands_sign_in;
use crate::store::{AttemptOutcome, FailureLimit, SessionUser, Store, StoreError};
use crate::text::{MAX_RECORDED_CHARS, bounded};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong password, unknown user and disabled user look the same, so the
    /// form reveals nothing about which accounts exist.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Too many recent failures for this username or client address. Shown
    /// to the person exactly like `InvalidCredentials`.
    #[error("sign-in temporarily locked")]
    Locked,
    /// Other checks of the same username or address held every slot for
    /// longer than `attempt::BUSY_WAIT`: nothing was checked; the person may retry.
    #[error("too many sign-ins at once")]
    Busy,
    /// The pending sign-in a step was posted for is unknown, finished or
    /// expired (`flow::PENDING_TTL`): the person starts again.
    #[error("the sign-in has expired")]
    Expired,
    /// A proof for another step than the one the sign-in is at (a form
    /// from an earlier page, or a step skipped on purpose): nothing checked.
    #[error("this sign-in is at another step")]
    WrongStep,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

pub struct Authenticator {
    store: Store,
    hasher: PasswordHasher,
    session_ttl: i64,
    limits: Limits,
    gate: Gate,
}

/// Brute-force limits, per username and per client address.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_user: FailureLimit,
    pub per_ip: FailureLimit,
}

impl Limits {
    pub fn from_config(limits: &ThrottleLimits) -> Self {
        let seconds = |duration: std::time::Duration| i64::try_from(duration.as_secs()).unwrap_or(i64::MAX);
        let limit = |max_failures| FailureLimit {
            max_failures,
            window: seconds(limits.window),
            lockout: seconds(limits.lockout),
        };
        Self { per_user: limit(limits.max_failures_per_user), per_ip: limit(limits.max_failures_per_ip) }
    }
}

/// The throttling key of a username: case-insensitive, so `Ada` and `ada`
/// share one budget, and stored, so cut to `MAX_RECORDED_CHARS` (no
/// username is that long; a visitor's guess may be).
pub fn user_subject(username: &str) -> String {
    format!("user:{}", bounded(&username.trim().to_lowercase(), MAX_RECORDED_CHARS))
}

/// The throttling key of a person's second-factor guesses: by account, not
/// by the username typed, and apart from the password's, so that entering
/// the password again (which clears `user_subject`) does not reset it.
pub fn factor_subject(user_id: &str) -> String {
    format!("factor:{user_id}")
}

/// A fresh session: the cookie value (shown to the browser only) and when
/// it ends.
pub struct NewSession {
    pub token: String,
    pub expires_at: UnixTime,
}

impl Authenticator {
    pub fn new(store: Store, hasher: PasswordHasher, session_ttl: std::time::Duration, limits: Limits) -> Self {
        Self {
            gate: Gate::new(store.clone()),
            store,
            hasher,
            session_ttl: i64::try_from(session_ttl.as_secs()).unwrap_or(i64::MAX),
            limits,
        }
    }

    /// Checks the password, unless the username or the client address is
    /// locked after too many failures (then even the right password fails).
    /// Counters live in the store, so guesses spread over instances add up.
    /// While checks in flight hold every slot of the username or address,
    /// the attempt waits for one, so right passwords arriving together all
    /// succeed (`Busy` only after a long wait). The id of the user whose
    /// password it is; `InvalidCredentials` or `Locked` otherwise.
    async fn check_password(
        &self,
        username: &str,
        password: String,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<String, LoginError> {
        // The username first: guesses at a locked name do not lock out
        // everyone behind the same address.
        let subjects =
            vec![(user_subject(username), self.limits.per_user), (format!("ip:{client_ip}"), self.limits.per_ip)];
        let held = self.gate.admit(subjects, now).await?;
        let checked = self.verify_password(username, password).await;
        let outcome = match &checked {
            Ok(Some(_)) => AttemptOutcome::Succeeded,
            Ok(None) => AttemptOutcome::Failed,
            Err(_) => AttemptOutcome::Abandoned,
        };
        held.end(outcome).await?;
        checked?.ok_or(LoginError::InvalidCredentials)
    }

    /// Checks a second-factor code of `user_id`, throttled as passwords are
    /// (per person, on `factor_subject`, and per address), the counts in the
    /// store. Six digits are a TOTP code, accepted once (`matching_step`,
    /// then one conditional update, so a replay on any instance fails);
    /// anything else is tried as a recovery code, used up. The method, and
    /// the recovery codes left when it was one; `InvalidCredentials` or
    /// `Locked` otherwise.
    async fn check_code(
        &self,
        user_id: &str,
        code: &str,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<(Method, Option<i64>), LoginError> {
        let subjects =
            vec![(factor_subject(user_id), self.limits.per_user), (format!("ip:{client_ip}"), self.limits.per_ip)];
        let held = self.gate.admit(subjects, now).await?;
        let checked = self.verify_code(user_id, code, now).await;
        let outcome = match &checked {
            Ok(Some(_)) => AttemptOutcome::Succeeded,
            Ok(None) => AttemptOutcome::Failed,
            Err(_) => AttemptOutcome::Abandoned,
        };
        held.end(outcome).await?;
        checked?.ok_or(LoginError::InvalidCredentials)
    }

    async fn verify_code(
        &self,
        user_id: &str,
        code: &str,
        now: UnixTime,
    ) -> Result<Option<(Method, Option<i64>)>, LoginError> {
        let code = totp::normalize(code);
        if code.len() == totp::DIGITS && code.bytes().all(|byte| byte.is_ascii_digit()) {
            let Some(factor) = self.store.totp_factor(user_id).await?.filter(|factor| factor.confirmed) else {
                return Ok(None);
            };
            let Some(step) = totp::matching_step(&factor.secret, &code, now, factor.last_step) else { return Ok(None) };
            let used = self.store.use_totp_step(user_id, step, false, now).await?;
            return Ok(used.then_some((Method::Otp, None)));
        }
        let left = self.store.use_recovery_code(user_id, &recovery::code_hash(user_id, &code), now).await?;
        Ok(left.map(|left| (Method::RecoveryCode, Some(left))))
    }

    /// Whether the person holds a second factor, so that a sign-in asks
    /// for one after the password.
    async fn holds_second_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(!self.store.factors(user_id).await?.is_empty())
    }

    /// The id of the user when the password is theirs and the account is
    /// active.
    async fn verify_password(&self, username: &str, password: String) -> Result<Option<String>, LoginError> {
        let credentials = self.store.user_credentials(username.trim()).await?;
        let stored = credentials.as_ref().map(|credentials| credentials.password_hash.clone());
        let password_ok = self.hasher.verify(password, stored).await?;
        Ok(credentials.filter(|credentials| password_ok && !credentials.disabled).map(|credentials| credentials.id))
    }

    /// The live session a cookie names, if any.
    pub async fn session(&self, token: &str, now: UnixTime) -> Result<Option<SessionUser>, StoreError> {
        self.store.active_session(&sha256_hex(token), now).await
    }
}

/// Where to send the browser after sign-in: only a path on this server,
/// never another origin. `//host`, `/\host` and absolute URLs are refused,
/// and so is any whitespace or control character, which browsers strip
/// (`/\t/host` would become `//host`) or which would split the header.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.contains('\\')
                && !next.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            next
        }
        _ => "/",
    }
}

/// Where a browser that asks for the sign-in form goes instead, if
/// anywhere: when it is signed in and `next` demands no fresh sign-in,
/// straight on to `next` (a forward-auth step that nginx rewrote onto the
/// app's host comes here). Without a `next` the form stays, so a person
/// can sign in as someone else.
pub fn skip_form(next: Option<&str>, signed_in: bool) -> Option<&str> {
    let next = safe_next(Some(next?));
    (signed_in && !demands_sign_in(next)).then_some(next)
}

/// The sign-in page, asked to go on to `next` (a path on this server) once
/// the person is signed in, with the form's username filled in from
/// `login_hint`. Authorize, forward auth and the sign-in steps all send the
/// browser here, so the page's parameters have one spelling.
pub fn sign_in_url(next: &str, login_hint: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("next", next);
    if let Some(hint) = login_hint {
        query.append_pair("login_hint", hint);
    }
    format!("/login?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_never_leaves_this_origin() {
        assert_eq!(safe_next(Some("/application/o/authorize/?a=b")), "/application/o/authorize/?a=b");
        for hostile in
            ["//evil.example", "/\\evil.example", "https://evil.example/", "evil", "/\t/evil.example", "/\nx"]
        {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn only_a_signed_in_browser_with_somewhere_to_go_skips_the_form() {
        assert_eq!(skip_form(Some("/account"), true), Some("/account"));
        assert_eq!(skip_form(Some("/account"), false), None);
        assert_eq!(skip_form(None, true), None);
        assert_eq!(skip_form(Some("//evil.example"), true), Some("/"));
    }

    #[test]
    fn throttled_usernames_are_case_insensitive_and_bounded() {
        assert_eq!(user_subject(" Ada "), "user:ada");
        assert_eq!(user_subject(&"x".repeat(5000)).chars().count(), "user:".len() + MAX_RECORDED_CHARS);
    }
}
