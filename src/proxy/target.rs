//! The URLs forward auth deals in: the one a browser asked the proxy for
//! (which the web layer rebuilds from the headers each proxy sends), the
//! `rd` target of a sign-in, and the external URL an operator registers.
//! Pure functions, so every rule is unit-tested.

use url::Url;

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

    /// The host when it is a domain name (not an IP address): what a
    /// cookie domain can cover.
    pub fn domain(&self) -> Option<&str> {
        self.url.domain()
    }
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
