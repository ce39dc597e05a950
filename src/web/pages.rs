//! Server-rendered pages. Templates escape everything they interpolate.

use askama::Template;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::error::InFormat;
use crate::text::printable;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf_token: &'a str,
    pub next: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// The password step of a sign-in under way (`login::flow::Step::Password`).
#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage<'a> {
    pub csrf_token: &'a str,
    /// The step's name, posted back as `step`.
    pub step: &'a str,
    /// Who is signing in, as typed.
    pub username: &'a str,
    /// Kept so that a sign-in that expired restarts toward the same place.
    pub next: &'a str,
    /// The first form afresh, to sign in as someone else.
    pub restart: &'a str,
    pub error: Option<&'a str>,
}

/// The second-factor step of a sign-in under way
/// (`login::flow::Step::SecondFactor`); the passkey form joins the code form
/// here.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub csrf_token: &'a str,
    pub step: &'a str,
    pub username: &'a str,
    pub next: &'a str,
    pub restart: &'a str,
    pub error: Option<&'a str>,
}

/// After a sign-in with a recovery code: how many remain, then on to `next`.
#[derive(Template)]
#[template(path = "recovery_used.html")]
pub struct RecoveryUsedPage<'a> {
    pub left: i64,
    pub next: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
}

/// A page; an error page is already in its format (`InFormat`).
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    let mut response = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    };
    response.extensions_mut().insert(InFormat);
    response
}

/// Middleware: every page and every redirect gets `Cache-Control: no-store`
/// unless its handler chose otherwise. Pages show who is signed in, echo
/// what was typed or carry a form's CSRF token; redirects carry codes and
/// `next` URLs. None of that may stay in a shared or back-button cache.
pub async fn no_store_pages(mut response: Response) -> Response {
    let is_html = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if is_html || response.status().is_redirection() {
        response.headers_mut().entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
    response
}

/// An error page. The message may quote what the request sent: control
/// characters and direction overrides are shown escaped (HTML escaping
/// leaves them).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &MessagePage { title, message: &printable(message), is_error: true })
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub app_name: &'a str,
    pub action: &'a str,
    pub params: &'a [(String, String)],
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    /// Each scope with what it hands the app, in words.
    pub scopes: &'a [(&'a str, &'static str)],
    pub resume: &'a [(String, String)],
    pub csrf_token: &'a str,
}

/// The auto-submitting form of `response_mode=form_post`. It works without
/// JavaScript through its visible button; the one inline script is allowed
/// by its hash, nothing else is.
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub action: &'a str,
    pub params: &'a [(&'static str, String)],
    pub script: &'static str,
}

pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// `Content-Security-Policy` for the form_post page.
pub fn form_post_csp() -> String {
    use aws_lc_rs::digest::{SHA256, digest};
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD.encode(digest(&SHA256, FORM_POST_SCRIPT.as_bytes()));
    format!("default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'")
}
