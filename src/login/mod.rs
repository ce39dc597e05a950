//! Signing people in: password check, sessions, CSRF, and where to go after.

use crate::clock::UnixTime;
use crate::crypto::password::{PasswordError, PasswordHasher};
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::store::{SessionUser, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong password, unknown user and disabled user look the same, so the
    /// form reveals nothing about which accounts exist.
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

pub struct Authenticator {
    store: Store,
    hasher: PasswordHasher,
    session_ttl: i64,
}

/// A fresh session: the cookie value (shown to the browser only) and when
/// it ends.
pub struct NewSession {
    pub token: String,
    pub expires_at: UnixTime,
}

impl Authenticator {
    pub fn new(store: Store, hasher: PasswordHasher, session_ttl: std::time::Duration) -> Self {
        Self { store, hasher, session_ttl: i64::try_from(session_ttl.as_secs()).unwrap_or(i64::MAX) }
    }

    pub async fn sign_in(&self, username: &str, password: String, now: UnixTime) -> Result<NewSession, LoginError> {
        let credentials = self.store.user_credentials(username.trim()).await?;
        let stored = credentials.as_ref().map(|credentials| credentials.password_hash.clone());
        let password_ok = self.hasher.verify(password, stored).await?;
        let Some(credentials) = credentials.filter(|credentials| password_ok && !credentials.disabled) else {
            return Err(LoginError::InvalidCredentials);
        };
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

/// Double-submit CSRF protection: the login form carries the same random
/// value as a `SameSite` cookie; a cross-site form can set neither.
pub fn new_csrf_token() -> String {
    random_token()
}

pub fn csrf_matches(cookie: Option<&str>, form: Option<&str>) -> bool {
    match (cookie, form) {
        (Some(cookie), Some(form)) if !cookie.is_empty() => constant_time_eq(cookie.as_bytes(), form.as_bytes()),
        _ => false,
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

    #[test]
    fn csrf_needs_both_halves_equal() {
        assert!(csrf_matches(Some("abc"), Some("abc")));
        assert!(!csrf_matches(Some("abc"), Some("abd")));
        assert!(!csrf_matches(None, Some("abc")));
        assert!(!csrf_matches(Some(""), Some("")));
        assert!(!csrf_matches(Some("abc"), None));
    }
}
