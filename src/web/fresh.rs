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
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::account::{ACCOUNT, form_params};
use super::error::WebError;
use super::ops::Requester;
use super::signed_in::SignedIn;
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

fn show(signed_in: &SignedIn, status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let page = ConfirmPage { csrf_token: &signed_in.csrf_token, username: &signed_in.session.username, next, error };
    signed_in.page(status, &page)
}

/// `GET /account/confirm?next=…`.
pub async fn page(signed_in: SignedIn, RawQuery(query): RawQuery) -> Result<Response, WebError> {
    let query = form_params(query.unwrap_or_default().as_bytes())?;
    let next = query.get("next").map_or(ACCOUNT, |next| safe_next(Some(next)));
    Ok(show(&signed_in, StatusCode::OK, next, None))
}

/// `POST /account/confirm`: the password; on success, on to `next`.
pub async fn submit(
    State(state): State<AppState>,
    signed_in: SignedIn,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = form_params(&body)?;
    let next = safe_next(form.get("next"));
    signed_in.check_form(&state, &headers, form.get("csrf_token"))?;
    let password = form.get("password").unwrap_or_default().to_owned();
    match state.authenticator.reprove_password(&signed_in.session, password, &requester.ip, now).await {
        Ok(()) => Ok(redirect(next)),
        Err(LoginError::InvalidCredentials | LoginError::Locked) => {
            let actor = requester.actor(Some(&signed_in.session.username), None);
            state.auditor.record("reauthentication_failure", &actor, None);
            Ok(show(&signed_in, StatusCode::UNAUTHORIZED, next, Some("That password is not right.")))
        }
        Err(error) => Err(error.into()),
    }
}
