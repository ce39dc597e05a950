//! One-time links in the browser: `/setup/<token>` (first run: create the
//! first administrator), `/invite/<token>` (an invited person chooses a
//! password) and `/reset/<token>` (a new password). Each signs the person
//! in and lands on their portal; a used, expired or unknown link gets a
//! page that says which. `/login/forgot` (with `smtp_url`) mails a reset
//! link. The operations are `admin::setup` and `admin::invites`.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::account::{ACCOUNT, form_params, sign_in_cookies};
use super::error::WebError;
use super::login::{csrf_posted, csrf_token_for};
use super::ops::Requester;
use super::pages::{MessagePage, render};
use super::{AppState, cookies};
use crate::admin::invites::{UseLink, forgot_password, link_state, use_link};
use crate::admin::setup::{FirstAdmin, create_first_admin};
use crate::admin::{AdminError, ErrorClass};
use crate::store::{LinkPurpose, LinkState};

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    csrf_token: &'a str,
    action: &'a str,
    username: &'a str,
    email: &'a str,
    name: &'a str,
    error: Option<&'a str>,
}

/// The invite and reset pages: a new password, twice.
#[derive(Template)]
#[template(path = "choose_password.html")]
struct ChoosePasswordPage<'a> {
    title: &'a str,
    intro: &'a str,
    csrf_token: &'a str,
    action: &'a str,
    /// For password managers, which file the password under it.
    username: &'a str,
    error: Option<&'a str>,
}

/// What a link that cannot be used says, by where it stands.
fn unusable(state: &LinkState, what: &'static str) -> WebError {
    let message = match state {
        LinkState::Used => format!("This {what} link was already used. Links work once; ask for a new one."),
        LinkState::Expired => format!("This {what} link has expired. Ask for a new one."),
        _ => format!("This {what} link is not valid. Check that it was copied whole, or ask for a new one."),
    };
    let (status, title) = match state {
        LinkState::Used => (StatusCode::GONE, "Link already used"),
        LinkState::Expired => (StatusCode::GONE, "Link expired"),
        _ => (StatusCode::NOT_FOUND, "Link not valid"),
    };
    WebError::page(status, title, message)
}

/// `GET /setup/<token>`.
pub async fn setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let link = link_state(&state.store, LinkPurpose::Setup, &token, now).await?;
    if !matches!(link, LinkState::Open { .. }) {
        return Err(unusable(&link, "setup"));
    }
    Ok(show_setup(&state, &headers, StatusCode::OK, &token, ("", "", ""), None))
}

fn show_setup(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    (username, email, name): (&str, &str, &str),
    error: Option<&str>,
) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let action = format!("/setup/{token}");
    let page = SetupPage { csrf_token: &csrf_token, action: &action, username, email, name, error };
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), render(status, &page)).into_response()
}

/// `POST /setup/<token>`: creates the first administrator and signs them in.
pub async fn setup_submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = form_params(&body)?;
    let link = link_state(&state.store, LinkPurpose::Setup, &token, now).await?;
    if !matches!(link, LinkState::Open { .. }) {
        return Err(unusable(&link, "setup"));
    }
    let field = |name| form.get(name).unwrap_or_default();
    let typed = (field("username"), field("email"), field("name"));
    if !csrf_posted(&state, &headers, form.get("csrf_token")) {
        let message = Some("This form has expired. Please fill it in again.");
        return Ok(show_setup(&state, &headers, StatusCode::BAD_REQUEST, &token, typed, message));
    }
    if field("password") != field("password_again") {
        let message = Some("The two passwords differ.");
        return Ok(show_setup(&state, &headers, StatusCode::BAD_REQUEST, &token, typed, message));
    }
    let command = FirstAdmin {
        token: token.clone(),
        username: typed.0.trim().to_owned(),
        email: typed.1.trim().to_owned(),
        name: Some(typed.2.to_owned()),
        password: field("password").to_owned(),
    };
    match create_first_admin(&state.store, command, now).await {
        Ok(Some(user_id)) => signed_in(&state, &headers, &requester, &user_id, now).await,
        Ok(None) => {
            let link = link_state(&state.store, LinkPurpose::Setup, &token, now).await?;
            Err(unusable(&link, "setup"))
        }
        Err(error) if error.class() != ErrorClass::Internal => {
            let message = Some(error.to_string());
            Ok(show_setup(&state, &headers, StatusCode::BAD_REQUEST, &token, typed, message.as_deref()))
        }
        Err(error) => Err(error.into()),
    }
}

/// The texts of the invite and reset pages.
struct LinkKind {
    purpose: LinkPurpose,
    path: &'static str,
    what: &'static str,
    title: &'static str,
    intro: &'static str,
}

const INVITE: LinkKind = LinkKind {
    purpose: LinkPurpose::Invite,
    path: "/invite/",
    what: "invitation",
    title: "Welcome",
    intro: "Choose a password for your new account. You will be signed in right after.",
};

const RESET: LinkKind = LinkKind {
    purpose: LinkPurpose::Reset,
    path: "/reset/",
    what: "password-reset",
    title: "Choose a new password",
    intro: "Your other sessions end once the new password is set.",
};

/// `GET /invite/<token>`.
pub async fn invite_page(
    state: State<AppState>,
    headers: HeaderMap,
    token: Path<String>,
) -> Result<Response, WebError> {
    link_page(state, headers, token, &INVITE).await
}

