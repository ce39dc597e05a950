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
use super::ops::Requester;
use super::signed_in::{Section, Shell, SignedIn};
use super::{AppState, cookies, redirect, user_agent};
use crate::admin::AdminError;
use crate::admin::account::{Person, change_own_password, set_own_name};
use crate::admin::invites::readable_time;
use crate::clock::UnixTime;
use crate::crypto::sha256_hex;
use crate::login::{LoginError, NewSession, sign_in_url};
use crate::oidc::params::{Params, decode_pairs};
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

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    shell: Shell<'a>,
    username: &'a str,
    email: &'a str,
    name: &'a str,
    apps: Vec<AppTile>,
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

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage<'a> {
    shell: Shell<'a>,
    sessions: Vec<SessionRow>,
    notice: Option<&'static str>,
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

/// `GET /account` (and `/` when signed in): the launcher, the profile and
/// the password form.
pub async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let refusals = Refusals { notice: notice(query.as_deref()), ..Refusals::default() };
    show(&state, &signed_in, StatusCode::OK, refusals).await
}

#[derive(Default)]
struct Refusals<'a> {
    notice: Option<&'static str>,
    profile: Option<&'a str>,
    password: Option<&'a str>,
}

async fn show(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    refusals: Refusals<'_>,
) -> Result<Response, WebError> {
    let session = &signed_in.session;
    let Some(claims) = state.store.active_user_claims(&session.user_id).await? else {
        return Ok(redirect(&sign_in_url(ACCOUNT, None)));
    };
    let apps = state.store.launchable_apps(&session.user_id).await?.into_iter().map(|app| AppTile {
        initial: app.name.chars().next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default(),
        name: app.name,
        url: app.url,
    });
    let page = AccountPage {
        shell: signed_in.shell(Section::Apps),
        username: &claims.username,
        email: &claims.email,
        name: &claims.name,
        apps: apps.collect(),
        notice: refusals.notice,
        profile_error: refusals.profile,
        password_error: refusals.password,
    };
    Ok(signed_in.page(status, &page))
}

/// `GET /account/sessions`: where the person is signed in.
pub async fn sessions(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let session = &signed_in.session;
    let sessions = state.store.sessions_of_user(&session.user_id, now).await?.into_iter().map(|listed| SessionRow {
        current: listed.id_hash == session.id_hash,
        sid: listed.sid,
        device: user_agent::describe(listed.user_agent.as_deref()),
        address: listed.client_ip.unwrap_or_else(|| "unknown".into()),
        started: readable_time(listed.auth_time),
        last_seen: listed.last_seen_at.map_or_else(|| "unknown".into(), |seen| ago(now, seen)),
    });
    let page = SessionsPage {
        shell: signed_in.shell(Section::Sessions),
        sessions: sessions.collect(),
        notice: notice(query.as_deref()),
    };
    Ok(signed_in.page(StatusCode::OK, &page))
}

/// How long before `now` `at` was, roughly: `just now`, `5 min ago`, `3 h ago`, else `when`.
fn ago(now: UnixTime, at: UnixTime) -> String {
    match now.saturating_sub(at) {
        ..120 => "just now".into(),
        seconds @ ..7200 => format!("{} min ago", seconds / 60),
        seconds @ ..172_800 => format!("{} h ago", seconds / 3600),
        _ => readable_time(at),
    }
}

/// A posted portal form, once its CSRF token checks out.
fn posted(state: &AppState, signed_in: &SignedIn, headers: &HeaderMap, body: &[u8]) -> Result<Params, WebError> {
    let form = form_params(body)?;
    signed_in.check_form(state, headers, form.get("csrf_token"))?;
    Ok(form)
}

fn person(signed_in: &SignedIn) -> Person<'_> {
    let session = &signed_in.session;
    Person { user_id: &session.user_id, username: &session.username, session_hash: &session.id_hash }
}

