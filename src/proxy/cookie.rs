//! The cookies forward auth sets on an app's host: the sign-in cookie
//! (one per scope) and one short-lived state cookie per sign-in in
//! progress. Naming and picking, over the name/value pairs the web layer
//! read from the request (`web::cookies::pairs`); the web layer also
//! writes each [`ProxyCookie`] out as a `Set-Cookie`. What a cookie means
//! lives in the store.
//!
//! **Which cookie counts.** Another host under the same parent domain can
//! set a cookie for that parent, under any name, and the browser then sends
//! it to the app's host too; Latch cannot see where a cookie came from. So
//! a cookie counts only under the name Latch gives its scope, and on https
//! that name carries the `__Host-` prefix, which browsers accept only from
//! the host itself, without a `Domain`, `Secure` and on `/` (RFC 6265bis
//! §4.1.3.2): nothing another host sets can pass for it.

use super::target::TargetUrl;
use crate::clock::UnixTime;
use crate::crypto::sha256_hex;

const SESSION_PREFIX: &str = "latch_proxy_";
/// The state cookies' names: this, the second it was issued, a short id.
const STATE_PREFIX: &str = "latch_proxy_state_";
const HOST_PREFIX: &str = "__Host-";
/// Where an http app's state cookies live (an https app's `__Host-`
/// cookies must be on `/`): only the sign-in steps need them.
const STATE_PATH: &str = "/outpost.goauthentik.io/";
/// More candidate cookies than this are ignored: a browser holds one per
/// scope that covers the host, which is one or two in any sane setup.
const MAX_CANDIDATES: usize = 4;
/// Sign-in cookies one sign-out reads: more than a browser keeps for one
/// domain (180 in Chromium, 50 at least by RFC 6265 §6.1), so planted
/// cookies cannot crowd the app's own out, yet one request stays cheap.
const MAX_SIGN_OUT_TOKENS: usize = 256;
/// Sign-ins one browser may have in progress on one host at once (tabs,
/// a restored session). Starting one more forgets the oldest, so the
/// cookies a host holds, and the `Cookie` header, stay small.
pub const MAX_FLOWS: usize = 16;

/// The sign-in cookie's name for a scope (the app's origin, or its cookie
/// domain). Distinct scopes get distinct names, so a host-only cookie and a
/// parent-domain cookie never shadow one another in the browser; an https
/// origin's name is `__Host-` prefixed.
pub fn session_cookie_name(scope: &str) -> String {
    let prefix = if scope.starts_with("https://") { HOST_PREFIX } else { "" };
    format!("{prefix}{SESSION_PREFIX}{}", &sha256_hex(scope)[..16])
}

