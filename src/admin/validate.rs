//! What the operator may type. Each check names the value and the rule.

use super::{AdminError, AdminResult};

fn refuse<T>(field: &'static str, message: String) -> AdminResult<T> {
    Err(AdminError::invalid(field, message))
}

pub fn username(value: &str) -> AdminResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._@-".contains(c);
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return refuse(
            "username",
            format!("invalid username {value:?}: use 1 to 64 letters, digits, '.', '_', '@' or '-'"),
        );
    }
    Ok(())
}

pub fn email(value: &str) -> AdminResult<()> {
    let valid = match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        }
        None => false,
    };
    if !valid || value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("email", format!("invalid email address {value:?}"));
    }
    Ok(())
}

pub fn display_name(value: &str) -> AdminResult<()> {
    if value.trim().is_empty() || value.len() > 200 || value.chars().any(char::is_control) {
        return refuse("name", format!("invalid name {value:?}: 1 to 200 printable characters"));
    }
    Ok(())
}

/// Group names travel in `|`-separated proxy headers, so `|` is refused.
pub fn group_name(value: &str) -> AdminResult<()> {
    if value.is_empty() || value.len() > 100 || value.chars().any(|c| c.is_control() || c == '|' || c == ',') {
        return refuse(
            "group",
            format!("invalid group name {value:?}: 1 to 100 characters, no '|', ',' or control characters"),
        );
    }
    Ok(())
}

/// Slugs appear in URLs and issuers.
pub fn slug(value: &str) -> AdminResult<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return refuse("slug", format!("invalid slug {value:?}: use 1 to 64 lowercase letters, digits, '-' or '_'"));
    }
    Ok(())
}

/// A client id an operator chooses (`latch apply` recreating an app under
/// the id its configuration already has): 1 to 128 characters an app's
/// configuration and an HTTP Basic header carry unchanged (RFC 3986
/// unreserved: letters, digits, `-`, `.`, `_`, `~`).
pub fn client_id(value: &str) -> AdminResult<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    if value.is_empty() || value.len() > 128 || !value.chars().all(allowed) {
        return refuse(
            "client_id",
            format!("invalid client_id {value:?}: use 1 to 128 letters, digits, '-', '.', '_' or '~'"),
        );
    }
    Ok(())
}

/// A search account's name, the `cn` of its bind DN.
pub fn account_name(value: &str) -> AdminResult<()> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if value.is_empty() || value.len() > 64 || !value.chars().all(allowed) {
        return refuse(
            "name",
            format!("invalid account name {value:?}: use 1 to 64 lowercase letters, digits, '-' or '_'"),
        );
    }
    Ok(())
}

/// The fewest characters of a client secret an operator supplies: what
/// `random_token` gives is 43; a short one could be guessed.
const MIN_CLIENT_SECRET_CHARS: usize = 32;