/// `POST /invite/<token>`.
pub async fn invite_submit(
    state: State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    token: Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    link_submit(state, requester, headers, token, body, &INVITE).await
}

/// `GET /reset/<token>`.
pub async fn reset_page(state: State<AppState>, headers: HeaderMap, token: Path<String>) -> Result<Response, WebError> {
    link_page(state, headers, token, &RESET).await
}

/// `POST /reset/<token>`.
pub async fn reset_submit(
    state: State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    token: Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    link_submit(state, requester, headers, token, body, &RESET).await
}

async fn link_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    kind: &LinkKind,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    match link_state(&state.store, kind.purpose, &token, now).await? {
        LinkState::Open { username, .. } => {
            let username = username.unwrap_or_default();
            Ok(show_choose(&state, &headers, StatusCode::OK, kind, &token, &username, None))
        }
        other => Err(unusable(&other, kind.what)),
    }
}

fn show_choose(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    kind: &LinkKind,
    token: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let action = format!("{}{token}", kind.path);
    let page = ChoosePasswordPage {
        title: kind.title,
        intro: kind.intro,
        csrf_token: &csrf_token,
        action: &action,
        username,
        error,
    };
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), render(status, &page)).into_response()
}

async fn link_submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
    kind: &LinkKind,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = form_params(&body)?;
    let username = match link_state(&state.store, kind.purpose, &token, now).await? {
        LinkState::Open { username, .. } => username,
        other => return Err(unusable(&other, kind.what)),
    };
    let username = username.unwrap_or_default();
    let refuse = |message: &str| {
        Ok(show_choose(&state, &headers, StatusCode::BAD_REQUEST, kind, &token, &username, Some(message)))
    };
    if !csrf_posted(&state, &headers, form.get("csrf_token")) {
        return refuse("This form has expired. Please enter the password again.");
    }
    let password = form.get("password").unwrap_or_default();
    if password != form.get("password_again").unwrap_or_default() {
        return refuse("The two passwords differ.");
    }
    let command = UseLink { purpose: kind.purpose, token: token.clone(), password: password.to_owned() };
    match use_link(&state.store, command, now).await {
        Ok(Some(user_id)) => {
            // The person's sessions ended with the new password: their apps are told now.
            state.logout_delivery.wake();
            signed_in(&state, &headers, &requester, &user_id, now).await
        }
        Ok(None) => {
            let link = link_state(&state.store, kind.purpose, &token, now).await?;
            Err(unusable(&link, kind.what))
        }
        Err(AdminError::Invalid { reason, .. }) => refuse(&reason),
        Err(error) => Err(error.into()),
    }
}

/// Starts a session for `user_id` and sends the browser to the portal.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    requester: &Requester,
    user_id: &str,
    now: i64,
) -> Result<Response, WebError> {
    let replaces = state.cookies.read(headers, cookies::SESSION);
    let session = state.authenticator.start_session_after_link(user_id, replaces.as_deref(), now).await?;
    let set_cookies = sign_in_cookies(state, requester, &session, now).await?;
    Ok((AppendHeaders(set_cookies.into_iter().map(|cookie| (SET_COOKIE, cookie))), super::redirect(ACCOUNT))
        .into_response())
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    csrf_token: &'a str,
    error: Option<&'a str>,
}

/// Mail is not set up: no page to offer.
fn no_mail() -> WebError {
    WebError::page(
        StatusCode::NOT_FOUND,
        "No e-mail here",
        "This Latch sends no mail. Ask your administrator for a password-reset link.",
    )
}

/// `GET /login/forgot` (only with `smtp_url`): asks for a username or an
/// e-mail address.
pub async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    if state.mailer.is_none() {
        return Err(no_mail());
    }
    Ok(show_forgot(&state, &headers, StatusCode::OK, None))
}

fn show_forgot(state: &AppState, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let page = ForgotPage { csrf_token: &csrf_token, error };
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), render(status, &page)).into_response()
}

/// `POST /login/forgot`: the same answer whether or not an account
/// matches, given at once; the lookup, the throttles and the mail run
/// after it (`admin::invites::forgot_password`), so neither the page nor
/// its timing tells whether the account exists.
pub async fn forgot_submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(mailer) = state.mailer.clone() else { return Err(no_mail()) };
    let form = form_params(&body)?;
    if !csrf_posted(&state, &headers, form.get("csrf_token")) {
        let message = Some("This form has expired. Please try again.");
        return Ok(show_forgot(&state, &headers, StatusCode::BAD_REQUEST, message));
    }
    let login = form.get("login").unwrap_or_default().trim().to_owned();
    if login.is_empty() {
        return Ok(show_forgot(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            Some("Enter your username or e-mail address."),
        ));
    }
    let (store, public_url, now) = (state.store.clone(), state.public_url.clone(), state.clock.now());
    tokio::spawn(async move {
        let sent = forgot_password(&store, &mailer, &public_url, &login, &requester.ip, now).await;
        if let Err(error) = sent {
            tracing::warn!(%error, "a forgotten-password mail was not sent");
        }
    });
    let message = "If an account has that username or e-mail address, a link to choose a new password is on \
                   its way there. It works once, for a day.";
    Ok(render(StatusCode::OK, &MessagePage { title: "Check your e-mail", message, is_error: false }))
}
