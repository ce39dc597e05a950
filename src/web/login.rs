//! The sign-in pages: the first form (username, and the password with it or
//! on the next page) and one page per further step (`login::flow`). They
//! work without JavaScript; every answer is the same for unknown users,
//! wrong passwords and disabled accounts.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::account::sign_in_cookies;
use super::cookies;
use super::error::WebError;
use super::oidc::current_session;
use super::ops::Requester;
use super::pages::{LoginPage, PASSKEY_CSP, PasswordPage, RecoveryUsedPage, SecondFactorPage, render};
use super::signed_in::SignedIn;
use super::{AppState, redirect};
use crate::clock::UnixTime;
use crate::config::MfaEnrolment;
use crate::login::csrf::Posted;
use crate::login::flow::{Browser, Method, Outcome, Proof, Step, StepUp};
use crate::login::{LoginError, NewSession, safe_next, sign_in_url, skip_form};
use crate::metrics::LoginOutcome;
use crate::oidc::params::{Params, decode_pairs};
use crate::store::SessionUser;
use crate::text::printable;

/// The signed-in page where people set up their second factors.
pub const SECURITY_PATH: &str = "/account/security";

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
    let signed_in = current_session(&state, &headers, state.clock.now()).await?.is_some();
    if let Some(next) = skip_form(query.get("next"), signed_in) {
        return Ok(redirect(next));
    }
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
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let passkeys = state.authenticator.passkeys().available();
    let forgot_password = state.mailer.is_some();
    let page = render(status, &LoginPage { csrf_token: &csrf_token, next, username, error, passkeys, forgot_password });
    let csp = passkeys.then_some((CONTENT_SECURITY_POLICY, PASSKEY_CSP));
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), AppendHeaders(csp), page).into_response()
}

/// The CSRF token for a form shown to this browser (see `login::csrf`),
/// and the CSRF cookie to set when the browser has none yet.
pub(super) fn csrf_token_for(state: &AppState, headers: &HeaderMap) -> (String, Option<String>) {
    let session = state.cookies.read(headers, cookies::SESSION);
    let browser_id = state.cookies.read(headers, cookies::CSRF);
    let (token, new_id) = state.csrf.token_for(browser_id.as_deref(), session.as_deref());
    (token, new_id.map(|id| state.cookies.build(cookies::CSRF, &id, CSRF_MAX_AGE)))
}

/// Whether a posted form passes the CSRF check (`CsrfKey::accepts`).
pub(super) fn csrf_posted(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    with_posted(state, headers, submitted, |posted| state.csrf.accepts(posted))
}

/// Whether a posted sign-in form passes the CSRF check
/// (`CsrfKey::accepts_sign_in`).
pub(super) fn sign_in_posted(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    with_posted(state, headers, submitted, |posted| state.csrf.accepts_sign_in(posted))
}

/// Calls `check` with what the request brings for the CSRF check.
fn with_posted(
    state: &AppState,
    headers: &HeaderMap,
    submitted: Option<&str>,
    check: impl FnOnce(&Posted) -> bool,
) -> bool {
    let browser_id = state.cookies.read(headers, cookies::CSRF);
    let session = state.cookies.read(headers, cookies::SESSION);
    check(&Posted {
        fetch_site: headers.get("sec-fetch-site").map(|site| site.as_bytes()),
        browser_id: browser_id.as_deref(),
        session: session.as_deref(),
        submitted,
    })
}

/// The sign-in forms. Without `step`, the first form: a username to start
/// a sign-in, with its password to finish it in the same request, or
/// without (left empty) to be asked for it next. With `step`, a proof for
/// the sign-in under way that the `latch_signin` cookie names.
pub async fn submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = params(&body)?;
    let next = safe_next(form.get("next"));
    if !sign_in_posted(&state, &headers, form.get("csrf_token")) {
        let message = "This sign-in form has expired. Please sign in again.";
        let username = form.get("username").unwrap_or_default();
        return Ok(show_form(&state, &headers, StatusCode::BAD_REQUEST, next, username, Some(message)));
    }
    let step = match form.get("step").map(Step::parse) {
        Some(None) => {
            return Err(WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-in request", "Unknown sign-in step."));
        }
        step => step.flatten(),
    };
    let outcome = attempt(&state, &headers, &requester.ip, &form, step, next, now).await;
    answer(&state, &headers, &requester, next, now, outcome).await
}

