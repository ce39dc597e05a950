//! The URLs forward auth deals in: the one a browser asked the proxy for
//! (rebuilt from the headers each proxy sends), the `rd` target of a
//! sign-in, and the external URL an operator registers. Pure functions, so
//! every rule is unit-tested.

use url::Url;

use super::error::ProxyError;

/// What nginx's `auth_request` sends: the whole original URL…
pub const X_ORIGINAL_URL: &str = "x-original-url";
/// …or its path and query, with `Host` and `X-Forwarded-Proto`.
pub const X_ORIGINAL_URI: &str = "x-original-uri";
pub const HOST: &str = "host";
/// What Traefik's `forwardAuth` and Caddy's `forward_auth` send.
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
pub const X_FORWARDED_URI: &str = "x-forwarded-uri";

/// An absolute http(s) URL with a host and no credentials, and its origin
/// (`scheme://host[:port]`, default port omitted, host lowercased), which is
/// what proxy apps are matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: Url,
    origin: String,
}

impl TargetUrl {
    /// Parses as a browser would (WHATWG URL rules), so the origin checked
    /// here is the one the browser ends up at.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|error| format!("{raw:?} is not an absolute URL: {error}"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!("{raw:?} is not an http or https URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{raw:?} names no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{raw:?} contains credentials"));
        }
        let origin = url.origin().ascii_serialization();
        Ok(Self { url, origin })
    }

    /// The URL as serialized after parsing: what a redirect should carry.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// The host when it is a domain name (not an IP address): what a
    /// cookie domain can cover.
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }
}

/// The original URL of an nginx `auth_request` subrequest: `X-Original-URL`,
/// or `X-Original-URI` with `Host` and `X-Forwarded-Proto`. Without them
/// there is nothing to decide on, and guessing (say, the scheme) could match
/// the wrong app, so the answer is a configuration error naming the headers.
pub fn from_nginx<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<TargetUrl, ProxyError> {
    if let Some(url) = header(X_ORIGINAL_URL) {
        return TargetUrl::parse(url).map_err(|reason| misconfigured(format!("X-Original-URL: {reason}")));
    }
    let Some(uri) = header(X_ORIGINAL_URI) else {
        return Err(misconfigured(
            "the proxy sent neither X-Original-URL nor X-Original-URI; for nginx add \
             `proxy_set_header X-Original-URL https://app.example.com$request_uri;` to the auth_request location"
                .into(),
        ));
    };
    let proto = header(X_FORWARDED_PROTO).ok_or_else(|| {
        misconfigured("X-Original-URI was sent without X-Forwarded-Proto, so the scheme is unknown".into())
    })?;
    let host = header(HOST).ok_or_else(|| misconfigured("X-Original-URI was sent without a Host header".into()))?;
    assemble(proto, host, uri, "X-Original-URI")
}

/// The original URL of a Traefik or Caddy forward-auth request, from
/// `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Forwarded-Uri`.
pub fn from_forwarded<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<TargetUrl, ProxyError> {
    let missing = [X_FORWARDED_PROTO, X_FORWARDED_HOST, X_FORWARDED_URI]
        .into_iter()
        .filter(|name| header(name).is_none())
        .map(display_name)
        .collect::<Vec<_>>();
    if !missing.is_empty() {
        return Err(misconfigured(format!(
            "the proxy did not send {}; forward auth needs X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri",
            missing.join(", ")
        )));
    }
    let value = |name| header(name).unwrap_or_default();
    assemble(value(X_FORWARDED_PROTO), value(X_FORWARDED_HOST), value(X_FORWARDED_URI), "X-Forwarded-Uri")
}

/// `proto://host` + `uri`, each part checked so that no header can smuggle
/// in a different host (`evil@`, `/`, `\`, …).
fn assemble(proto: &str, host: &str, uri: &str, uri_header: &str) -> Result<TargetUrl, ProxyError> {
    let proto = proto.trim().to_ascii_lowercase();
    if proto != "http" && proto != "https" {
        return Err(misconfigured(format!("X-Forwarded-Proto must be http or https, not {proto:?}")));
    }
    let host = host.trim();
    let host_ok = |c: char| c.is_ascii_alphanumeric() || "-.:[]_".contains(c);
    if host.is_empty() || !host.chars().all(host_ok) {
        return Err(misconfigured(format!("the forwarded host {host:?} is not a host name")));
    }
    if !uri.starts_with('/') || uri.starts_with("//") {
        return Err(misconfigured(format!("{uri_header} must be a path starting with '/', not {uri:?}")));
    }
    let target = TargetUrl::parse(&format!("{proto}://{host}{uri}"))
        .map_err(|reason| misconfigured(format!("the forwarded URL is unusable: {reason}")))?;
    Ok(target)
}

