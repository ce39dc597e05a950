//! The sign-in page. Works without JavaScript; every answer is the same for
//! unknown users, wrong passwords and disabled accounts.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::cookies;
use super::error::WebError;
use super::oidc::current_session;
use super::ops::Requester;
use super::pages::{LoginPage, MessagePage, render};
use super::{AppState, redirect};
use crate::clock;
use crate::login::{LoginError, csrf_matches, new_csrf_token, safe_next};
use crate::metrics::LoginOutcome;
use crate::oidc::params::Params;

/// The CSRF cookie lives as long as a person may reasonably take to sign in.
const CSRF_MAX_AGE: i64 = 60 * 60;

/// The query or form; a repeated field or a control character is a 400 page.
fn params(raw: &[u8]) -> Result<Params, WebError> {
    Params::from_pairs(serde_urlencoded::from_bytes(raw).unwrap_or_default())
        .map_err(|error| WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-in request", error.to_string()))
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = params(query.unwrap_or_default().as_bytes())?;
    let next = safe_next(query.get("next"));
    Ok(show_form(&state, &headers, StatusCode::OK, next, query.get("login_hint").unwrap_or_default(), None))
}

/// Renders the form, reusing the browser's CSRF cookie or setting a new one.
fn show_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(headers, state.secure_cookies);
    let page = render(status, &LoginPage { csrf_token: &csrf_token, next, username, error });
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), page).into_response()
}

/// The browser's CSRF token, and the cookie to set when it has none yet.
pub(super) fn csrf_token_for(headers: &HeaderMap, secure: bool) -> (String, Option<String>) {
    match cookies::read(headers, cookies::CSRF).filter(|token| token.len() == 43) {
        Some(existing) => (existing, None),
        None => {
            let token = new_csrf_token();
            let cookie = cookies::build(cookies::CSRF, &token, CSRF_MAX_AGE, secure);
            (token, Some(cookie))
        }
    }
}

/// Whether a posted form carries the browser's CSRF token (double submit).
pub(super) fn csrf_posted(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    csrf_matches(cookies::read(headers, cookies::CSRF).as_deref(), submitted)
}

pub async fn submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = clock::now();
    let form = params(&body)?;
    let next = safe_next(form.get("next"));
    let username = form.get("username").unwrap_or_default();
    if !csrf_posted(&headers, form.get("csrf_token")) {
        let message = "This sign-in form has expired. Please sign in again.";
        return Ok(show_form(&state, &headers, StatusCode::BAD_REQUEST, next, username, Some(message)));
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    match state.authenticator.sign_in(username, password, &requester.ip, now).await {
        Ok(session) => {
            let cookie =
                cookies::build(cookies::SESSION, &session.token, session.expires_at - now, state.secure_cookies);
            state.metrics.login(LoginOutcome::Success);
            state.auditor.record("login_success", &requester.actor(Some(username), None), None);
            Ok((AppendHeaders([(SET_COOKIE, cookie)]), redirect(next)).into_response())
        }
        Err(refused @ (LoginError::InvalidCredentials | LoginError::Locked)) => {
            let locked = matches!(refused, LoginError::Locked);
            state.metrics.login(if locked { LoginOutcome::Locked } else { LoginOutcome::Failure });
            let detail = locked.then(|| "locked after repeated failures".to_owned());
            state.auditor.record("login_failure", &requester.actor(Some(username), None), detail);
            // The same answer either way: a lock reveals nothing either.
            let message = "Invalid username or password.";
            Ok(show_form(&state, &headers, StatusCode::UNAUTHORIZED, next, username, Some(message)))
        }
        Err(error) => Err(error.into()),
    }
}

/// Where a person lands after signing in with nowhere else to go.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let signed_in = current_session(&state, &headers, clock::now()).await?.is_some();
    if !signed_in {
        return Ok(redirect("/login"));
    }
    let page = MessagePage {
        title: "Signed in",
        message: "You are signed in to Latch. You can close this page.",
        is_error: false,
    };
    Ok(render(StatusCode::OK, &page))
}