/// A client secret an operator supplies: at least 32 printable ASCII
/// characters, no spaces (apps' configuration files and HTTP Basic carry
/// it), at most 512.
pub fn client_secret(value: &str) -> AdminResult<()> {
    if value.len() < MIN_CLIENT_SECRET_CHARS || value.len() > 512 {
        return refuse(
            "client_secret",
            format!("the client secret must be {MIN_CLIENT_SECRET_CHARS} to 512 characters long"),
        );
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return refuse("client_secret", "the client secret must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// Schemes a browser runs or reads itself instead of handing the response
/// to an app (RFC 6749 §10.6, RFC 9700 §4.1): a form_post page would post
/// the code into them.
const BROWSER_SCHEMES: [&str; 4] = ["javascript", "data", "vbscript", "file"];

/// RFC 6749 §3.1.2: absolute, no fragment, not a scheme the browser handles
/// itself, and no userinfo part (`http://127.0.0.1@evil.example/` names
/// evil.example). Stored exactly as typed, since matching is string for string.
pub fn redirect_uri(value: &str) -> AdminResult<()> {
    let parsed = url::Url::parse(value)
        .map_err(|error| AdminError::invalid("redirect_uri", format!("malformed redirect URI {value:?}: {error}")))?;
    if parsed.fragment().is_some() {
        return refuse("redirect_uri", format!("malformed redirect URI {value:?}: it must not have a #fragment"));
    }
    if parsed.cannot_be_a_base() || parsed.host_str().is_none() && matches!(parsed.scheme(), "http" | "https") {
        return refuse("redirect_uri", format!("malformed redirect URI {value:?}: it must be an absolute URL"));
    }
    if BROWSER_SCHEMES.contains(&parsed.scheme()) {
        return refuse(
            "redirect_uri",
            format!("unsafe redirect URI {value:?}: the browser would handle {}: itself", parsed.scheme()),
        );
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse(
            "redirect_uri",
            format!("malformed redirect URI {value:?}: it must not contain a user name or password"),
        );
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("redirect_uri", format!("malformed redirect URI {value:?}: it contains whitespace"));
    }
    Ok(())
}

/// A back-channel logout URI: an absolute http or https URL (plain http
/// is normal for an app on a private network or loopback), which Latch
/// POSTs to exactly as given, query included; no fragment, no user name or
/// password. Unlike OIDC Back-Channel Logout §2.2 it need not share its
/// origin with a redirect URI: the operator registers it, and an app's
/// backend is often reached at another address than the browser uses.
pub fn backchannel_logout_uri(value: &str) -> AdminResult<()> {
    let malformed =
        |why: &str| refuse("backchannel_logout_uri", format!("malformed back-channel logout URI {value:?}: {why}"));
    let Ok(parsed) = url::Url::parse(value) else {
        return malformed("it must be an absolute http or https URL");
    };
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return malformed("it must be an absolute http or https URL");
    }
    if parsed.fragment().is_some() {
        return malformed("it must not have a #fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return malformed("it must not contain a user name or password");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return malformed("it contains whitespace");
    }
    Ok(())
}

/// The longest lifetime a setting takes, in seconds: 100 years, past any
/// sensible one. Requests add lifetimes to the time now; a bound here keeps
/// that sum (and every `exp` built from it) far inside an `i64`.
const MAX_LIFETIME: u64 = 100 * 31_557_600;

/// A lifetime such as `60s`, `5m` or `30d`, in whole seconds, from one
/// second to `MAX_LIFETIME`.
pub fn lifetime(flag: &'static str, value: &str) -> AdminResult<i64> {
    match humantime::parse_duration(value) {
        Ok(duration) if duration.as_secs() > MAX_LIFETIME => {
            refuse(flag, format!("invalid {flag} {value:?}: must be at most 100 years"))
        }
        Ok(duration) if duration.as_secs() >= 1 => i64::try_from(duration.as_secs())
            .map_err(|_| AdminError::invalid(flag, format!("invalid {flag} {value:?}: too long"))),
        Ok(_) => refuse(flag, format!("invalid {flag} {value:?}: must be at least one second")),
        Err(error) => refuse(flag, format!("invalid {flag} {value:?}: {error} (e.g. 60s, 5m, 30d)")),
    }
}

/// The longest refresh token reuse grace window: a repeat is a retry or a
/// second tab, seconds apart; a longer window only helps a thief.
const MAX_REUSE_GRACE: i64 = 10 * 60;

/// A grace window such as `60s`, or `0` to disable, at most ten minutes.
pub fn reuse_grace(flag: &'static str, value: &str) -> AdminResult<i64> {
    if value.trim() == "0" {
        return Ok(0);
    }
    let seconds = match humantime::parse_duration(value) {
        Ok(duration) => i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        Err(error) => return refuse(flag, format!("invalid {flag} {value:?}: {error} (e.g. 60s, or 0 to disable)")),
    };
    if seconds > MAX_REUSE_GRACE {
        return refuse(flag, format!("invalid {flag} {value:?}: at most {MAX_REUSE_GRACE}s"));
    }
    Ok(seconds)
}

/// A launch URL: an absolute http or https URL (the portal links to it;
/// `javascript:` and the like would run on Latch's page).
pub fn launch_url(value: &str) -> AdminResult<()> {
    let parsed = url::Url::parse(value).ok().filter(|url| matches!(url.scheme(), "http" | "https"));
    if parsed.is_none_or(|url| url.host_str().is_none()) || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse(
            "launch_url",
            format!("invalid --launch-url {value:?}: it must be an absolute http or https URL"),
        );
    }
    Ok(())
}

pub fn password(value: &str) -> AdminResult<()> {
    if value.chars().count() < 8 {
        return refuse("password", "the password must be at least 8 characters long".into());
    }
    if value.len() > 1024 {
        return refuse("password", "the password must be at most 1024 bytes long".into());
    }
    // The sign-in form refuses them (`oidc::params`): such a password could
    // never be used.
    if value.chars().any(|c| c.is_ascii_control()) {
        return refuse(
            "password",
            "the password must not contain control characters (such as NUL, tab or a line break)".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert!(redirect_uri("https://grafana.example.com/login/generic_oauth").is_ok());
        assert!(redirect_uri("http://127.0.0.1:3000/cb?x=1").is_ok());
        assert!(redirect_uri("com.example.app:/callback").is_ok());
        for bad in [
            "/relative",
            "https://a.example/cb#frag",
            "not a uri",
            "mailto:x@y.z",
            "https://a.example/ c",
            "javascript://a.example/%0aalert(1)",
            "data:text/html,x",
            "http://127.0.0.1@evil.example/cb",
        ] {
            assert!(redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn launch_urls_are_web_addresses() {
        assert!(launch_url("https://grafana.example.com/").is_ok());
        for bad in ["javascript:alert(1)", "/relative", "https://", "https://a.example/ x", "data:text/html,x"] {
            assert!(launch_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(username("ada.lovelace").is_ok());
        assert!(username("ada lovelace").is_err());
        assert!(email("ada@example.com").is_ok());
        assert!(email("ada@localhost").is_err());
        assert!(slug("open-webui").is_ok());
        assert!(slug("Open WebUI").is_err());
        assert!(group_name("a|b").is_err());
        assert!(password("short").is_err());
        assert!(password("long enough\0").is_err());
        assert!(password("long enough\t").is_err());
        assert!(password("long enough ✓").is_ok());
        assert!(client_id("0123abcd").is_ok());
        assert!(client_id("grafana.example-1_~").is_ok());
        for bad in ["", "a b", "a:b", "é", &"x".repeat(129)] {
            assert!(client_id(bad).is_err(), "{bad}");
        }
        assert!(client_secret(&"s".repeat(32)).is_ok());
        assert!(client_secret(&"s".repeat(31)).is_err());
        assert!(client_secret(&format!("{} x", "s".repeat(32))).is_err());
    }

    #[test]
    fn reuse_grace_allows_zero_and_stays_short() {
        assert_eq!(reuse_grace("--g", "0").unwrap(), 0);
        assert_eq!(reuse_grace("--g", "0s").unwrap(), 0);
        assert_eq!(reuse_grace("--g", "90s").unwrap(), 90);
        assert_eq!(reuse_grace("--g", "10m").unwrap(), 600);
        assert!(reuse_grace("--g", "11m").is_err());
        assert!(reuse_grace("--g", "soon").is_err());
    }
}
