//! The device authorization grant over HTTP (RFC 8628): the device
//! authorization endpoint a device calls, and `/device`, where a signed-in
//! person types the device's user code and approves or denies. The protocol
//! steps are in `oidc::device`.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::error::WebError;
use super::login::{csrf_posted, csrf_token_for, step_up};
use super::oidc::{authenticated, current_session, no_store};
use super::ops::Requester;
use super::pages::{MessagePage, render};
use super::{AppState, redirect};
use crate::oidc::claims::scope_description;
use crate::oidc::device::{Decision, DeviceOutcome, DeviceRequest, UserCode, UserCodeError};
use crate::oidc::params::{Params, decode_pairs};
use crate::text::printable;

/// `POST /application/o/device/` (RFC 8628 §3.1): the client authenticates
/// as at the token endpoint; errors are RFC 6749 §5.2 JSON.
pub async fn authorize(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
    let codes = state.provider.authorize_device(&app, &params, now).await.map_err(WebError::token(basic_auth))?;
    Ok(no_store(Json(codes).into_response()))
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    csrf_token: &'a str,
    /// As typed, or normalized once it named a request.
    user_code: &'a str,
    error: Option<&'a str>,
    /// The request the code names, to approve or deny; `None`: ask for a code.
    request: Option<Confirmation<'a>>,
}

struct Confirmation<'a> {
    app_name: &'a str,
    /// Each scope with what it hands the app, in words.
    scopes: Vec<(&'static str, &'static str)>,
    admitted: bool,
}

/// `GET /device[?user_code=…]` (RFC 8628 §3.3): the form for the code,
/// filled in from `verification_uri_complete`. It only shows the code: the
/// person confirms it matches the device's by posting it (§5.4), and only
/// posting it looks it up (and counts against the guess limit).
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let query = params(query.unwrap_or_default().as_bytes())?;
    let typed = query.get("user_code").unwrap_or_default();
    if current_session(&state, &headers, state.clock.now()).await?.is_none() {
        return Ok(sign_in_first(typed));
    }
    let shown = UserCode::parse(typed).map_or_else(|| typed.to_owned(), |code| code.display());
    Ok(show(&state, &headers, StatusCode::OK, &shown, None, None))
}

/// `POST /device`: a code to look up, or (with `decision`) the answer to
/// the request it names.
pub async fn submit(
    State(state): State<AppState>,
    requester: Requester,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let form = params(&body)?;
    let typed = form.get("user_code").unwrap_or_default();
    if !csrf_posted(&state, &headers, form.get("csrf_token")) {
        let message = "This form has expired. Please enter the code again.";
        return Ok(show(&state, &headers, StatusCode::BAD_REQUEST, typed, Some(message), None));
    }
    let Some(session) = current_session(&state, &headers, now).await? else {
        return Ok(sign_in_first(typed));
    };
    let (provider, ip) = (&state.provider, &requester.ip);
    let shown = match form.get("decision") {
        None => match provider.device_request(typed, &session, ip, now).await {
            Ok(request) if request.needs_second_factor => {
                let back =
                    format!("/device?{}", serde_urlencoded::to_string([("user_code", typed)]).unwrap_or_default());
                return step_up(&state, &headers, &session, &back, &request.app_name).await;
            }
            looked_up => looked_up.map(|request| confirm(&state, &headers, &request)),
        },
        Some(decision @ ("approve" | "deny")) => {
            let approve = decision == "approve";
            provider.answer_device_request(typed, &session, approve, ip, now).await.map(|outcome| answered(&outcome))
        }
        Some(_) => {
            let message = "decision must be approve or deny.";
            return Err(WebError::page(StatusCode::BAD_REQUEST, "Invalid request", message));
        }
    };
    shown.or_else(|refused| refused_code(&state, &headers, typed, refused))
}

/// The form again, saying why the code led nowhere; a store failure is
/// ours, not the person's.
fn refused_code(
    state: &AppState,
    headers: &HeaderMap,
    typed: &str,
    refused: UserCodeError,
) -> Result<Response, WebError> {
    let message = refused.to_string();
    let status = match refused {
        UserCodeError::Store(error) => return Err(error.into()),
        UserCodeError::Malformed | UserCodeError::NotPending => StatusCode::BAD_REQUEST,
        UserCodeError::Locked => StatusCode::TOO_MANY_REQUESTS,
        UserCodeError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        UserCodeError::SecondFactorRequired => StatusCode::FORBIDDEN,
    };
    Ok(show(state, headers, status, typed, Some(&message), None))
}

/// The query or form; a repeated field or a control character is a 400 page.
fn params(raw: &[u8]) -> Result<Params, WebError> {
    decode_pairs(raw)
        .and_then(Params::from_pairs)
        .map_err(|error| WebError::page(StatusCode::BAD_REQUEST, "Invalid request", error.to_string()))
}

/// Not signed in: the sign-in page, then back here with the code kept.
fn sign_in_first(typed: &str) -> Response {
    let back = match typed {
        "" => "/device".to_owned(),
        typed => format!("/device?{}", serde_urlencoded::to_string([("user_code", typed)]).unwrap_or_default()),
    };
    redirect(&format!("/login?{}", serde_urlencoded::to_string([("next", back)]).unwrap_or_default()))
}

/// The page, reusing the browser's CSRF cookie or setting a new one.
fn show(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    user_code: &str,
    error: Option<&str>,
    request: Option<Confirmation<'_>>,
) -> Response {
    let (csrf_token, set_cookie) = csrf_token_for(state, headers);
    let page = render(status, &DevicePage { csrf_token: &csrf_token, user_code, error, request });
    (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), page).into_response()
}

/// Which app asks for what, with Approve (if the person may use it) and Deny.
fn confirm(state: &AppState, headers: &HeaderMap, request: &DeviceRequest) -> Response {
    let app_name = printable(&request.app_name);
    let scopes = request.scopes.iter().map(|scope| (scope.as_str(), scope_description(*scope))).collect();
    let confirmation = Confirmation { app_name: &app_name, scopes, admitted: request.admitted };
    show(state, headers, StatusCode::OK, &request.user_code, None, Some(confirmation))
}

fn answered(outcome: &DeviceOutcome) -> Response {
    let app_name = printable(&outcome.app_name);
    let (status, title, message) = match outcome.decision {
        Decision::Approved => (
            StatusCode::OK,
            "Device connected",
            format!("{app_name} on your device will be signed in as you within seconds. You can close this page."),
        ),
        Decision::Denied => (
            StatusCode::OK,
            "Device refused",
            format!("{app_name} on your device will not be signed in. You can close this page."),
        ),
        Decision::NotAllowed => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!("You are not allowed to use {app_name}, so the device was refused."),
        ),
    };
    render(status, &MessagePage { title, message: &message, is_error: status != StatusCode::OK })
}
