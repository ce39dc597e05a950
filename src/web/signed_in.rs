//! Pages for a signed-in person (the account portal, the admin console):
//! the `SignedIn` extractor, which sends anyone without a live session to
//! the sign-in page and back, and `Shell`, what the wide page layout
//! (`templates/shell.html`) shows around every such page.

use askama::Template;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::error::WebError;
use super::login::{csrf_posted, csrf_token_for};
use super::oidc::current_session;
use super::pages::render;
use super::{AppState, redirect};
use crate::admin;
use crate::login::{safe_next, sign_in_url};
use crate::store::SessionUser;

/// The person a request comes from, with a live session. Extracting it
/// answers a request without one: a page request (`GET`/`HEAD`) goes to
/// the sign-in page and comes back here after; anything else (a form posted
/// after the session ended) gets a 401 page, since replaying a post after
/// sign-in would act without the person seeing the form again.
pub struct SignedIn {
    pub session: SessionUser,
    /// Whether they are a member of `admin::ADMINISTRATORS`.
    pub is_administrator: bool,
    /// The CSRF token for forms on the page (`login::csrf`).
    pub csrf_token: String,
    /// A CSRF cookie to set with the page, when the browser has none left.
    csrf_cookie: Option<String>,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session =
            current_session(state, &parts.headers, state.clock.now()).await.map_err(IntoResponse::into_response)?;
        let Some(session) = session else {
            return Err(signed_out(parts));
        };
        let is_administrator = admin::is_administrator(&state.store, &session.user_id)
            .await
            .map_err(|error| WebError::from(error).into_response())?;
        let (csrf_token, csrf_cookie) = csrf_token_for(state, &parts.headers);
        Ok(Self { session, is_administrator, csrf_token, csrf_cookie })
    }
}

/// Where a request without a session goes.
fn signed_out(parts: &Parts) -> Response {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |original| &original.0);
        let here = uri.path_and_query().map_or("/account", |path| path.as_str());
        return redirect(&sign_in_url(safe_next(Some(here)), None));
    }
    WebError::page(StatusCode::UNAUTHORIZED, "Signed out", "You are no longer signed in. Sign in and try again.")
        .into_response()
}

impl SignedIn {
    /// The layout's part of a page in `section` (one of `Section`).
    pub fn shell(&self, section: Section) -> Shell<'_> {
        Shell {
            username: &self.session.username,
            is_administrator: self.is_administrator,
            section: section.as_str(),
            csrf_token: &self.csrf_token,
        }
    }

    /// Renders a page of the portal or console, setting the CSRF cookie
    /// its forms need when the browser has none.
    pub fn page(&self, status: StatusCode, page: &impl Template) -> Response {
        let cookie = self.csrf_cookie.clone().map(|cookie| (SET_COOKIE, cookie));
        (AppendHeaders(cookie), render(status, page)).into_response()
    }

    /// Errors unless a posted form carries this browser's CSRF token (and,
    /// where the browser says, came from Latch's own pages): a 403 page.
    pub fn check_form(&self, state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> Result<(), WebError> {
        if csrf_posted(state, headers, submitted) {
            return Ok(());
        }
        Err(WebError::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form was not sent from this page, or it has expired. Go back, reload the page and try again.",
        ))
    }

    /// Errors with a 403 page unless they are an administrator.
    pub fn require_administrator(&self) -> Result<(), WebError> {
        if self.is_administrator {
            return Ok(());
        }
        Err(WebError::page(
            StatusCode::FORBIDDEN,
            "Administrators only",
            format!("This page is for members of the {} group.", admin::ADMINISTRATORS),
        ))
    }
}

/// The parts of the layout's navigation; the current one is marked for
/// screen readers and styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/account`: the apps a person may open, and their profile.
    Apps,
    /// Active sessions, signing out of them.
    Sessions,
    /// `/account/security`: password, second factors, passkeys.
    Security,
    /// `/admin`: the admin console.
    Admin,
}

impl Section {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apps => "apps",
            Self::Sessions => "sessions",
            Self::Security => "security",
            Self::Admin => "admin",
        }
    }
}

/// What `templates/shell.html` shows around a signed-in page. A page's
/// template extends `shell.html` and has a `shell: Shell` field.
pub struct Shell<'a> {
    pub username: &'a str,
    pub is_administrator: bool,
    /// `Section::as_str` of the page's section.
    pub section: &'static str,
    /// For the sign-out form in the header.
    pub csrf_token: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Template)]
    #[template(source = "{% extends \"shell.html\" %}{% block content %}<p>body</p>{% endblock %}", ext = "html")]
    struct Page<'a> {
        shell: Shell<'a>,
    }

    fn shell(section: Section, is_administrator: bool) -> Shell<'static> {
        Shell { username: "ada <&>", is_administrator, section: section.as_str(), csrf_token: "t" }
    }

    #[test]
    fn the_layout_marks_the_current_section_and_offers_admin_to_administrators_only() {
        let html = Page { shell: shell(Section::Security, false) }.render().unwrap();
        assert!(html.contains(r#"<a href="/account/security" aria-current="page">Security</a>"#), "{html}");
        assert_eq!(html.matches(r#"aria-current="page""#).count(), 1);
        assert!(!html.contains("/admin"));
        assert!(html.contains("ada &#60;&#38;&#62;"), "the username is escaped: {html}");
        assert!(html.contains("<main id=\"content\">\n<p>body</p>"));
        let html = Page { shell: shell(Section::Admin, true) }.render().unwrap();
        assert!(html.contains(r#"<a href="/admin" aria-current="page">Admin</a>"#), "{html}");
    }
}
