//! The account portal, `/account`: the apps a person may use, their
//! profile, a new password, their sessions (each signed out on its own, or
//! all at once), and signing out. Handlers parse and call: the changes are
//! `admin::account`, the sessions the store's (ending one tells its apps,
//! as sign-out does).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::error::WebError;
use super::links::admin_failure;
use super::login::{csrf_posted, csrf_token_for};
use super::oidc::current_session;
use super::ops::Requester;
use super::pages::render;
use super::{AppState, cookies, redirect, user_agent};
use crate::admin::AdminError;
use crate::admin::account::{Person, change_own_password, set_own_name};
use crate::clock::UnixTime;
use crate::crypto::sha256_hex;
use crate::login::{LoginError, NewSession, sign_in_url};
use crate::oidc::params::{Params, decode_pairs};
use crate::store::SessionUser;
use crate::text::{MAX_RECORDED_CHARS, bounded, printable};

/// The portal's path.
pub const ACCOUNT: &str = "/account";

/// A form body; a repeated field or a control character is a 400 page.
pub(super) fn form_params(raw: &[u8]) -> Result<Params, WebError> {
    decode_pairs(raw)
        .and_then(Params::from_pairs)
        .map_err(|error| WebError::page(StatusCode::BAD_REQUEST, "Invalid form", error.to_string()))
}

/// The `Set-Cookie`s of a session just started for `requester`, after
/// recording which browser and address it was started from.
pub(super) async fn sign_in_cookies(
    state: &AppState,
    requester: &Requester,
    session: &NewSession,
    now: UnixTime,
) -> Result<Vec<String>, WebError> {
    let agent =
        requester.user_agent.as_deref().map(|agent| printable(&bounded(agent, MAX_RECORDED_CHARS)).into_owned());
    state.store.describe_session(&sha256_hex(&session.token), agent.as_deref(), &requester.ip, now).await?;
    Ok(vec![state.cookies.build(cookies::SESSION, &session.token, session.expires_at - now)])
}

/// The signed-in person, or the redirect to sign in and come back to `back`.
pub(super) async fn person(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<Result<SessionUser, Response>, WebError> {
    match current_session(state, headers, state.clock.now()).await? {
        Some(session) => Ok(Ok(session)),
        None => Ok(Err(redirect(&sign_in_url(back, None)))),
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    csrf_token: &'a str,
    username: &'a str,
    email: &'a str,
    name: &'a str,
    apps: Vec<AppTile>,
    sessions: Vec<SessionRow>,
    /// What the last change did, in words.
    notice: Option<&'static str>,
    /// Why the profile form was refused.
    profile_error: Option<&'a str>,
    /// Why the password form was refused.
    password_error: Option<&'a str>,
}

struct AppTile {
    name: String,
    /// The first letter of the name, upper-case.
    initial: String,
    url: Option<String>,
}

struct SessionRow {
    /// `None`: too old to be signed out alone.
    sid: Option<String>,
    device: String,
    address: String,
    started: String,
    last_seen: String,
    current: bool,
}

/// Notices after a change, by the `done` query parameter (never echoed).
fn notice(query: Option<&str>) -> Option<&'static str> {
    let done = url::form_urlencoded::parse(query?.as_bytes()).find(|(name, _)| name == "done")?.1;
    match done.as_ref() {
        "name" => Some("Your name was saved."),
        "password" => Some("Your password was changed. Your other sessions were signed out."),
        "session" => Some("The session was signed out."),
        _ => None,
    }
}

/// `GET /account`.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let session = match person(&state, &headers, ACCOUNT).await? {
        Ok(session) => session,
        Err(sign_in) => return Ok(sign_in),
    };
    let errors = Refusals { notice: notice(query.as_deref()), ..Refusals::default() };
    show(&state, &headers, &session, StatusCode::OK, errors).await
}

#[derive(Default)]
struct Refusals<'a> {
    notice: Option<&'static str>,
    profile: Option<&'a str>,
    password: Option<&'a str>,
}

async fn show(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionUser,
    status: StatusCode,
    refusals: Refusals<'_>,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let Some(claims) = state.store.active_user_claims(&session.user_id).await? else {
        return Ok(redirect(&sign_in_url(ACCOUNT, None)));
    };
    let apps = state.store.launchable_apps(&session.user_id).await?.into_iter().map(|app| AppTile {
        initial: app.name.chars().next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default(),
        name: app.name,
        url: app.url,
    });
    let sessions = state.store.sessions_of_user(&session.user_id, now).await?.into_iter().map(|listed| SessionRow {
        current: listed.id_hash == session.id_hash,
        sid: listed.sid,
        device: user_agent::describe(listed.user_agent.as_deref()),
        address: listed.client_ip.unwrap_or_else(|| "unknown".into()),
        started: when(listed.auth_time),
        last_seen: listed.last_seen_at.map_or_else(|| "unknown".into(), |seen| ago(now, seen)),
    });
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let page = AccountPage {
        csrf_token: &csrf_token,
        username: &claims.username,
        email: &claims.email,
        name: &claims.name,
        apps: apps.collect(),
        sessions: sessions.collect(),
        notice: refusals.notice,
        profile_error: refusals.profile,
        password_error: refusals.password,
    };
    Ok((AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), render(status, &page)).into_response())
}

/// A Unix time as people read it: `2026-12-01 05:50 UTC`.
fn when(at: UnixTime) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(time).to_string();
    format!("{} {} UTC", text.get(..10).unwrap_or_default(), text.get(11..16).unwrap_or_default())
}

/// How long before `now` `at` was, roughly: `just now`, `5 min ago`, `3 h ago`, else `when`.
fn ago(now: UnixTime, at: UnixTime) -> String {
    match now.saturating_sub(at) {
        ..120 => "just now".into(),
        seconds @ ..7200 => format!("{} min ago", seconds / 60),
        seconds @ ..172_800 => format!("{} h ago", seconds / 3600),
        _ => when(at),
    }
}

