//! Reading and writing Latch's cookies: `HttpOnly`, `SameSite=Lax`, and
//! `Secure` when the public URL is https.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

pub const SESSION: &str = "latch_session";
pub const CSRF: &str = "latch_csrf";

/// The value of cookie `name`, from any `Cookie` header.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value. `max_age` in seconds; 0 deletes the cookie.
pub fn build(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; latch_session=abc".parse().unwrap());
        headers.append(COOKIE, "b=2".parse().unwrap());
        assert_eq!(read(&headers, SESSION).as_deref(), Some("abc"));
        assert_eq!(read(&headers, "b").as_deref(), Some("2"));
        assert_eq!(read(&headers, CSRF), None);
    }

    #[test]
    fn cookies_are_http_only_and_lax() {
        assert_eq!(
            build(SESSION, "v", 60, true),
            "latch_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!build(SESSION, "v", 60, false).contains("Secure"));
    }
}
