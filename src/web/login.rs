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
use crate::login::csrf::CsrfKey;
use crate::login::{LoginError, safe_next};
use crate::metrics::LoginOutcome;
use crate::oidc::params::{Params, decode_pairs};
use crate::oidc::reauth::demands_sign_in;

/// The CSRF cookie lives as long as a person may reasonably take to sign in.
const CSRF_MAX_AGE: i64 = 60 * 60;

/// The query or form; a repeated field or a control character is a 400 page.
fn params(raw: &[u8]) -> Result<Params, WebError> {
    decode_pairs(raw)
        .and_then(Params::from_pairs)
        .map_err(|error| WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-in request", error.to_string()))
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = params(query.unwrap_or_default().as_bytes())?;
    let next = safe_next(query.get("next"));
    // Already signed in, and `next` demands no fresh sign-in: go on. (A
    // forward-auth step that nginx rewrote onto the app's host comes here.)
    // Without a `next`, the form stays, to sign in as someone else.
    let continuing = query.get("next").is_some();
    if continuing && !demands_sign_in(next) && current_session(&state, &headers, state.clock.now()).await?.is_some() {
        return Ok(redirect(next));
    }
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
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let page = render(status, &LoginPage { csrf_token: &csrf_token, next, username, error });
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), page).into_response()
}

/// The CSRF token for a form shown to this browser (see `login::csrf`),
/// and the CSRF cookie to set when the browser has none yet.
pub(super) fn csrf_token_for(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    let session = state.cookies.read(headers, cookies::SESSION);
    match state.cookies.read(headers, cookies::CSRF).filter(|id| id.len() == 43) {
        Some(id) => (state.csrf.token(&id, session.as_deref()), None),
        None => {
            let id = CsrfKey::new_browser_id();
            let cookie = state.cookies.build(cookies::CSRF, &id, CSRF_MAX_AGE);
            (state.csrf.token(&id, session.as_deref()), Some(cookie))
        }
    }
}

/// Whether a posted form carries the CSRF token made for this browser's
/// cookies and, where the browser says where it was posted from (Fetch
/// Metadata), was posted from Latch's own pages. A form on a sibling host is
/// `same-site`, not `same-origin`, even with a cookie and token it got from
/// Latch for itself and planted (where `__Host-` is not in use).
pub(super) fn csrf_posted(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    let session = state.cookies.read(headers, cookies::SESSION);
    form_posted_for(state, headers, session.as_deref(), submitted)
}

/// Like `csrf_posted`, but the sign-in form also counts when it was shown
/// before this browser signed in (in another tab, say): posting it only
/// signs in again, which the session binding (guarding forms that act on a
/// session) does not need to stop.
fn sign_in_posted(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    csrf_posted(state, headers, submitted) || form_posted_for(state, headers, None, submitted)
}

fn form_posted_for(state: &AppState, headers: &HeaderMap, session: Option<&str>, submitted: Option<&str>) -> bool {
    let posted_from = headers.get("sec-fetch-site").map(|site| site.as_bytes());
    let from_latch = posted_from.is_none_or(|site| site == b"same-origin" || site == b"none");
    from_latch && state.csrf.verify(state.cookies.read(headers, cookies::CSRF).as_deref(), session, submitted)
}

pub async fn submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = params(&body)?;
    let next = safe_next(form.get("next"));
    let username = form.get("username").unwrap_or_default();
    if !sign_in_posted(&state, &headers, form.get("csrf_token")) {
        let message = "This sign-in form has expired. Please sign in again.";
        return Ok(show_form(&state, &headers, StatusCode::BAD_REQUEST, next, username, Some(message)));
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    match state.authenticator.sign_in(username, password, &requester.ip, now).await {
        Ok(session) => {
            state.provider.bind_reauth(next, &session.token, now).await?;
            let cookie = state.cookies.build(cookies::SESSION, &session.token, session.expires_at - now);
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
    let signed_in = current_session(&state, &headers, state.clock.now()).await?.is_some();
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