/// `POST /account/profile`: the display name.
pub async fn profile(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = posted(&state, &signed_in, &headers, &body)?;
    match set_own_name(&state.store, &person(&signed_in), form.get("name").unwrap_or_default()).await {
        Ok(()) => Ok(redirect("/account?done=name")),
        Err(AdminError::Invalid { reason, .. }) => {
            let refusals = Refusals { profile: Some(&reason), ..Refusals::default() };
            show(&state, &signed_in, StatusCode::BAD_REQUEST, refusals).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /account/password`: the current password (checked and throttled
/// as a sign-in), the new one twice. Every other session ends.
pub async fn password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = posted(&state, &signed_in, &headers, &body)?;
    let field = |name| form.get(name).unwrap_or_default();
    let refuse = async |status, message: &str| {
        let refusals = Refusals { password: Some(message), ..Refusals::default() };
        show(&state, &signed_in, status, refusals).await
    };
    if field("new_password") != field("new_password_again") {
        return refuse(StatusCode::BAD_REQUEST, "The two new passwords differ.").await;
    }
    let (session, current) = (&signed_in.session, field("current_password").to_owned());
    match state.authenticator.reprove_password(session, current, &requester.ip, now).await {
        Ok(()) => {}
        Err(LoginError::InvalidCredentials | LoginError::Locked) => {
            state.auditor.record("password_change_refused", &requester.actor(Some(&session.username), None), None);
            return refuse(StatusCode::UNAUTHORIZED, "The current password is not right.").await;
        }
        Err(error) => return Err(error.into()),
    }
    match change_own_password(&state.store, &person(&signed_in), field("new_password").to_owned(), now).await {
        Ok(_) => {
            state.logout_delivery.wake();
            Ok(redirect("/account?done=password"))
        }
        Err(AdminError::Invalid { reason, .. }) => refuse(StatusCode::BAD_REQUEST, &reason).await,
        Err(error) => Err(error.into()),
    }
}

/// `POST /account/sessions/end`: signs out the session `sid` of this person
/// (the current one included, which then signs this browser out).
pub async fn end_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = posted(&state, &signed_in, &headers, &body)?;
    let session = &signed_in.session;
    if !state.store.end_session_of_user(&session.user_id, form.get("sid").unwrap_or_default(), now).await? {
        return Err(WebError::page(StatusCode::NOT_FOUND, "No such session", "It has ended already."));
    }
    state.logout_delivery.wake();
    let detail = Some("one session, from the account portal".to_owned());
    state.auditor.record("logout", &requester.actor(Some(&session.username), None), detail);
    Ok(redirect("/account/sessions?done=session"))
}

/// `POST /account/sessions/end-all`: signs out every session of this
/// person, this browser's included.
pub async fn end_all_sessions(
    State(state): State<AppState>,
    signed_in: SignedIn,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    posted(&state, &signed_in, &headers, &body)?;
    let session = &signed_in.session;
    let ended = state.store.end_all_sessions_of_user(&session.user_id, now).await?;
    state.logout_delivery.wake();
    let detail = format!("everywhere: {ended} session(s)");
    state.auditor.record("logout", &requester.actor(Some(&session.username), None), Some(detail));
    Ok(signed_out(&state))
}

/// `POST /account/sign-out` (the header's "Sign out"): signs out this
/// browser's session; its apps are told, as at an app's sign-out.
pub async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    posted(&state, &signed_in, &headers, &body)?;
    state.store.end_session(&signed_in.session.id_hash, now).await?;
    state.logout_delivery.wake();
    state.auditor.record("logout", &requester.actor(Some(&signed_in.session.username), None), None);
    Ok(signed_out(&state))
}

/// To the sign-in page, with the session cookie deleted.
fn signed_out(state: &AppState) -> Response {
    let clear = state.cookies.build(cookies::SESSION, "", 0);
    (AppendHeaders([(SET_COOKIE, clear)]), redirect(&sign_in_url(ACCOUNT, None))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(readable_time(1_764_568_200), "2025-12-01 05:50 UTC");
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
