//! The one rule that decides whether a request the browser made is a
//! top-level page navigation. Only a navigation is sent to sign in: a
//! redirect answered to `fetch`/XHR, a POST or a HEAD would be followed
//! into Latch's login page, which the script cannot use (a cross-origin
//! redirect shows up as "Failed to fetch"); those get a 401 they can act on.
//!
//! Every forward-auth check and `start` use it, with the headers the
//! browser sent (the proxies pass them on unchanged) and the original
//! method, which each proxy forwards in a header of its own because its
//! check is always a GET.

/// The original method, as ingress-nginx and Latch's nginx config send it.
pub const X_ORIGINAL_METHOD: &str = "x-original-method";
/// The original method, as Traefik's `forwardAuth` and Caddy's
/// `forward_auth` send it.
pub const X_FORWARDED_METHOD: &str = "x-forwarded-method";

/// Whether the request is a top-level page navigation, judged in order of
/// reliability: the method (only GET navigates to a sign-in: a POST's body
/// would be lost, a HEAD shows nothing), Fetch Metadata (`Sec-Fetch-Mode:
/// navigate`, `Sec-Fetch-Dest: document`, sent by every current browser),
/// `X-Requested-With` (jQuery and most XHR libraries), and last `Accept`,
/// which a browser's navigation fills with `text/html` and a script or API
/// client does not. `method` is `None` when the proxy did not forward it.
pub fn is_navigation<'a>(method: Option<&str>, header: impl Fn(&str) -> Option<&'a str>) -> bool {
    if method.is_some_and(|method| !method.trim().eq_ignore_ascii_case("GET")) {
        return false;
    }
    let mode = header("sec-fetch-mode").map(str::trim);
    if mode.is_some_and(|mode| !mode.eq_ignore_ascii_case("navigate")) {
        return false;
    }
    // An iframe or object cannot show Latch's login page (it forbids framing).
    if header("sec-fetch-dest").is_some_and(|dest| !dest.trim().eq_ignore_ascii_case("document")) {
        return false;
    }
    if mode.is_some() {
        return true;
    }
    if header("x-requested-with").is_some() {
        return false;
    }
    header("accept").is_none_or(accepts_html)
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

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| pairs.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| *value)
    }

    fn judge(method: Option<&str>, pairs: &[(&str, &str)]) -> bool {
        is_navigation(method, lookup(pairs))
    }

    const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    #[test]
    fn a_browser_opening_a_page_navigates() {
        let page = [("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document"), ("Accept", BROWSER_ACCEPT)];
        assert!(judge(Some("GET"), &page));
        assert!(judge(None, &page));
        // Browsers without Fetch Metadata are judged by Accept.
        assert!(judge(Some("GET"), &[("Accept", BROWSER_ACCEPT)]));
        assert!(judge(None, &[]));
    }

    #[test]
    fn scripts_api_clients_posts_and_heads_do_not() {
        let page = [("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document"), ("Accept", BROWSER_ACCEPT)];
        for method in ["POST", "HEAD", "PUT", "DELETE", "OPTIONS"] {
            assert!(!judge(Some(method), &page), "{method}");
        }
        for headers in [
            &[("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Dest", "empty"), ("Accept", "*/*")][..],
            &[("Sec-Fetch-Mode", "no-cors"), ("Sec-Fetch-Dest", "image")][..],
            &[("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "iframe"), ("Accept", BROWSER_ACCEPT)][..],
            &[("Sec-Fetch-Mode", "websocket")][..],
            &[("X-Requested-With", "XMLHttpRequest"), ("Accept", BROWSER_ACCEPT)][..],
            &[("Accept", "application/json")][..],
            &[("Accept", "*/*")][..],
            &[("Accept", "text/html;q=0, application/json")][..],
        ] {
            assert!(!judge(Some("GET"), headers), "{headers:?}");
        }
    }
}