/// Does what the form asks: start a sign-in (`identify`), finish one in a
/// single request (`sign_in`), or take the next step of one (`resume`).
async fn attempt(
    state: &AppState,
    headers: &HeaderMap,
    client_ip: &str,
    form: &Params,
    step: Option<Step>,
    next: &str,
    now: UnixTime,
) -> Result<Outcome, LoginError> {
    let authenticator = &state.authenticator;
    let session = state.cookies.read(headers, cookies::SESSION);
    let browser = Browser { client_ip, session: session.as_deref() };
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_owned();
    let Some(step) = step else {
        if password.is_empty() && !username.trim().is_empty() {
            return authenticator.identify(username, next, client_ip, now).await;
        }
        return authenticator.sign_in(username, password, next, &browser, now).await;
    };
    let proof = match step {
        Step::Password => Proof::Password(password),
        Step::SecondFactor => Proof::Code(form.get("code").unwrap_or_default().to_owned()),
    };
    let token = state.cookies.read(headers, cookies::SIGN_IN).unwrap_or_default();
    authenticator.resume(&token, proof, &browser, now).await
}

/// The page or redirect for where the request left the sign-in.
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    requester: &Requester,
    next: &str,
    now: UnixTime,
    outcome: Result<Outcome, LoginError>,
) -> Result<Response, WebError> {
    match outcome {
        Ok(Outcome::Next { token, step, username, expires_at }) => {
            let cookie = state.cookies.build(cookies::SIGN_IN, &token, expires_at - now);
            let page = show_step(state, headers, StatusCode::OK, step, &username, next, None);
            Ok((AppendHeaders([(SET_COOKIE, cookie)]), page).into_response())
        }
        Ok(Outcome::Done { session, username, next, last, recovery_codes_left }) => {
            let done = Finished { session: &session, username: &username, next: &next, last };
            let set_cookies = signed_in(state, headers, requester, &done, now).await?;
            let page = match recovery_codes_left {
                Some(left) if last == Method::RecoveryCode => {
                    let actor = requester.actor(Some(&username), None);
                    state.auditor.record("recovery_code_used", &actor, Some(format!("{left} left")));
                    render(StatusCode::OK, &RecoveryUsedPage { left, next: &next })
                }
                _ => redirect(&next),
            };
            Ok((AppendHeaders(set_cookies.map(|cookie| (SET_COOKIE, cookie))), page).into_response())
        }
        Ok(Outcome::Refused { username, locked, at }) => {
            refused(state, requester, &username, locked, at, "code");
            let second_factor = at == Some(Step::SecondFactor);
            // The same answer either way: a lock reveals nothing either.
            let message =
                Some(if second_factor { "Invalid or already used code." } else { "Invalid username or password." });
            let status = StatusCode::UNAUTHORIZED;
            Ok(match at {
                Some(step) => show_step(state, headers, status, step, &username, next, message),
                None => show_form(state, headers, status, next, &username, message),
            })
        }
        Err(LoginError::Expired) => {
            let message = "This sign-in took too long and has expired. Please start again.";
            let page = show_form(state, headers, StatusCode::BAD_REQUEST, next, "", Some(message));
            let ended = ended_sign_in(state, headers).map(|cookie| (SET_COOKIE, cookie));
            Ok((AppendHeaders(ended), page).into_response())
        }
        Err(LoginError::WrongStep) => {
            let message = "This sign-in form is out of date. Please start again.";
            Ok(show_form(state, headers, StatusCode::BAD_REQUEST, next, "", Some(message)))
        }
        Err(error) => Err(error.into()),
    }
}

/// A finished sign-in, as `Outcome::Done` tells it.
pub(super) struct Finished<'a> {
    pub session: &'a NewSession,
    pub username: &'a str,
    pub next: &'a str,
    /// The method of the last step.
    pub last: Method,
}

/// What follows a finished sign-in, whatever proved it: the session
/// (already started) binds a pending re-authentication, the sign-in is
/// counted and audited, and the browser gets the `Set-Cookie` values
/// returned (the session, and the end of the pending sign-in).
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    requester: &Requester,
    done: &Finished<'_>,
    now: UnixTime,
) -> Result<impl Iterator<Item = String> + use<>, WebError> {
    state.provider.bind_reauth(done.next, &done.session.token, now).await?;
    if state.cookies.read(headers, cookies::SESSION).is_some() {
        // The session this browser held may have ended (another
        // person signed in): its apps are told now, not at the next poll.
        state.logout_delivery.wake();
    }
    let set_cookies = sign_in_cookies(state, requester, done.session, now).await?;
    state.metrics.login(LoginOutcome::Success);
    let actor = requester.actor(Some(done.username), None);
    if done.last.is_second_factor() {
        state.metrics.second_factor(done.last.as_str(), LoginOutcome::Success);
        state.auditor.record("second_factor_success", &actor, Some(format!("method {}", done.last.as_str())));
    }
    state.auditor.record("login_success", &actor, None);
    Ok(set_cookies.into_iter().chain(ended_sign_in(state, headers)))
}

