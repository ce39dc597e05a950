//! Sensitive actions need a fresh sign-in. A handler about to show or
//! rotate a secret, rotate keys, grant admin or reset someone's factors
//! calls `require_fresh` first:
//!
//! ```ignore
//! if let Some(detour) = fresh::require_fresh(&state, &session, "/admin/apps/grafana") {
//!     return Ok(detour);
//! }
//! ```
//!
//! When the session's last proof (`auth_time`) is older than
//! `login::fresh::FRESH_FOR`, that is a redirect to `/account/confirm`,
//! which asks for the password again (throttled as a sign-in) and then
//! sends the browser back to `back`, a page on Latch (a GET, so a posted
//! action is shown again rather than repeated blindly).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::account::{form_params, person};
use super::error::WebError;
use super::login::{csrf_posted, csrf_token_for};
use super::ops::Requester;
use super::pages::render;
use super::{AppState, redirect};
use crate::login::fresh::{FRESH_FOR, is_fresh};
use crate::login::{LoginError, safe_next};
use crate::store::SessionUser;

/// The page that asks for the password again.
pub const CONFIRM: &str = "/account/confirm";

/// `None` when `session` proved itself in the last `FRESH_FOR` seconds;
/// else the redirect to confirm the password and come back to `back` (a
/// path on Latch).
pub fn require_fresh(state: &AppState, session: &SessionUser, back: &str) -> Option<Response> {
    if is_fresh(session, state.clock.now(), FRESH_FOR) {
        return None;
    }
    Some(redirect(&confirm_url(back)))
}

fn confirm_url(back: &str) -> String {
    let query =
        url::form_urlencoded::Serializer::new(String::new()).append_pair("next", safe_next(Some(back))).finish();
    format!("{CONFIRM}?{query}")
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    csrf_token: &'a str,
    username: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

fn show(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    session: &SessionUser,
    next: &str,
    error: Option<&str>,
) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let page = ConfirmPage { csrf_token: &csrf_token, username: &session.username, next, error };
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), render(status, &page)).into_response()
}

/// `GET /account/confirm?next=…`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let next =
        form_params(query.unwrap_or_default().as_bytes())?.get("next").map(|next| safe_next(Some(next)).to_owned());
    let next = next.unwrap_or_else(|| "/account".into());
    let session = match person(&state, &headers, &confirm_url(&next)).await? {
        Ok(session) => session,
        Err(sign_in) => return Ok(sign_in),
    };
    Ok(show(&state, &headers, StatusCode::OK, &session, &next, None))
}

/// `POST /account/confirm`: the password; on success, on to `next`.
pub async fn submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = form_params(&body)?;
    let next = safe_next(form.get("next")).to_owned();
    let session = match person(&state, &headers, &confirm_url(&next)).await? {
        Ok(session) => session,
        Err(sign_in) => return Ok(sign_in),
    };
    if !csrf_posted(&state, &headers, form.get("csrf_token")) {
        let message = Some("This form has expired. Please enter your password again.");
        return Ok(show(&state, &headers, StatusCode::BAD_REQUEST, &session, &next, message));
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    match state.authenticator.reprove_password(&session, password, &requester.ip, now).await {
        Ok(()) => Ok(redirect(&next)),
        Err(LoginError::InvalidCredentials | LoginError::Locked) => {
            state.auditor.record("reauthentication_failure", &requester.actor(Some(&session.username), None), None);
            let message = Some("That password is not right.");
            Ok(show(&state, &headers, StatusCode::UNAUTHORIZED, &session, &next, message))
        }
        Err(error) => Err(error.into()),
    }
}
