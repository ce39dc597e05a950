//! Redirect URI matching: exact, string for string (RFC 9700 §4.1.3), except
//! the port of an http loopback URI (RFC 8252 §7.3); and, when matching
//! fails, a precise account of the difference, because "redirect_uri
//! mismatch" alone is the most common support question an identity provider
//! gets.

/// Hosts whose http redirect URIs may carry any port. RFC 8252 §7.3 names
/// the loopback IP literals; `localhost` is treated the same because many
/// command-line tools listen on it.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// The rule `matches` applies, as the mismatch page states it.
const EXACT_RULE: &str = "Redirect URIs must match exactly.";
const LOOPBACK_RULE: &str = "Redirect URIs must match exactly; only http://127.0.0.1, http://[::1] and \
                             http://localhost ones may differ in their port (RFC 8252 7.3, for native apps).";

/// Whether the redirect URI `sent` in a request is the `registered` one: the
/// same string, or both `http://` URIs on the same loopback host that differ
/// only in their port (which the operating system gives a native app when it
/// starts listening). `https` and other hosts get no such allowance.
pub fn matches(registered: &str, sent: &str) -> bool {
    registered == sent
        || matches!((without_loopback_port(registered), without_loopback_port(sent)), (Some(r), Some(s)) if r == s)
}

/// `http://<loopback host>[:<port>]<rest>` as its host and rest, the port
/// left out; `None` for any other URI (a userinfo part, another scheme or
/// host, or a port that is not 1 to 5 digits below 65536).
fn without_loopback_port(uri: &str) -> Option<(&'static str, &str)> {
    let after_scheme = uri.strip_prefix("http://")?;
    let authority_end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(authority_end);
    let host = LOOPBACK_HOSTS.into_iter().find(|host| authority.starts_with(host))?;
    let port = &authority[host.len()..];
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|byte| byte.is_ascii_digit()) && digits.parse::<u16>().is_ok());
    port_ok.then_some((host, rest))
}

fn is_loopback(url: &url::Url) -> bool {
    url.host_str().is_some_and(|host| LOOPBACK_HOSTS.contains(&host))
}

/// Why a redirect URI was refused, phrased for the person configuring the app.
pub fn explain_mismatch(sent: &str, registered: &[String]) -> String {
    let Some(closest) = registered.iter().max_by_key(|candidate| common_prefix_len(sent, candidate)) else {
        return format!("The app has no registered redirect URI, so {sent:?} cannot be used.");
    };
    let shared = common_prefix_len(sent, closest);
    let (sent_url, closest_url) = (url::Url::parse(sent), url::Url::parse(closest));
    let part = match (&sent_url, &closest_url) {
        (Ok(sent_url), Ok(closest_url)) => differing_part(sent_url, closest_url),
        (Err(_), _) => return format!("The redirect URI {sent:?} is not an absolute URL."),
        _ => "URI",
    };
    let rule = match (&sent_url, &closest_url) {
        (Ok(sent_url), Ok(closest_url)) if part == "port" || is_loopback(sent_url) || is_loopback(closest_url) => {
            LOOPBACK_RULE
        }
        _ => EXACT_RULE,
    };
    let detail = match part {
        "path" => format!(
            "path {:?} vs registered {:?}",
            sent_url.as_ref().map(url::Url::path).unwrap_or_default(),
            closest_url.as_ref().map(url::Url::path).unwrap_or_default()
        ),
        _ => format!("they differ from character {} on", shared + 1),
    };
    format!(
        "The redirect URI {sent:?} is not registered for this app. The closest registered one is {closest:?}; \
         the {part} differs ({detail}). {rule}"
    )
}

fn differing_part(sent: &url::Url, registered: &url::Url) -> &'static str {
    if sent.scheme() != registered.scheme() {
        "scheme"
    } else if sent.host_str() != registered.host_str() {
        "host"
    } else if sent.port_or_known_default() != registered.port_or_known_default()
        && !(sent.scheme() == "http" && is_loopback(sent))
    {
        "port"
    } else if sent.path() != registered.path() {
        "path"
    } else if sent.query() != registered.query() {
        "query"
    } else {
        "URI"
    }
}

fn common_prefix_len(left: &str, right: &str) -> usize {
    left.chars().zip(right.chars()).take_while(|(a, b)| a == b).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_path_that_differs() {
        let registered = vec![
            "https://app.example.com/api/auth/callback/authentik".to_owned(),
            "https://other.example.com/cb".to_owned(),
        ];
        let message = explain_mismatch("https://app.example.com/api/auth/callback/custom", &registered);
        assert!(
            message.contains(r#"path "/api/auth/callback/custom" vs registered "/api/auth/callback/authentik""#),
            "{message}"
        );
    }

    #[test]
    fn names_scheme_host_port_and_query() {
        let registered = vec!["https://app.example.com:8443/cb?x=1".to_owned()];
        assert!(explain_mismatch("http://app.example.com:8443/cb?x=1", &registered).contains("the scheme differs"));
        assert!(explain_mismatch("https://app.example.org:8443/cb?x=1", &registered).contains("the host differs"));
        assert!(explain_mismatch("https://app.example.com:9443/cb?x=1", &registered).contains("the port differs"));
        assert!(explain_mismatch("https://app.example.com:8443/cb?x=2", &registered).contains("the query differs"));
        assert!(explain_mismatch("not a url", &registered).contains("not an absolute URL"));
        assert!(explain_mismatch("https://a/", &[]).contains("no registered redirect URI"));
    }

    #[test]
    fn http_loopback_uris_match_on_any_port_and_nothing_else_does() {
        for (registered, sent) in [
            ("http://127.0.0.1/callback", "http://127.0.0.1:53219/callback"),
            ("http://127.0.0.1:8080/callback", "http://127.0.0.1:53219/callback"),
            ("http://[::1]/cb?x=1", "http://[::1]:1/cb?x=1"),
            ("http://localhost/cb", "http://localhost:65535/cb"),
            ("http://localhost", "http://localhost:3000"),
            ("https://app.example.com/cb", "https://app.example.com/cb"),
        ] {
            assert!(matches(registered, sent), "{registered} should admit {sent}");
        }
        for (registered, sent) in [
            ("https://127.0.0.1/callback", "https://127.0.0.1:53219/callback"),
            ("http://app.example.com/cb", "http://app.example.com:8080/cb"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:53219/callback/"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:53219/Callback"),
            ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:5000/cb?x=2"),
            ("http://127.0.0.1/cb", "http://localhost:5000/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.10:5000/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:+80/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1:/cb"),
            ("http://127.0.0.1/cb", "http://127.0.0.1@evil.example:80/cb"),
            ("http://127.0.0.1/cb", "HTTP://127.0.0.1:80/cb"),
        ] {
            assert!(!matches(registered, sent), "{registered} must not admit {sent}");
        }
    }

    #[test]
    fn loopback_mismatches_state_the_port_rule() {
        let registered = vec!["http://127.0.0.1/callback".to_owned()];
        let message = explain_mismatch("http://127.0.0.1:53219/cb", &registered);
        assert!(message.contains(r#"path "/cb" vs registered "/callback""#), "{message}");
        assert!(message.contains("may differ in their port"), "{message}");
        let registered = vec!["https://127.0.0.1/callback".to_owned()];
        let message = explain_mismatch("https://127.0.0.1:53219/callback", &registered);
        assert!(message.contains("the port differs") && message.contains("only http://127.0.0.1"), "{message}");
    }
}
