//! The passkey endpoints the page script (`/static/passkey.js`) calls:
//! JSON in, JSON out, each ceremony in two requests (`…/options` begins
//! it, `…/finish` posts the authenticator's answer). They carry the CSRF
//! token of the page they were called from, checked like its forms
//! (`login::csrf`). Errors are JSON `{"error", "error_description"}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::error::WebError;
use super::login::{Finished, csrf_posted, refused, sign_in_posted, signed_in};
use super::oidc::current_session;
use super::ops::Requester;
use super::{AppState, cookies};
use crate::admin::{self, Actor};
use crate::login::flow::{Browser, Method, Outcome, Proof, has_mfa, with_second_factor};
use crate::login::passkey::{Begun, PasskeyError};
use crate::login::{LoginError, safe_next};
use crate::store::SessionUser;
use crate::text::printable;

/// The script every page with a passkey button loads, embedded in the binary.
pub const SCRIPT: &str = include_str!("../../assets/passkey.js");

/// `GET /static/passkey.js`.
pub async fn script() -> Response {
    let headers = [
        (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
        // Short: a new release's script reaches open pages soon.
        (axum::http::header::CACHE_CONTROL, "public, max-age=300"),
    ];
    (headers, SCRIPT).into_response()
}

/// A request that only begins a ceremony.
#[derive(Deserialize)]
struct BeginRequest {
    csrf_token: String,
}

/// A registration to begin: the new passkey's name.
#[derive(Deserialize)]
struct RegisterRequest {
    csrf_token: String,
    name: String,
}

#[derive(Deserialize)]
struct FinishRequest<C> {
    csrf_token: String,
    /// The token `…/options` answered with.
    ceremony: String,
    /// The browser's `PublicKeyCredential`, base64url fields.
    credential: C,
    /// Sign-in only: where to go once signed in (a path on Latch).
    #[serde(default)]
    next: Option<String>,
}

/// `POST /login/passkey/options`: begins a sign-in with no username.
pub async fn sign_in_options(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let request: BeginRequest = json_body(&body)?;
    if !sign_in_posted(&state, &headers, Some(&request.csrf_token)) {
        return Err(expired_page());
    }
    match state.authenticator.begin_passkey_sign_in(&requester.ip, state.clock.now()).await {
        Ok(begun) => Ok(begun_json(begun)),
        Err(error) => Err(login_error(error)),
    }
}

/// `POST /login/passkey/finish`: signs in with the passkey's answer; on
/// success sets the session cookie and answers `{"redirect": next}`.
pub async fn sign_in_finish(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let request: FinishRequest<PublicKeyCredential> = json_body(&body)?;
    if !sign_in_posted(&state, &headers, Some(&request.csrf_token)) {
        return Err(expired_page());
    }
    let next = safe_next(request.next.as_deref());
    let session = state.cookies.read(&headers, cookies::SESSION);
    let browser = Browser { client_ip: &requester.ip, session: session.as_deref() };
    let outcome =
        state.authenticator.sign_in_with_passkey(request.ceremony, request.credential, next, &browser, now).await;
    finished(&state, &headers, &requester, outcome, now).await
}

/// `POST /login/passkey/second-factor/options`: begins the passkey step of
/// the sign-in under way (the `latch_signin` cookie names it).
pub async fn factor_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let request: BeginRequest = json_body(&body)?;
    if !sign_in_posted(&state, &headers, Some(&request.csrf_token)) {
        return Err(expired_page());
    }
    let token = state.cookies.read(&headers, cookies::SIGN_IN).unwrap_or_default();
    match state.authenticator.begin_passkey_factor(&token, state.clock.now()).await {
        Ok(Some(begun)) => Ok(begun_json(begun)),
        Ok(None) => Err(json_error(
            StatusCode::NOT_FOUND,
            "no_passkey",
            "Your account has no passkey. Use a code from your authenticator app or a recovery code.",
        )),
        Err(error) => Err(login_error(error)),
    }
}

/// `POST /login/passkey/second-factor/finish`: the passkey's answer as the
/// second step; signed in, answers `{"redirect": next}` as sign-in does.
pub async fn factor_finish(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let request: FinishRequest<PublicKeyCredential> = json_body(&body)?;
    if !sign_in_posted(&state, &headers, Some(&request.csrf_token)) {
        return Err(expired_page());
    }
    let token = state.cookies.read(&headers, cookies::SIGN_IN).unwrap_or_default();
    let session = state.cookies.read(&headers, cookies::SESSION);
    let browser = Browser { client_ip: &requester.ip, session: session.as_deref() };
    let proof = Proof::Passkey { ceremony: request.ceremony, credential: Box::new(request.credential) };
    let outcome = state.authenticator.resume(&token, proof, &browser, now).await;
    finished(&state, &headers, &requester, outcome, now).await
}

/// The JSON answer to a passkey proof: the cookies of a finished sign-in
/// and where to go, or why not.
async fn finished(
    state: &AppState,
    headers: &HeaderMap,
    requester: &Requester,
    outcome: Result<Outcome, LoginError>,
    now: i64,
) -> Result<Response, WebError> {
    match outcome {
        Ok(Outcome::Done { session, username, next, last, .. }) => {
            let done = Finished { session: &session, username: &username, next: &next, last };
            let set_cookies = signed_in(state, headers, requester, &done, now).await?;
            let cookies = AppendHeaders(set_cookies.map(|cookie| (SET_COOKIE, cookie)));
            Ok((cookies, Json(json!({ "redirect": next }))).into_response())
        }
        Ok(Outcome::Refused { username, locked, at }) => {
            refused(state, requester, &username, locked, at, "passkey");
            Err(login_error(if locked { LoginError::Locked } else { LoginError::InvalidCredentials }))
        }
        Ok(Outcome::Next { .. }) => {
            // A passkey is the last step there is.
            Err(json_error(StatusCode::CONFLICT, "invalid_request", "This sign-in needs another step."))
        }
        Err(error) => Err(login_error(error)),
    }
}