fn display_name(name: &str) -> &'static str {
    match name {
        X_FORWARDED_PROTO => "X-Forwarded-Proto",
        X_FORWARDED_HOST => "X-Forwarded-Host",
        _ => "X-Forwarded-Uri",
    }
}

fn misconfigured(message: String) -> ProxyError {
    ProxyError::Misconfigured(message)
}

/// The `rd` parameter of `start`. Properly encoded (as Latch itself sends
/// it to Traefik and Caddy) it is decoded as usual. nginx cannot encode:
/// its `return 302 …/start?rd=https://app$request_uri` leaves the original
/// query's `&` unescaped, so a raw `rd=http://` or `rd=https://` runs to the
/// end of the query string, verbatim. An encoded value never starts with a
/// literal `://`, so the two cannot be confused.
pub fn rd_from_query(query: &str) -> Option<String> {
    let mut offset = 0;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("rd=") {
            let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                return Some(query[offset + 3..].to_owned());
            }
            return url::form_urlencoded::parse(pair.as_bytes()).next().map(|(_, value)| value.into_owned());
        }
        offset += pair.len() + 1;
    }
    None
}

/// An operator's `--external-url`: the origin people open the app at.
/// A path is refused because matching is by origin: each proxy app owns its
/// whole host (and port).
pub fn external_url(raw: &str) -> Result<TargetUrl, String> {
    let target = TargetUrl::parse(raw)?;
    if target.url.path() != "/" || target.url.query().is_some() || target.url.fragment().is_some() {
        return Err(format!(
            "{raw:?} must be just scheme, host and optional port (e.g. https://uptime.example.com): \
             forward auth guards a whole host"
        ));
    }
    Ok(target)
}

