//! Reading the `Cookie` header and writing `Set-Cookie`, for every cookie
//! Latch deals in: its own on its own host (the session, the CSRF cookie
//! and the sign-in under way, below), and forward auth's on an app's host
//! (`ProxyCookie`).
//!
//! Latch's own cookies are `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`, and
//! `Secure` when the public URL is https. When it is https at the root path
//! the names carry the `__Host-` prefix, which browsers accept only from
//! this very host, over https, with `Path=/` and no `Domain` (RFC 6265bis
//! §4.1.3.2): a sibling host (`evil.example.com` beside `sso.example.com`)
//! can then neither set nor shadow them.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use url::Url;

use crate::config::PublicUrl;
use crate::proxy::cookie::{ProxyCookie, RequestCookie};

/// The session cookie's name without a prefix.
pub const SESSION: &str = "latch_session";
/// The CSRF cookie's name without a prefix.
pub const CSRF: &str = "latch_csrf";
/// The name, without a prefix, of the cookie naming a sign-in under way
/// (`login::flow`).
pub const SIGN_IN: &str = "latch_signin";

/// How this deployment names and marks its cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookiePolicy {
    secure: bool,
    host_prefix: bool,
}

impl CookiePolicy {
    /// `Secure` for an https public URL; `__Host-` names when it is also at
    /// the root path (a Latch under a path shares its host with other
    /// things, and a `__Host-` cookie must have `Path=/`).
    pub fn for_public_url(public_url: &PublicUrl) -> Self {
        let secure = public_url.is_https();
        let at_root = Url::parse(public_url.as_str()).is_ok_and(|url| url.path() == "/");
        Self { secure, host_prefix: secure && at_root }
    }

    /// The name to use for `base` (`SESSION`, `CSRF` or `SIGN_IN`). Only that name is
    /// read: a cookie of the bare name, which any sibling host can set, is
    /// ignored where the prefix is in use.
    pub fn name(self, base: &'static str) -> &'static str {
        match (self.host_prefix, base) {
            (true, SESSION) => "__Host-latch_session",
            (true, CSRF) => "__Host-latch_csrf",
            (true, SIGN_IN) => "__Host-latch_signin",
            _ => base,
        }
    }

    /// The value of Latch's cookie `base` in the request.
    pub fn read(self, headers: &HeaderMap, base: &'static str) -> Option<String> {
        read(headers, self.name(base))
    }

    /// A `Set-Cookie` value for Latch's cookie `base`. `max_age` in
    /// seconds; 0 deletes the cookie.
    pub fn build(self, base: &'static str, value: &str, max_age: i64) -> String {
        format_set_cookie(self.name(base), value, "/", None, max_age, self.secure)
    }
}

/// Every cookie in the request's `Cookie` headers, in the order sent, each
/// value without the double quotes RFC 6265 §4.1.1 allows around it.
pub fn pairs(headers: &HeaderMap) -> Vec<RequestCookie<'_>> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| (name.trim(), value.trim().trim_matches('"')))
        .collect()
}

/// The value of cookie `name`, from any `Cookie` header.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    pairs(headers).into_iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_owned())
}

/// The `Set-Cookie` value for a cookie forward auth sets on an app's host.
pub fn set_cookie(cookie: &ProxyCookie) -> String {
    let domain = cookie.domain.as_deref();
    format_set_cookie(&cookie.name, &cookie.value, cookie.path, domain, cookie.max_age, cookie.secure)
}

/// A `Set-Cookie` value, always `HttpOnly` and `SameSite=Lax`. `max_age` in
/// seconds; 0 (or less) deletes the cookie. Without a `domain` it is host-only.
fn format_set_cookie(name: &str, value: &str, path: &str, domain: Option<&str>, max_age: i64, secure: bool) -> String {
    let mut header = format!("{name}={value}; Path={path}; Max-Age={}", max_age.max(0));
    if let Some(domain) = domain {
        header.push_str("; Domain=");
        header.push_str(domain);
    }
    header.push_str("; HttpOnly; SameSite=Lax");
    if secure {
        header.push_str("; Secure");
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public_url: &str) -> CookiePolicy {
        CookiePolicy::for_public_url(&PublicUrl::parse(public_url).unwrap())
    }

    #[test]
    fn finds_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; latch_session=abc".parse().unwrap());
        headers.append(COOKIE, "b=2".parse().unwrap());
        assert_eq!(read(&headers, SESSION).as_deref(), Some("abc"));
        assert_eq!(read(&headers, "b").as_deref(), Some("2"));
        assert_eq!(read(&headers, CSRF), None);
        headers.append(COOKIE, " c = \"3\" ;d=4=5; e".parse().unwrap());
        assert_eq!(pairs(&headers), [("a", "1"), ("latch_session", "abc"), ("b", "2"), ("c", "3"), ("d", "4=5")]);
    }

    #[test]
    fn set_cookies_carry_path_domain_and_security() {
        let cookie = ProxyCookie {
            name: "n".into(),
            value: "v".into(),
            domain: Some("example.com".into()),
            path: "/",
            max_age: 60,
            secure: true,
        };
        assert_eq!(set_cookie(&cookie), "n=v; Path=/; Max-Age=60; Domain=example.com; HttpOnly; SameSite=Lax; Secure");
        let state =
            ProxyCookie { domain: None, secure: false, path: "/outpost.goauthentik.io/", max_age: -5, ..cookie };
        assert_eq!(set_cookie(&state), "n=v; Path=/outpost.goauthentik.io/; Max-Age=0; HttpOnly; SameSite=Lax");
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        assert_eq!(
            policy("https://sso.example.com/latch").build(SESSION, "v", 60),
            "latch_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!policy("http://sso.example.com").build(SESSION, "v", 60).contains("Secure"));
    }

    #[test]
    fn https_at_the_root_uses_host_prefixed_names_only() {
        let root = policy("https://sso.example.com/");
        assert_eq!(
            root.build(CSRF, "v", 60),
            "__Host-latch_csrf=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "latch_session=planted; __Host-latch_session=own".parse().unwrap());
        assert_eq!(root.read(&headers, SESSION).as_deref(), Some("own"));
        headers.remove(COOKIE);
        headers.append(COOKIE, "latch_session=planted".parse().unwrap());
        assert_eq!(root.read(&headers, SESSION), None);
        assert_eq!(root.name(SIGN_IN), "__Host-latch_signin");
        for other in ["http://sso.example.com", "https://sso.example.com/latch"] {
            assert_eq!(policy(other).name(SESSION), SESSION, "{other}");
            assert_eq!(policy(other).name(SIGN_IN), SIGN_IN, "{other}");
        }
    }
}
