//! Signing people in: password check, sessions, CSRF, and where to go after.

pub mod csrf;

use crate::clock::UnixTime;
use crate::config::ThrottleLimits;
use crate::crypto::password::{PasswordError, PasswordHasher};
use crate::crypto::{random_token, sha256_hex};
use crate::store::{FailureLimit, SessionUser, Store, StoreError};

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
/// share one budget.
pub fn user_subject(username: &str) -> String {
    format!("user:{}", username.trim().to_lowercase())
}

/// A fresh session: the cookie value (shown to the browser only) and when
/// it ends.
pub struct NewSession {
    pub token: String,
    pub expires_at: UnixTime,
}

impl Authenticator {
    pub fn new(store: Store, hasher: PasswordHasher, session_ttl: std::time::Duration, limits: Limits) -> Self {
        Self { store, hasher, session_ttl: i64::try_from(session_ttl.as_secs()).unwrap_or(i64::MAX), limits }
    }

    /// Checks the password, unless the username or the client address is
    /// locked after too many failures (then even the right password fails).
    /// Counters live in the store, so guesses spread over instances add up.
    pub async fn sign_in(
        &self,
        username: &str,
        password: String,
        client_ip: &str,
        now: UnixTime,
    ) -> Result<NewSession, LoginError> {
        let user_subject = user_subject(username);
        let ip_subject = format!("ip:{client_ip}");
        // Both budgets are charged before the password is checked (see
        // `Store::begin_login_attempt`); the address only when a password
        // will really be checked, so guesses at a locked name do not lock
        // out everyone behind the same address.
        if !self.store.begin_login_attempt(&user_subject, self.limits.per_user, now).await? {
            return Err(LoginError::Locked);
        }
        if !self.store.begin_login_attempt(&ip_subject, self.limits.per_ip, now).await? {
            self.store.forgive_login_attempt(&user_subject).await?;
            return Err(LoginError::Locked);
        }
        let credentials = self.store.user_credentials(username.trim()).await?;
        let stored = credentials.as_ref().map(|credentials| credentials.password_hash.clone());
        let password_ok = self.hasher.verify(password, stored).await?;
        let Some(credentials) = credentials.filter(|credentials| password_ok && !credentials.disabled) else {
            self.store.record_login_failure(&user_subject, self.limits.per_user, now).await?;
            self.store.record_login_failure(&ip_subject, self.limits.per_ip, now).await?;
            return Err(LoginError::InvalidCredentials);
        };
        self.store.clear_login_failures(&user_subject).await?;
        self.store.forgive_login_attempt(&ip_subject).await?;
        let token = random_token();
        let expires_at = now.saturating_add(self.session_ttl);
        self.store.create_session(&sha256_hex(&token), &credentials.id, now, expires_at).await?;
        Ok(NewSession { token, expires_at })
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
}
