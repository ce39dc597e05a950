//! What a reverse proxy tells Latch about the request it asks about, read
//! from its headers: the original URL (each proxy sends it its own way),
//! the original method and what the browser said about the request (for
//! `proxy::navigation`), and the `rd` of `start`, which nginx cannot encode.

use axum::http::HeaderMap;

use crate::proxy::ProxyError;
use crate::proxy::navigation::Request;
use crate::proxy::target::TargetUrl;

/// What nginx's `auth_request` sends: the whole original URL…
const X_ORIGINAL_URL: &str = "x-original-url";
/// …or its path and query, with `Host` and `X-Forwarded-Proto`.
const X_ORIGINAL_URI: &str = "x-original-uri";
const HOST: &str = "host";
/// What Traefik's `forwardAuth` and Caddy's `forward_auth` send.
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_URI: &str = "x-forwarded-uri";
/// The original method, as ingress-nginx and Latch's nginx config send it.
pub const X_ORIGINAL_METHOD: &str = "x-original-method";
/// The original method, as Traefik's `forwardAuth` and Caddy's
/// `forward_auth` send it.
pub const X_FORWARDED_METHOD: &str = "x-forwarded-method";

/// A header's value, when it is one and readable as text.
fn header<'a>(headers: &'a HeaderMap) -> impl Fn(&str) -> Option<&'a str> + 'a {
    move |name| headers.get(name).and_then(|value| value.to_str().ok())
}

/// The original URL of an nginx `auth_request` subrequest: `X-Original-URL`,
/// or `X-Original-URI` with `Host` and `X-Forwarded-Proto`. Without them
/// there is nothing to decide on, and guessing (say, the scheme) could match
/// the wrong app, so the answer is a configuration error naming the headers.
pub fn target_from_nginx(headers: &HeaderMap) -> Result<TargetUrl, ProxyError> {
    let header = header(headers);
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
pub fn target_from_forwarded(headers: &HeaderMap) -> Result<TargetUrl, ProxyError> {
    let header = header(headers);
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

/// What the browser said about the request: the request's own headers,
/// which the proxies pass on unchanged, and `method` (the original method,
/// which each proxy forwards in a header of its own because its check is
/// always a GET; `None` when it did not).
pub fn navigation<'a>(headers: &'a HeaderMap, method: Option<&'a str>) -> Request<'a> {
    let header = header(headers);
    Request {
        method,
        fetch_mode: header("sec-fetch-mode"),
        fetch_dest: header("sec-fetch-dest"),
        requested_with: headers.contains_key("x-requested-with"),
        accepts_html: header("accept").map(accepts_html),
    }
}

/// The original method a proxy forwarded in `method_header`.
pub fn forwarded_method<'a>(headers: &'a HeaderMap, method_header: &str) -> Option<&'a str> {
    header(headers)(method_header)
}

/// Whether an `Accept` value (RFC 9110 §12.5.1) admits an HTML page.
fn accepts_html(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let refused = parts.any(|param| {
            param.split_once('=').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        !refused && (media.eq_ignore_ascii_case("text/html") || media.eq_ignore_ascii_case("application/xhtml+xml"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn nginx_sends_the_whole_url() {
        let target =
            target_from_nginx(&headers(&[("X-Original-URL", "https://Uptime.Example.com:443/a/b?x=1&y=2")])).unwrap();
        assert_eq!(target.as_str(), "https://uptime.example.com/a/b?x=1&y=2");
        assert_eq!(target.origin(), "https://uptime.example.com");
    }

    #[test]
    fn nginx_may_send_the_uri_with_host_and_proto() {
        let sent =
            [("X-Original-URI", "/dash?tab=1"), ("Host", "uptime.example.com:8443"), ("X-Forwarded-Proto", "https")];
        let target = target_from_nginx(&headers(&sent)).unwrap();
        assert_eq!(target.as_str(), "https://uptime.example.com:8443/dash?tab=1");
        assert_eq!(target.origin(), "https://uptime.example.com:8443");
    }

    #[test]
    fn missing_nginx_headers_are_a_configuration_error_not_a_guess() {
        let message = target_from_nginx(&headers(&[("Host", "uptime.example.com")])).unwrap_err().to_string();
        assert!(message.contains("X-Original-URL"), "{message}");
        let message = target_from_nginx(&headers(&[("X-Original-URI", "/"), ("Host", "uptime.example.com")]))
            .unwrap_err()
            .to_string();
        assert!(message.contains("X-Forwarded-Proto"), "{message}");
        assert!(matches!(
            target_from_nginx(&headers(&[("X-Original-URL", "/relative")])),
            Err(ProxyError::Misconfigured(_))
        ));
    }

    #[test]
    fn traefik_and_caddy_send_forwarded_headers() {
        let sent = [
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", "127.0.0.2:8080"),
            ("X-Forwarded-Uri", "/p%20q?a=1&b=%2F"),
        ];
        let target = target_from_forwarded(&headers(&sent)).unwrap();
        assert_eq!(target.as_str(), "http://127.0.0.2:8080/p%20q?a=1&b=%2F");
        assert_eq!(target.origin(), "http://127.0.0.2:8080");
        let message = target_from_forwarded(&headers(&sent[..2])).unwrap_err().to_string();
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
            assert!(target_from_forwarded(&headers(&sent)).is_err(), "{host} {uri}");
        }
        let sent = [("X-Forwarded-Proto", "gopher"), ("X-Forwarded-Host", "a.example"), ("X-Forwarded-Uri", "/")];
        assert!(target_from_forwarded(&headers(&sent)).is_err());
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

    const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    fn judge(method: Option<&str>, pairs: &[(&str, &str)]) -> bool {
        navigation(&headers(pairs), method).is_navigation()
    }

    #[test]
    fn a_browser_opening_a_page_navigates() {
        let page = [("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document"), ("Accept", BROWSER_ACCEPT)];
        assert!(judge(Some("GET"), &page));
        assert!(judge(None, &page));
        // Browsers without Fetch Metadata are judged by Accept.
        assert!(judge(Some("GET"), &[("Accept", BROWSER_ACCEPT)]));
        assert!(judge(None, &[]));
        let forwarded = headers(&[("X-Forwarded-Method", "POST")]);
        assert_eq!(forwarded_method(&forwarded, X_FORWARDED_METHOD), Some("POST"));
        assert_eq!(forwarded_method(&forwarded, X_ORIGINAL_METHOD), None);
    }

    #[test]
    fn scripts_api_clients_posts_and_heads_do_not() {
        let page = [("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document"), ("Accept", BROWSER_ACCEPT)];
        for method in ["POST", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            assert!(!judge(Some(method), &page), "{method}");
        }
        for sent in [
            &[("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Dest", "empty"), ("Accept", "*/*")][..],
            &[("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Dest", "image")][..],
            &[("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "iframe"), ("Accept", BROWSER_ACCEPT)][..],
            &[("Sec-Fetch-Mode", "websocket")][..],
            &[("X-Requested-With", "XMLHttpRequest"), ("Accept", BROWSER_ACCEPT)][..],
            &[("Accept", "application/json")][..],
            &[("Accept", "*/*")][..],
            &[("Accept", "text/html;q=0, application/json")][..],
        ] {
            assert!(!judge(Some("GET"), sent), "{sent:?}");
        }
    }
}