/// `POST /account/security/passkeys/options`: begins registering a passkey
/// for the signed-in person.
pub async fn register_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let request: RegisterRequest = json_body(&body)?;
    let person = signed_in_person(&state, &headers, &request.csrf_token, now).await?;
    let Some(user) = state.store.active_user_claims(&person.user_id).await? else {
        return Err(not_signed_in());
    };
    let passkeys = state.authenticator.passkeys();
    let begun = passkeys.begin_registration(&user, &request.name, now).await.map_err(passkey_error)?;
    Ok(begun_json(begun))
}

/// `POST /account/security/passkeys/finish`: keeps the new passkey;
/// answers `{"id", "name"}`.
pub async fn register_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let request: FinishRequest<RegisterPublicKeyCredential> = json_body(&body)?;
    let person = signed_in_person(&state, &headers, &request.csrf_token, now).await?;
    let passkeys = state.authenticator.passkeys();
    let added = passkeys
        .finish_registration(&person.user_id, &request.ceremony, &request.credential, now)
        .await
        .map_err(passkey_error)?;
    let actor = Actor::Owner { user_id: person.user_id.clone(), username: person.username.clone() };
    admin::passkey_added(&state.store, &actor, &person.username, &added.name).await?;
    // The new passkey verified its holder (webauthn-rs requires it): it is
    // proven in this session, as a confirmed authenticator app is.
    let amr = with_second_factor(&person.amr, Method::HardwareKey);
    state.store.set_session_amr(&person.id_hash, &amr, now).await?;
    Ok(Json(json!({ "id": added.id, "name": added.name })).into_response())
}

/// The person whose session the request carries, with a CSRF token made
/// for that session; a JSON 401 or 400 otherwise. Like every change on
/// `/account/security`, adding a passkey takes a session that proved a
/// second factor when the person holds one (a 403 otherwise): a stolen
/// password cannot add an attacker's passkey.
async fn signed_in_person(
    state: &AppState,
    headers: &HeaderMap,
    csrf_token: &str,
    now: i64,
) -> Result<SessionUser, WebError> {
    let Some(person) = current_session(state, headers, now).await? else {
        return Err(not_signed_in());
    };
    if !csrf_posted(state, headers, Some(csrf_token)) {
        return Err(expired_page());
    }
    if !has_mfa(&person.amr) && !state.store.factors(&person.user_id).await?.is_empty() {
        let message = "Confirm it is you with your second factor first: reload the page.";
        return Err(json_error(StatusCode::FORBIDDEN, "mfa_required", message));
    }
    Ok(person)
}

/// `{"ceremony": token, "options": {...}}`: what the script needs to call
/// the browser and to finish.
fn begun_json<T: serde::Serialize>(begun: Begun<T>) -> Response {
    Json(json!({ "ceremony": begun.token, "options": begun.options })).into_response()
}

/// The JSON body as `T`; a 400 naming what is wrong otherwise.
fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, WebError> {
    serde_json::from_slice(body).map_err(|error| {
        let message = format!("The request is not the JSON this endpoint takes: {error}.");
        json_error(StatusCode::BAD_REQUEST, "invalid_request", &printable(&message))
    })
}

fn json_error(status: StatusCode, error: &'static str, description: &str) -> WebError {
    WebError::Json { status, error, description: description.to_owned() }
}

fn expired_page() -> WebError {
    json_error(StatusCode::BAD_REQUEST, "expired", "This page has expired. Please reload it and try again.")
}

fn not_signed_in() -> WebError {
    json_error(StatusCode::UNAUTHORIZED, "login_required", "You are not signed in. Please sign in again.")
}

/// A sign-in error in this endpoint's JSON.
fn login_error(error: LoginError) -> WebError {
    match error {
        LoginError::Store(error) => error.into(),
        LoginError::Passkey(error) => passkey_error(error),
        LoginError::Expired => passkey_error(PasskeyError::Expired),
        LoginError::InvalidCredentials => passkey_error(PasskeyError::Refused),
        LoginError::Locked => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            "Too many sign-in attempts from your network just now. Please wait a few minutes.",
        ),
        LoginError::Busy => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Too many sign-ins at once; nothing was checked. Please try again in a moment.",
        ),
        LoginError::WrongStep => passkey_error(PasskeyError::Expired),
        LoginError::Password(error) => {
            tracing::error!(%error, "sign-in failed internally");
            json_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Please try again.")
        }
    }
}

fn passkey_error(error: PasskeyError) -> WebError {
    let description = error.to_string();
    match error {
        PasskeyError::Store(error) => error.into(),
        PasskeyError::Unavailable => json_error(StatusCode::NOT_FOUND, "unavailable", &description),
        PasskeyError::Expired => json_error(StatusCode::BAD_REQUEST, "expired", &description),
        PasskeyError::Refused => json_error(StatusCode::UNAUTHORIZED, "access_denied", &description),
        PasskeyError::Duplicate => json_error(StatusCode::CONFLICT, "duplicate", &description),
        PasskeyError::InvalidName => json_error(StatusCode::BAD_REQUEST, "invalid_request", &description),
    }
}
