//! Exact redirect URI matching (RFC 9700 §4.1.3), and, when it fails, a
//! precise account of the difference, because "redirect_uri mismatch" alone
//! is the most common support question an identity provider gets.

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
         the {part} differs ({detail}). Redirect URIs must match exactly."
    )
}

fn differing_part(sent: &url::Url, registered: &url::Url) -> &'static str {
    if sent.scheme() != registered.scheme() {
        "scheme"
    } else if sent.host_str() != registered.host_str() {
        "host"
    } else if sent.port_or_known_default() != registered.port_or_known_default() {
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
}