/// A posted portal form: the signed-in person and the form, once the CSRF
/// token checks out; else the response to give.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Result<(SessionUser, Params), Response>, WebError> {
    let session = match person(state, headers, ACCOUNT).await? {
        Ok(session) => session,
        Err(sign_in) => return Ok(Err(sign_in)),
    };
    let form = form_params(body)?;
    if !csrf_posted(state, headers, form.get("csrf_token")) {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            "This form has expired",
            "Nothing was changed. Open your account page again and retry.",
        ));
    }
    Ok(Ok((session, form)))
}

/// `POST /account/profile`: the display name.
pub async fn profile(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let (session, form) = match posted(&state, &headers, &body).await? {
        Ok(posted) => posted,
        Err(response) => return Ok(response),
    };
    let me = Person { user_id: &session.user_id, username: &session.username, session_hash: &session.id_hash };
    match set_own_name(&state.store, &me, form.get("name").unwrap_or_default()).await {
        Ok(()) => Ok(redirect("/account?done=name")),
        Err(AdminError::Invalid { reason, .. }) => {
            let refusals = Refusals { profile: Some(&reason), ..Refusals::default() };
            show(&state, &headers, &session, StatusCode::BAD_REQUEST, refusals).await
        }
        Err(error) => Err(admin_failure(error)),
    }
}

/// `POST /account/password`: the current password (checked and throttled
/// as a sign-in), the new one twice. Every other session ends.
pub async fn password(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (session, form) = match posted(&state, &headers, &body).await? {
        Ok(posted) => posted,
        Err(response) => return Ok(response),
    };
    let field = |name| form.get(name).unwrap_or_default();
    let refuse = async |status, message: &str| {
        let refusals = Refusals { password: Some(message), ..Refusals::default() };
        show(&state, &headers, &session, status, refusals).await
    };
    if field("new_password") != field("new_password_again") {
        return refuse(StatusCode::BAD_REQUEST, "The two new passwords differ.").await;
    }
    let current = field("current_password").to_owned();
    match state.authenticator.reprove_password(&session, current, &requester.ip, now).await {
        Ok(()) => {}
        Err(LoginError::InvalidCredentials | LoginError::Locked) => {
            state.auditor.record("password_change_refused", &requester.actor(Some(&session.username), None), None);
            return refuse(StatusCode::UNAUTHORIZED, "The current password is not right.").await;
        }
        Err(error) => return Err(error.into()),
    }
    let me = Person { user_id: &session.user_id, username: &session.username, session_hash: &session.id_hash };
    match change_own_password(&state.store, &me, field("new_password").to_owned(), now).await {
        Ok(_) => {
            state.logout_delivery.wake();
            Ok(redirect("/account?done=password"))
        }
        Err(AdminError::Invalid { reason, .. }) => refuse(StatusCode::BAD_REQUEST, &reason).await,
        Err(error) => Err(admin_failure(error)),
    }
}

/// `POST /account/sessions/end`: signs out the session `sid` of this person
/// (the current one included, which then signs this browser out).
pub async fn end_session(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (session, form) = match posted(&state, &headers, &body).await? {
        Ok(posted) => posted,
        Err(response) => return Ok(response),
    };
    let sid = form.get("sid").unwrap_or_default();
    if !state.store.end_session_of_user(&session.user_id, sid, now).await? {
        return Err(WebError::page(StatusCode::NOT_FOUND, "No such session", "It has ended already."));
    }
    state.logout_delivery.wake();
    state.auditor.record(
        "logout",
        &requester.actor(Some(&session.username), None),
        Some("from the account portal".into()),
    );
    Ok(redirect("/account?done=session"))
}

/// `POST /account/sessions/end-all`: signs out every session of this
/// person, this browser's included.
pub async fn end_all_sessions(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (session, _) = match posted(&state, &headers, &body).await? {
        Ok(posted) => posted,
        Err(response) => return Ok(response),
    };
    let ended = state.store.end_all_sessions_of_user(&session.user_id, now).await?;
    state.logout_delivery.wake();
    let detail = format!("everywhere: {ended} session(s)");
    state.auditor.record("logout", &requester.actor(Some(&session.username), None), Some(detail));
    signed_out(&state)
}

/// `POST /account/sign-out`: signs out this browser's session.
pub async fn sign_out(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (session, _) = match posted(&state, &headers, &body).await? {
        Ok(posted) => posted,
        Err(response) => return Ok(response),
    };
    state.store.end_session(&session.id_hash, now).await?;
    state.logout_delivery.wake();
    state.auditor.record("logout", &requester.actor(Some(&session.username), None), None);
    signed_out(&state)
}

/// To the sign-in page, with the session cookie deleted.
fn signed_out(state: &AppState) -> Result<Response, WebError> {
    let clear = state.cookies.build(cookies::SESSION, "", 0);
    Ok((AppendHeaders([(SET_COOKIE, clear)]), redirect(&sign_in_url(ACCOUNT, None))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(when(1_764_568_200), "2025-12-01 05:50 UTC");
        assert_eq!(ago(1000, 990), "just now");
        assert_eq!(ago(10_000, 10_000 - 600), "10 min ago");
        assert_eq!(ago(100_000, 100_000 - 3 * 3600), "3 h ago");
        assert_eq!(ago(1_764_568_200 + 5 * 86400, 1_764_568_200), "2025-12-01 05:50 UTC");
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert_eq!(notice(Some("done=name")), Some("Your name was saved."));
        assert_eq!(notice(Some("done=<script>")), None);
        assert_eq!(notice(None), None);
    }
}