/// An operator's `--cookie-domain`: the app's host or a parent of it, so
/// the browser will accept the cookie there. A leading dot is dropped.
pub fn cookie_domain(external: &TargetUrl, raw: &str) -> Result<String, String> {
    let domain = raw.trim().trim_start_matches('.').to_ascii_lowercase();
    let host = external.url.host_str().unwrap_or_default().to_ascii_lowercase();
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
    };
    if domain.is_empty() || !domain.split('.').all(valid_label) {
        return Err(format!("invalid cookie domain {raw:?}"));
    }
    if matches!(external.url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
        return Err(format!("{} is an IP address: a cookie cannot be shared with other hosts", external.origin));
    }
    let covers = host == domain || host.ends_with(&format!(".{domain}"));
    if !covers {
        return Err(format!("cookie domain {domain:?} is not {host:?} or a parent domain of it"));
    }
    if !domain.contains('.') {
        return Err(format!("cookie domain {domain:?} is a top-level domain; browsers refuse cookies for it"));
    }
    Ok(domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| *value)
    }

    #[test]
    fn nginx_sends_the_whole_url() {
        let target = from_nginx(headers(&[("X-Original-URL", "https://Uptime.Example.com:443/a/b?x=1&y=2")])).unwrap();
        assert_eq!(target.as_str(), "https://uptime.example.com/a/b?x=1&y=2");
        assert_eq!(target.origin(), "https://uptime.example.com");
    }

    #[test]
    fn nginx_may_send_the_uri_with_host_and_proto() {
        let sent =
            [("X-Original-URI", "/dash?tab=1"), ("Host", "uptime.example.com:8443"), ("X-Forwarded-Proto", "https")];
        let target = from_nginx(headers(&sent)).unwrap();
        assert_eq!(target.as_str(), "https://uptime.example.com:8443/dash?tab=1");
        assert_eq!(target.origin(), "https://uptime.example.com:8443");
    }

    #[test]
    fn missing_nginx_headers_are_a_configuration_error_not_a_guess() {
        let message = from_nginx(headers(&[("Host", "uptime.example.com")])).unwrap_err().to_string();
        assert!(message.contains("X-Original-URL"), "{message}");
        let message =
            from_nginx(headers(&[("X-Original-URI", "/"), ("Host", "uptime.example.com")])).unwrap_err().to_string();
        assert!(message.contains("X-Forwarded-Proto"), "{message}");
        assert!(matches!(from_nginx(headers(&[("X-Original-URL", "/relative")])), Err(ProxyError::Misconfigured(_))));
    }

    #[test]
    fn traefik_and_caddy_send_forwarded_headers() {
        let sent = [
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "127.0.0.2:8080"),
            ("X-Forwarded-Uri", "/p%20q?a=1&b=%2F"),
        ];
        let target = from_forwarded(headers(&sent)).unwrap();
        assert_eq!(target.as_str(), "http://127.0.0.2:8080/p%20q?a=1&b=%2F");
        assert_eq!(target.origin(), "http://127.0.0.2:8080");
        let message = from_forwarded(headers(&sent[..2])).unwrap_err().to_string();
        assert!(message.contains("X-Forwarded-Host, X-Forwarded-Uri"), "{message}");
    }

    #[test]
    fn forwarded_parts_cannot_smuggle_another_host() {
        for (host, uri) in [
            ("uptime.example.com@evil.example", "/"),
            ("evil.example/", "/"),
            ("evil.example\\", "/"),
            ("uptime.example.com", "//evil.example/"),
            ("uptime.example.com", "@evil.example/"),
            ("", "/"),
        ] {
            let sent = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", host), ("X-Forwarded-Uri", uri)];
            assert!(from_forwarded(headers(&sent)).is_err(), "{host} {uri}");
        }
        let sent = [("X-Forwarded-Proto", "gopher"), ("X-Forwarded-Host", "a.example"), ("X-Forwarded-Uri", "/")];
        assert!(from_forwarded(headers(&sent)).is_err());
    }

    #[test]
    fn targets_are_judged_by_the_origin_a_browser_would_reach() {
        for (raw, origin) in [
            ("https://uptime.example.com/", "https://uptime.example.com"),
            ("HTTPS://UPTIME.example.com:443/x", "https://uptime.example.com"),
            ("http://uptime.example.com:80", "http://uptime.example.com"),
            ("https://evil.example\\@uptime.example.com/", "https://evil.example"),
            ("https://evil.example#@uptime.example.com/", "https://evil.example"),
            ("http://127.0.0.2:8080/a?b", "http://127.0.0.2:8080"),
        ] {
            assert_eq!(TargetUrl::parse(raw).unwrap().origin(), origin, "{raw}");
        }
        for hostile in [
            "//evil.example/",
            "/relative",
            "javascript:alert(1)",
            "https://user:pw@uptime.example.com/",
            "ftp://uptime.example.com/",
            "",
        ] {
            assert!(TargetUrl::parse(hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn rd_is_read_encoded_or_raw_from_nginx() {
        assert_eq!(
            rd_from_query("rd=https%3A%2F%2Fuptime.example.com%2Fa%3Fx%3D1%26y%3D2").as_deref(),
            Some("https://uptime.example.com/a?x=1&y=2")
        );
        assert_eq!(
            rd_from_query("rd=https://uptime.example.com/a%2Fb?x=1&y=2").as_deref(),
            Some("https://uptime.example.com/a%2Fb?x=1&y=2")
        );
        assert_eq!(rd_from_query("foo=1&rd=http://a.example/?rd=x&z").as_deref(), Some("http://a.example/?rd=x&z"));
        assert_eq!(rd_from_query("x=1&rd=%2Fpath&y=2").as_deref(), Some("/path"));
        assert_eq!(rd_from_query("x=1"), None);
        assert_eq!(rd_from_query(""), None);
    }

    #[test]
    fn external_urls_are_bare_origins() {
        assert_eq!(external_url("https://uptime.example.com").unwrap().origin(), "https://uptime.example.com");
        assert_eq!(external_url("http://127.0.0.1:8080/").unwrap().origin(), "http://127.0.0.1:8080");
        for bad in
            ["https://uptime.example.com/app", "https://uptime.example.com/?a", "uptime.example.com", "ftp://x.y"]
        {
            assert!(external_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_domains_must_cover_the_app_host() {
        let app = external_url("https://uptime.lab.example.com").unwrap();
        assert_eq!(cookie_domain(&app, "example.com").unwrap(), "example.com");
        assert_eq!(cookie_domain(&app, ".Lab.Example.com").unwrap(), "lab.example.com");
        assert_eq!(cookie_domain(&app, "uptime.lab.example.com").unwrap(), "uptime.lab.example.com");
        for bad in ["other.com", "ample.com", "com", "", "exa mple.com", "b.uptime.lab.example.com"] {
            assert!(cookie_domain(&app, bad).is_err(), "{bad}");
        }
        let ip = external_url("http://127.0.0.1:8080").unwrap();
        assert!(cookie_domain(&ip, "0.0.1").is_err());
    }
}
