//! The one rule that decides whether a request the browser made is a
//! top-level page navigation. Only a navigation is sent to sign in: a
//! redirect answered to `fetch`/XHR, a POST or a HEAD would be followed
//! into Latch's login page, which the script cannot use (a cross-origin
//! redirect shows up as "Failed to fetch"); those get a 401 they can act on.
//!
//! Every forward-auth check and `start` use it. The web layer reads the
//! [`Request`] description from the headers the browser sent (the proxies
//! pass them on unchanged) and the original method, which each proxy
//! forwards in a header of its own because its check is always a GET.

/// What a request tells about itself, as the browser (or script) said it.
/// `None` where it said nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// The original method, when the proxy forwarded it.
    pub method: Option<&'a str>,
    /// Fetch Metadata's `Sec-Fetch-Mode` (`navigate`, `cors`, …).
    pub fetch_mode: Option<&'a str>,
    /// Fetch Metadata's `Sec-Fetch-Dest` (`document`, `iframe`, …).
    pub fetch_dest: Option<&'a str>,
    /// Whether an `X-Requested-With` came along (jQuery and most XHR libraries).
    pub requested_with: bool,
    /// Whether the request accepts an HTML page, when it said what it accepts.
    pub accepts_html: Option<bool>,
}

impl Request<'_> {
    /// Whether the request is a top-level page navigation, judged in order
    /// of reliability: the method (only GET navigates to a sign-in: a POST's
    /// body would be lost, a HEAD shows nothing), Fetch Metadata (`navigate`
    /// to a `document`, sent by every current browser), `X-Requested-With`,
    /// and last what it accepts, which a browser's navigation fills with
    /// `text/html` and a script or API client does not.
    pub fn is_navigation(&self) -> bool {
        if self.method.is_some_and(|method| !method.trim().eq_ignore_ascii_case("GET")) {
            return false;
        }
        let mode = self.fetch_mode.map(str::trim);
        if mode.is_some_and(|mode| !mode.eq_ignore_ascii_case("navigate")) {
            return false;
        }
        // An iframe or object cannot show Latch's login page (it forbids framing).
        if self.fetch_dest.is_some_and(|dest| !dest.trim().eq_ignore_ascii_case("document")) {
            return false;
        }
        if mode.is_some() {
            return true;
        }
        !self.requested_with && self.accepts_html.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_metadata_outweighs_accept_and_the_method_outweighs_all() {
        let page = Request { fetch_mode: Some("navigate"), fetch_dest: Some("document"), ..Request::default() };
        assert!(page.is_navigation());
        assert!(Request { accepts_html: Some(false), ..page }.is_navigation());
        assert!(!Request { method: Some("POST"), ..page }.is_navigation());
        assert!(Request { method: Some(" get "), ..page }.is_navigation());
        assert!(!Request { fetch_dest: Some("iframe"), ..page }.is_navigation());
        assert!(!Request { fetch_mode: Some("cors"), accepts_html: Some(true), ..Request::default() }.is_navigation());
        // Without Fetch Metadata: scripts say so, or accept no HTML.
        assert!(Request::default().is_navigation());
        assert!(!Request { requested_with: true, accepts_html: Some(true), ..Request::default() }.is_navigation());
        assert!(!Request { accepts_html: Some(false), ..Request::default() }.is_navigation());
    }
}
