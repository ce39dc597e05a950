//! Signing people in: the steps of a sign-in (`flow`), the password check,
//! sessions, CSRF, and where to go after.

mod attempt;
pub mod csrf;
pub mod flow;
pub mod fresh;
pub mod passkey;

use attempt::Gate;
use flow::Method;
use passkey::{PasskeyError, Passkeys, Verified};

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
    /// Passkeys are unavailable, or their data is unreadable; a passkey
    /// that does not verify is `InvalidCredentials`.
    #[error(transparent)]
    Passkey(PasskeyError),
}

impl From<PasskeyError> for LoginError {
    fn from(error: PasskeyError) -> Self {
        match error {
            PasskeyError::Refused => Self::InvalidCredentials,
            PasskeyError::Expired => Self::Expired,
            PasskeyError::Store(error) => Self::Store(error),
            other => Self::Passkey(other),
        }
    }
}

pub struct Authenticator {
    store: Store,
    hasher: PasswordHasher,
    session_ttl: i64,
    limits: Limits,
    gate: Gate,
    passkeys: Passkeys,
    /// The deployment's `require_mfa`: then no account password binds over
    /// LDAP (`check_directory_bind`).
    mfa_required_by_default: bool,
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

/// Which passwords a check accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepts {
    /// The sign-in page: the account password only.
    AccountPassword,
    /// An LDAP bind: the account password or an app password.
    AppPasswordsToo,
}

/// How many leading characters of an app password are stored in clear to
/// find its hash (`app_password_lookup`).
pub const APP_PASSWORD_LOOKUP_CHARS: usize = 6;

/// The stored lookup key of an app password: its first
/// `APP_PASSWORD_LOOKUP_CHARS` characters.
pub fn app_password_lookup(password: &str) -> String {
    password.chars().take(APP_PASSWORD_LOOKUP_CHARS).collect()
}

