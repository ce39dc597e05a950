//! The cookies forward auth sets on an app's host: the sign-in cookie
//! (one per scope) and the short-lived state cookie of a sign-in in
//! progress. Formatting only; what they mean lives in the store.

use crate::crypto::sha256_hex;

/// The state cookie binds a sign-in to the browser that started it, so a
/// code cannot be replayed into someone else's browser (login CSRF).
pub const STATE_COOKIE: &str = "latch_proxy_state";
const SESSION_PREFIX: &str = "latch_proxy_";
/// More candidate cookies than this are ignored: a browser holds one per
/// scope that covers the host, which is one or two in any sane setup.
const MAX_CANDIDATES: usize = 4;

/// The sign-in cookie's name for a scope (the app's origin, or its cookie
/// domain). Distinct scopes get distinct names, so a host-only cookie and a
/// parent-domain cookie never shadow one another in the browser.
pub fn session_cookie_name(scope: &str) -> String {
    format!("{SESSION_PREFIX}{}", &sha256_hex(scope)[..16])
}

fn is_session_cookie_name(name: &str) -> bool {
    name.strip_prefix(SESSION_PREFIX)
        .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// A random token as Latch issues them: 43 base64url characters.
fn looks_like_token(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Every sign-in cookie value in the request's `Cookie` headers. The check
/// tries them all at once, in one query, against the app's scope.
pub fn session_tokens<'a>(cookie_headers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    pairs(cookie_headers)
        .filter(|(name, value)| is_session_cookie_name(name) && looks_like_token(value))
        .map(|(_, value)| value.to_owned())
        .take(MAX_CANDIDATES)
        .collect()
}

/// Every sign-in cookie in the request, by name, to clear on sign-out.
pub fn session_cookie_names<'a>(cookie_headers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = pairs(cookie_headers)
        .filter(|(name, _)| is_session_cookie_name(name))
        .map(|(name, _)| name.to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The state cookie's value, if it looks like one.
pub fn state_token<'a>(cookie_headers: impl IntoIterator<Item = &'a str>) -> Option<String> {
    pairs(cookie_headers)
        .find(|(name, value)| *name == STATE_COOKIE && looks_like_token(value))
        .map(|(_, value)| value.to_owned())
}

fn pairs<'a>(cookie_headers: impl IntoIterator<Item = &'a str>) -> impl Iterator<Item = (&'a str, &'a str)> {
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value.trim().trim_matches('"')))
}

/// A `Set-Cookie` to send: always `HttpOnly` and `SameSite=Lax`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyCookie {
    pub name: String,
    pub value: String,
    /// `None`: host-only, the cookie stays on the host that set it.
    pub domain: Option<String>,
    pub path: &'static str,
    /// Seconds; 0 deletes the cookie.
    pub max_age: i64,
    pub secure: bool,
}

impl ProxyCookie {
    /// The same cookie, expired: what clears it in the browser.
    pub fn removal(&self) -> Self {
        Self { value: String::new(), max_age: 0, ..self.clone() }
    }

    pub fn header_value(&self) -> String {
        let mut cookie = format!("{}={}; Path={}; Max-Age={}", self.name, self.value, self.path, self.max_age.max(0));
        if let Some(domain) = &self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        cookie.push_str("; HttpOnly; SameSite=Lax");
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn each_scope_has_its_own_cookie_name() {
        let host = session_cookie_name("https://uptime.example.com");
        let domain = session_cookie_name("example.com");
        assert_ne!(host, domain);
        assert!(is_session_cookie_name(&host) && is_session_cookie_name(&domain));
        assert!(!is_session_cookie_name(STATE_COOKIE));
        assert_eq!(host, session_cookie_name("https://uptime.example.com"));
    }

    #[test]
    fn every_sign_in_cookie_is_a_candidate() {
        let first = session_cookie_name("a");
        let second = session_cookie_name("b");
        let header = format!("other=1; {first}={TOKEN}; {STATE_COOKIE}={TOKEN}");
        let other = format!("{second}=\"{TOKEN}\"; {first}=short");
        assert_eq!(session_tokens([header.as_str(), other.as_str()]), vec![TOKEN.to_owned(), TOKEN.to_owned()]);
        let mut both = vec![first.clone(), second];
        both.sort();
        assert_eq!(session_cookie_names([header.as_str(), other.as_str()]), both);
        assert_eq!(state_token([header.as_str()]).as_deref(), Some(TOKEN));
        assert!(session_tokens(["latch_proxy_zz=1"]).is_empty());
        let many = (0..10).map(|n| format!("{}={TOKEN}", session_cookie_name(&n.to_string()))).collect::<Vec<_>>();
        assert_eq!(session_tokens(many.iter().map(String::as_str)).len(), MAX_CANDIDATES);
    }

    #[test]
    fn cookies_are_http_only_lax_and_scoped() {
        let cookie = ProxyCookie {
            name: "n".into(),
            value: "v".into(),
            domain: Some("example.com".into()),
            path: "/",
            max_age: 60,
            secure: true,
        };
        assert_eq!(
            cookie.header_value(),
            "n=v; Path=/; Max-Age=60; Domain=example.com; HttpOnly; SameSite=Lax; Secure"
        );
        let host_only = ProxyCookie { domain: None, secure: false, ..cookie.clone() };
        assert_eq!(host_only.header_value(), "n=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        assert_eq!(
            cookie.removal().header_value(),
            "n=; Path=/; Max-Age=0; Domain=example.com; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