fn is_session_cookie_name(name: &str) -> bool {
    name.trim_start_matches(HOST_PREFIX)
        .strip_prefix(SESSION_PREFIX)
        .is_some_and(|rest| rest.len() == 16 && rest.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// A random token as Latch issues them: 43 base64url characters.
fn looks_like_token(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The scopes an app at `target` can have: its origin, or a cookie domain
/// that is its host or a parent of it.
fn covering_scopes(target: &TargetUrl) -> Vec<String> {
    let mut scopes = vec![target.origin().to_owned()];
    let mut domain = target.domain().unwrap_or_default();
    while domain.contains('.') {
        scopes.push(domain.to_owned());
        domain = domain.split_once('.').map(|(_, parent)| parent).unwrap_or_default();
    }
    scopes
}

/// Removals of what other hosts may have planted under `scope`'s name for
/// a domain covering `app` other than the scope's own: such a cookie beside
/// Latch's makes the check admit no one, and the sign-in that follows
/// clears it. Nothing for a `__Host-` name, which no other host can set.
pub fn planted_lookalikes(app: &TargetUrl, scope: &str) -> Vec<ProxyCookie> {
    let name = session_cookie_name(scope);
    if name.starts_with(HOST_PREFIX) {
        return Vec::new();
    }
    covering_scopes(app)
        .into_iter()
        .filter(|domain| domain != scope && !domain.contains("://"))
        .map(|domain| ProxyCookie {
            name: name.clone(),
            value: String::new(),
            domain: Some(domain),
            path: "/",
            max_age: 0,
            secure: false,
        })
        .collect()
}

/// A sign-in cookie the request carried for `target`, and the one scope
/// its name stands for: the check admits it only if Latch issued it for
/// exactly that scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub scope: String,
    pub token: String,
}

/// A cookie the request carried: name and (unquoted) value.
pub type RequestCookie<'a> = (&'a str, &'a str);

/// The sign-in cookies among the request's that could admit to `target`, each under the name of a scope that covers it. None at all
/// when there are more than [`MAX_CANDIDATES`]: the ones left unread could
/// be the app's own, behind cookies another host planted under longer
/// paths (which the browser sends first), and the check would then see only
/// the planted sign-in.
pub fn session_candidates(cookies: &[RequestCookie<'_>], target: &TargetUrl) -> Vec<Candidate> {
    let names: Vec<(String, String)> =
        covering_scopes(target).into_iter().map(|scope| (session_cookie_name(&scope), scope)).collect();
    let mut found: Vec<Candidate> = cookies
        .iter()
        .filter(|(_, value)| looks_like_token(value))
        .filter_map(|(name, value)| {
            let (_, scope) = names.iter().find(|(expected, _)| expected == name)?;
            Some(Candidate { scope: scope.clone(), token: (*value).to_owned() })
        })
        .take(MAX_CANDIDATES + 1)
        .collect();
    if found.len() > MAX_CANDIDATES {
        found.clear();
    }
    found
}

/// Every sign-in cookie value in the request, whatever its scope: what
/// signing out ends. Up to [`MAX_SIGN_OUT_TOKENS`], not [`MAX_CANDIDATES`]:
/// cookies another host planted under longer paths come first in the
/// header, and must not leave the app's own sign-in running.
pub fn session_tokens(cookies: &[RequestCookie<'_>]) -> Vec<String> {
    cookies
        .iter()
        .filter(|(name, value)| is_session_cookie_name(name) && looks_like_token(value))
        .map(|(_, value)| (*value).to_owned())
        .take(MAX_SIGN_OUT_TOKENS)
        .collect()
}

/// Every sign-in cookie in the request, by name, to clear on sign-out.
pub fn session_cookie_names(cookies: &[RequestCookie<'_>]) -> Vec<String> {
    let mut names: Vec<String> =
        cookies.iter().filter(|(name, _)| is_session_cookie_name(name)).map(|(name, _)| (*name).to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

/// The state cookie of one sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCookie {
    pub name: String,
    pub value: String,
    issued_at: UnixTime,
}

impl StateCookie {
    /// A new state cookie for `state`, `__Host-` prefixed on https.
    pub fn new(state: &str, secure: bool, now: UnixTime) -> Self {
        let prefix = if secure { HOST_PREFIX } else { "" };
        let name = format!("{prefix}{STATE_PREFIX}{now}_{}", &sha256_hex(state)[..8]);
        Self { name, value: state.to_owned(), issued_at: now }
    }

    fn is_host_only(&self) -> bool {
        self.name.starts_with(HOST_PREFIX)
    }

    /// What the code is bound to: the state, and whether its cookie could
    /// only have been set by the app's host itself. `sso` binds an https
    /// app's code to a `__Host-` cookie, so one planted by another host
    /// cannot redeem it.
    pub fn binding(&self) -> String {
        state_binding(&self.value, self.is_host_only())
    }

    /// The cookie that stores it (`max_age` seconds; 0 clears it).
    pub fn cookie(&self, max_age: i64) -> ProxyCookie {
        let secure = self.is_host_only();
        ProxyCookie {
            name: self.name.clone(),
            value: if max_age > 0 { self.value.clone() } else { String::new() },
            domain: None,
            path: if secure { "/" } else { STATE_PATH },
            max_age,
            secure,
        }
    }
}

/// The hash a code is bound to: see [`StateCookie::binding`].
pub fn state_binding(state: &str, host_only: bool) -> String {
    let prefix = if host_only { HOST_PREFIX } else { "" };
    sha256_hex(&format!("{prefix}{state}"))
}

/// The state cookies in the request, newest first, at most [`MAX_FLOWS`]
/// (older ones are forgotten anyway when the next sign-in starts).
pub fn state_cookies(cookies: &[RequestCookie<'_>]) -> Vec<StateCookie> {
    let mut found: Vec<StateCookie> = cookies
        .iter()
        .filter(|(_, value)| looks_like_token(value))
        .filter_map(|(name, value)| {
            let (issued_at, id) = name.trim_start_matches(HOST_PREFIX).strip_prefix(STATE_PREFIX)?.split_once('_')?;
            let issued_at = issued_at.parse().ok()?;
            let well_formed = id.len() == 8 && id.bytes().all(|byte| byte.is_ascii_hexdigit());
            well_formed.then(|| StateCookie { name: (*name).to_owned(), value: (*value).to_owned(), issued_at })
        })
        .collect();
    found.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then_with(|| a.name.cmp(&b.name)));
    found.dedup_by(|a, b| a.name == b.name);
    found.truncate(MAX_FLOWS);
    found
}

/// A cookie to set on the app's host (the web layer sends it as a
/// `Set-Cookie`, always `HttpOnly` and `SameSite=Lax`).
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

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn each_scope_has_its_own_cookie_name() {
        let host = session_cookie_name("https://uptime.example.com");
        let domain = session_cookie_name("example.com");
        assert_ne!(host, domain);
        assert!(host.starts_with("__Host-latch_proxy_") && domain.starts_with("latch_proxy_"));
        assert!(session_cookie_name("http://uptime.example.com").starts_with("latch_proxy_"));
        assert!(is_session_cookie_name(&host) && is_session_cookie_name(&domain));
        assert!(!is_session_cookie_name(&StateCookie::new(TOKEN, true, 1).name));
        assert_eq!(host, session_cookie_name("https://uptime.example.com"));
    }

    #[test]
    fn only_the_name_of_a_covering_scope_is_a_candidate() {
        let target = TargetUrl::parse("https://kuma.lab.example.com/x").unwrap();
        let origin = session_cookie_name("https://kuma.lab.example.com");
        let parent = session_cookie_name("example.com");
        let unprefixed = origin.trim_start_matches(HOST_PREFIX).to_owned();
        let elsewhere = session_cookie_name("other.example");
        let sent = [
            (elsewhere.as_str(), TOKEN),
            (unprefixed.as_str(), TOKEN),
            (origin.as_str(), TOKEN),
            (parent.as_str(), TOKEN),
            (origin.as_str(), "short"),
        ];
        let found = session_candidates(&sent, &target);
        let scopes: Vec<&str> = found.iter().map(|candidate| candidate.scope.as_str()).collect();
        assert_eq!(scopes, ["https://kuma.lab.example.com", "example.com"]);
        assert!(found.iter().all(|candidate| candidate.token == TOKEN));
        assert_eq!(
            covering_scopes(&target),
            ["https://kuma.lab.example.com", "kuma.lab.example.com", "lab.example.com", "example.com"]
        );
        assert_eq!(covering_scopes(&TargetUrl::parse("http://127.0.0.2:8080/").unwrap()), ["http://127.0.0.2:8080"]);
        let lookalikes = planted_lookalikes(&TargetUrl::parse("http://kuma.lab.example.com").unwrap(), "example.com");
        let domains: Vec<_> = lookalikes.iter().map(|cookie| cookie.domain.as_deref().unwrap()).collect();
        assert_eq!(domains, ["kuma.lab.example.com", "lab.example.com"]);
        assert!(
            lookalikes.iter().all(|cookie| cookie.name == session_cookie_name("example.com") && cookie.max_age == 0)
        );
        assert!(planted_lookalikes(&target, "https://kuma.lab.example.com").is_empty());
        let many = vec![(origin.as_str(), TOKEN); 10];
        assert!(session_candidates(&many, &target).is_empty());
        let some = vec![(origin.as_str(), TOKEN); MAX_CANDIDATES];
        assert_eq!(session_candidates(&some, &target).len(), MAX_CANDIDATES);
    }

    #[test]
    fn sign_out_finds_every_sign_in_cookie() {
        let first = session_cookie_name("https://a.example");
        let second = session_cookie_name("b.example");
        let sent = [
            ("other", "1"),
            (first.as_str(), TOKEN),
            ("latch_proxy_state_1_0000abcd", TOKEN),
            (second.as_str(), TOKEN),
            (first.as_str(), "short"),
        ];
        assert_eq!(session_tokens(&sent), vec![TOKEN.to_owned(), TOKEN.to_owned()]);
        let mut both = vec![first.clone(), second.clone()];
        both.sort();
        assert_eq!(session_cookie_names(&sent), both);
        assert!(session_tokens(&[("latch_proxy_zz", "1")]).is_empty());
    }

    #[test]
    fn every_sign_in_in_progress_has_its_own_state_cookie() {
        let other = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
        let older = StateCookie::new(TOKEN, false, 100);
        let newer = StateCookie::new(other, true, 200);
        assert_ne!(older.name, newer.name);
        assert!(newer.name.starts_with("__Host-latch_proxy_state_200_"));
        let sent =
            [(older.name.as_str(), TOKEN), (newer.name.as_str(), other), ("latch_proxy_state_1_nothex00", TOKEN)];
        assert_eq!(state_cookies(&sent), vec![newer.clone(), older.clone()]);
        // The code binds to the state and to whether only the host could set it.
        assert_eq!(older.binding(), state_binding(TOKEN, false));
        assert_ne!(state_binding(TOKEN, true), state_binding(TOKEN, false));
        let stored = newer.cookie(60);
        assert_eq!((stored.value.as_str(), stored.path, stored.max_age, stored.secure), (other, "/", 60, true));
        assert_eq!(stored.domain, None);
        let cleared = older.cookie(0);
        assert_eq!((cleared.value.as_str(), cleared.path, cleared.max_age), ("", STATE_PATH, 0));
        assert!(!cleared.secure);
        let names: Vec<String> = (0..40).map(|n| StateCookie::new(&format!("{n}"), false, n).name).collect();
        let many: Vec<RequestCookie<'_>> = names.iter().map(|name| (name.as_str(), TOKEN)).collect();
        let kept = state_cookies(&many);
        assert_eq!(kept.len(), MAX_FLOWS);
        assert_eq!(kept[0].issued_at, 39);
    }
}