/// Seconds between two records of a session's use: a write per minute at
/// most, not per request.
const SEEN_EVERY: i64 = 60;
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
    /// `public_url`: where Latch is reached, which names the passkeys'
    /// relying party (`login::passkey`).
    pub fn new(
        store: Store,
        hasher: PasswordHasher,
        session_ttl: std::time::Duration,
        limits: Limits,
        public_url: &str,
        mfa_required_by_default: bool,
    ) -> Self {
        Self {
            gate: Gate::new(store.clone()),
            passkeys: Passkeys::new(store.clone(), public_url),
            store,
            hasher,
            session_ttl: i64::try_from(session_ttl.as_secs()).unwrap_or(i64::MAX),
            limits,
            mfa_required_by_default,
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
        self.check_throttled(username, password, Accepts::AccountPassword, client_ip, now).await
    }

    /// An LDAP simple bind as a person: the account password (only for
    /// people from whom no second factor is expected:
    /// `second_factor_expected`) or one of the person's app passwords, throttled with the very counters of the
    /// sign-in page (`check_password`), so failures over LDAP and on the
    /// web add up to one lock, which `latch user unlock` lifts. Nothing is
    /// cached: a changed password counts from the next bind. The user's id;
    /// `InvalidCredentials`, `Locked` or `Busy` otherwise.
    pub async fn check_directory_bind(
        &self,
        username: &str,
        password: String,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<String, LoginError> {
        self.check_throttled(username, password, Accepts::AppPasswordsToo, client_ip, now).await
    }

    async fn check_throttled(
        &self,
        username: &str,
        password: String,
        accepts: Accepts,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<String, LoginError> {
        // The username first: guesses at a locked name do not lock out
        // everyone behind the same address.
        let subjects =
            vec![(user_subject(username), self.limits.per_user), (format!("ip:{client_ip}"), self.limits.per_ip)];
        let held = self.gate.admit(subjects, now).await?;
        let checked = self.verify_password(username, password, accepts).await;
        let outcome = match &checked {
            Ok(Some(_)) => AttemptOutcome::Succeeded,
            Ok(None) => AttemptOutcome::Failed,
            Err(_) => AttemptOutcome::Abandoned,
        };
        held.end(outcome).await?;
        checked?.ok_or(LoginError::InvalidCredentials)
    }

    /// The passkey ceremonies (registration, and beginning a sign-in).
    pub fn passkeys(&self) -> &Passkeys {
        &self.passkeys
    }

    /// Checks a passkey's answer to the ceremony `ceremony`: a sign-in
    /// with no one named, or (`second_factor`: whose, and the SHA-256 of
    /// their pending sign-in) a second factor. Unless the address, or the
    /// person of a second factor, is locked after too many failures: a
    /// passkey that does not verify counts there as a wrong password or
    /// code does.
    async fn check_passkey(
        &self,
        second_factor: Option<(&str, String)>,
        ceremony: &str,
        credential: &webauthn_rs::prelude::PublicKeyCredential,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<Verified, LoginError> {
        let mut subjects = vec![(format!("ip:{client_ip}"), self.limits.per_ip)];
        if let Some((user_id, _)) = &second_factor {
            subjects.insert(0, (factor_subject(user_id), self.limits.per_user));
        }
        let held = self.gate.admit(subjects, now).await?;
        let checked = match &second_factor {
            None => self.passkeys.finish_sign_in(ceremony, credential, now).await,
            Some((user_id, bound_to)) => {
                self.passkeys.finish_second_factor(user_id, bound_to, ceremony, credential, now).await
            }
        };
        let outcome = match &checked {
            Ok(_) => AttemptOutcome::Succeeded,
            Err(PasskeyError::Refused) => AttemptOutcome::Failed,
            Err(_) => AttemptOutcome::Abandoned,
        };
        held.end(outcome).await?;
        Ok(checked?)
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

    /// Whether a sign-in by this person is expected to show a second
    /// factor: they hold one, or the deployment requires one by default.
    /// An LDAP bind cannot ask for it, so such a person binds with an app
    /// password, never the account password (a phished password alone
    /// must not open their mail).
    async fn second_factor_expected(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(self.mfa_required_by_default || self.holds_second_factor(user_id).await?)
    }

    /// The id of the user when the password is theirs and the account is
    /// active.
    async fn verify_password(
        &self,
        username: &str,
        password: String,
        accepts: Accepts,
    ) -> Result<Option<String>, LoginError> {
        let credentials = self.store.user_credentials(username.trim()).await?;
        let mut password_ok = false;
        if let (Accepts::AppPasswordsToo, Some(credentials)) = (accepts, &credentials) {
            // Only the app passwords sharing the password's first characters
            // are hashed: one argon2 check per bind, however many there are.
            for stored in self.store.app_password_hashes(&credentials.id, &app_password_lookup(&password)).await? {
                password_ok |= self.hasher.verify(password.clone(), Some(stored)).await?;
            }
        }
        if !password_ok {
            let account_password_binds = match (accepts, &credentials) {
                (Accepts::AppPasswordsToo, Some(credentials)) => !self.second_factor_expected(&credentials.id).await?,
                _ => true,
            };
            // A refused account password still costs one hash: the time of
            // the answer tells nothing about the person's factors.
            let stored = credentials
                .as_ref()
                .filter(|_| account_password_binds)
                .map(|credentials| credentials.password_hash.clone());
            password_ok = self.hasher.verify(password, stored).await?;
        }
        Ok(credentials.filter(|credentials| password_ok && !credentials.disabled).map(|credentials| credentials.id))
    }

    /// The live session a cookie names, if any. Records that it was seen,
    /// at most once per `SEEN_EVERY` seconds (the portal's "last seen").
    pub async fn session(&self, token: &str, now: UnixTime) -> Result<Option<SessionUser>, StoreError> {
        let session = self.store.active_session(&sha256_hex(token), now).await?;
        if let Some(session) = &session
            && session.last_seen_at.is_none_or(|seen| now.saturating_sub(seen) >= SEEN_EVERY)
        {
            self.store.touch_session(&session.id_hash, now).await?;
        }
        Ok(session)
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