/// Counts and audits a refused proof of a sign-in at step `at` (`None`:
/// one made in one request); `method` names the proof in the
/// second-factor metrics (`code`, `passkey`).
pub(super) fn refused(
    state: &AppState,
    requester: &Requester,
    username: &str,
    locked: bool,
    at: Option<Step>,
    method: &'static str,
) {
    let outcome = if locked { LoginOutcome::Locked } else { LoginOutcome::Failure };
    state.metrics.login(outcome);
    let detail = locked.then(|| "locked after repeated failures".to_owned());
    let kind = if at == Some(Step::SecondFactor) {
        state.metrics.second_factor(method, outcome);
        "second_factor_failure"
    } else {
        "login_failure"
    };
    state.auditor.record(kind, &requester.actor(Some(username), None), detail);
}

/// Where a signed-in person goes whose `session` lacks the second factor
/// `app_name` requires, to come back to `next` (step-up): the second-factor
/// step alone, with a new sign-in cookie; to `/account/security` to set one
/// up when they hold none and enrolment is open; else a page saying an
/// administrator must set one up.
pub(super) async fn step_up(
    state: &AppState,
    headers: &HeaderMap,
    session: &SessionUser,
    next: &str,
    app_name: &str,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    match state.authenticator.step_up(session, next, now).await? {
        StepUp::Next { token, expires_at } => {
            let cookie = state.cookies.build(cookies::SIGN_IN, &token, expires_at - now);
            let page = show_step(state, headers, StatusCode::OK, Step::SecondFactor, &session.username, next, None);
            Ok((AppendHeaders([(SET_COOKIE, cookie)]), page).into_response())
        }
        StepUp::NoFactor if state.mfa.enrolment == MfaEnrolment::Open => {
            let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
            Ok(redirect(&format!("{SECURITY_PATH}?{query}")))
        }
        StepUp::NoFactor => {
            let message = format!(
                "{} requires a second factor (an authenticator app or a passkey), and your account has none. \
                 Ask an administrator to set one up for you.",
                printable(app_name)
            );
            Err(WebError::page(StatusCode::FORBIDDEN, "A second factor is required", message))
        }
    }
}

/// The `Set-Cookie` deleting the browser's sign-in cookie, if it sent one.
fn ended_sign_in(state: &AppState, headers: &HeaderMap) -> Option<String> {
    state.cookies.read(headers, cookies::SIGN_IN).map(|_| state.cookies.build(cookies::SIGN_IN, "", 0))
}

/// Renders the page of `step` for the sign-in of `username` under way.
fn show_step(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    step: Step,
    username: &str,
    next: &str,
    error: Option<&str>,
) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let restart = sign_in_url(next, None);
    let passkeys = state.authenticator.passkeys().available();
    let page = match step {
        Step::Password => {
            let page =
                PasswordPage { csrf_token: &csrf_token, step: step.as_str(), username, next, restart: &restart, error };
            render(status, &page)
        }
        Step::SecondFactor => {
            let page = SecondFactorPage {
                csrf_token: &csrf_token,
                step: step.as_str(),
                username,
                next,
                restart: &restart,
                error,
                passkeys,
            };
            render(status, &page)
        }
    };
    let csp = (step == Step::SecondFactor && passkeys).then_some((CONTENT_SECURITY_POLICY, PASSKEY_CSP));
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), AppendHeaders(csp), page).into_response()
}

/// Where a person lands after signing in with nowhere else to go: their
/// portal (as at `/account`), or the sign-in page.
pub async fn home(
    state: State<AppState>,
    signed_in: Result<SignedIn, Response>,
    query: RawQuery,
) -> Result<Response, WebError> {
    match signed_in {
        Ok(signed_in) => super::account::page(state, signed_in, query).await,
        Err(_) => Ok(redirect("/login")),
    }
}
