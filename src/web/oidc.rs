//! Handlers for the OpenID Connect endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, PRAGMA, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::cookies;
use super::error::WebError;
use super::login::{csrf_posted, csrf_token_for};
use super::ops::Requester;
use super::pages::{ConsentPage, FORM_POST_SCRIPT, FormPostPage, LogoutPage, MessagePage, form_post_csp, render};
use super::{AppState, redirect};
use crate::clock;
use crate::oidc::authorize::{AuthorizeOutcome, ConsentDecision, ResponseMode};
use crate::oidc::client_auth::parse_basic;
use crate::oidc::end_session::LogoutOutcome;
use crate::oidc::error::{ErrorCode, OAuthError, ProtocolError};
use crate::oidc::params::{Params, has_control_character};
use crate::store::{App, SessionUser};
use crate::text::printable;

fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(raw).unwrap_or_default()
}

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes());
    if pairs.iter().any(|(name, _)| name == CONSENT_FIELD) {
        return Err(WebError::page(StatusCode::BAD_REQUEST, "Invalid request", "Consent must be given with the form."));
    }
    authorize(state, &headers, pairs, None).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let mut pairs = form_pairs(&body);
    let decision = take(&mut pairs, CONSENT_FIELD);
    let csrf = take(&mut pairs, "csrf_token");
    let decision = match decision.as_deref() {
        None => None,
        Some(answer) => {
            if !csrf_posted(&headers, csrf.as_deref()) {
                let message = "This consent form has expired. Please start signing in to the app again.";
                return Err(WebError::page(StatusCode::BAD_REQUEST, "Form expired", message));
            }
            Some(if answer == "allow" { ConsentDecision::Allow } else { ConsentDecision::Deny })
        }
    };
    authorize(state, &headers, pairs, decision).await
}

/// The consent page's answer, posted back to the authorization endpoint.
const CONSENT_FIELD: &str = "latch_consent";

fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let position = pairs.iter().position(|(key, _)| key == name)?;
    Some(pairs.remove(position).1)
}

async fn authorize(
    state: AppState,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    decision: Option<ConsentDecision>,
) -> Result<Response, WebError> {
    let now = clock::now();
    let session = current_session(&state, headers, now).await?;
    let outcome = state.provider.authorize(Params::from_pairs(pairs), session.as_ref(), decision, now).await?;
    Ok(match outcome {
        AuthorizeOutcome::ErrorPage(message) => {
            tracing::info!(reason = %message, "authorization request refused");
            WebError::page(StatusCode::BAD_REQUEST, "This sign-in link is not valid", message).into_response()
        }
        AuthorizeOutcome::SignIn { login_hint, resume } => {
            let next =
                format!("/application/o/authorize/?{}", serde_urlencoded::to_string(&resume).unwrap_or_default());
            let mut login = vec![("next", next)];
            login.extend(login_hint.map(|hint| ("login_hint", hint)));
            redirect(&format!("/login?{}", serde_urlencoded::to_string(login).unwrap_or_default()))
        }
        AuthorizeOutcome::Consent { app_name, scopes, resume } => {
            let (csrf_token, set_cookie) = csrf_token_for(headers, state.secure_cookies);
            let page = render(
                StatusCode::OK,
                &ConsentPage {
                    app_name: &printable(&app_name),
                    scopes: &scopes,
                    resume: &resume,
                    csrf_token: &csrf_token,
                },
            );
            (AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), page).into_response()
        }
        AuthorizeOutcome::Respond(response) => match response.mode {
            ResponseMode::Query => redirect(&response.redirect_url()),
            ResponseMode::FormPost => {
                let page =
                    FormPostPage { action: &response.redirect_uri, params: &response.params, script: FORM_POST_SCRIPT };
                let mut page = render(StatusCode::OK, &page);
                if let Ok(csp) = HeaderValue::from_str(&form_post_csp()) {
                    page.headers_mut().insert(CONTENT_SECURITY_POLICY, csp);
                }
                page.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                page
            }
        },
    })
}

pub(super) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<SessionUser>, WebError> {
    match cookies::read(headers, cookies::SESSION) {
        Some(token) => Ok(state.authenticator.session(&token, now).await?),
        None => Ok(None),
    }
}

/// The parameters and authenticated client of a token-endpoint-style
/// request (token, revocation, introspection).
async fn authenticated(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(App, Params, bool), WebError> {
    let basic = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let parsed =
                value.to_str().map_err(|_| OAuthError::new(ErrorCode::InvalidClient, "malformed Authorization header"));
            Some(parsed.and_then(parse_basic).map_err(|error| WebError::Token { error, basic_auth: true })?)
        }
    };
    let basic_auth = basic.is_some();
    let params = Params::from_pairs(form_pairs(body)).map_err(|error| WebError::Token {
        error: OAuthError::new(ErrorCode::InvalidRequest, error.to_string()),
        basic_auth,
    })?;
    let app = state.provider.authenticate_client(basic.as_ref(), &params).await.map_err(WebError::token(basic_auth))?;
    Ok((app, params, basic_auth))
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = clock::now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
    let response = state.provider.token(&app, &params, now).await.map_err(WebError::token(basic_auth))?;
    state.metrics.token_issued(params.get("grant_type").unwrap_or_default());
    Ok(no_store(Json(response).into_response()))
}

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = clock::now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
    state.provider.revoke(&app, &params, now).await.map_err(WebError::token(basic_auth))?;
    Ok(no_store(StatusCode::OK.into_response()))
}

pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = clock::now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
    if app.is_public() {
        let error = OAuthError::new(ErrorCode::InvalidClient, "introspection requires a confidential client");
        return Err(WebError::Token { error, basic_auth });
    }
    let answer = state.provider.introspect(&app, &params, now).await.map_err(WebError::token(basic_auth))?;
    Ok(no_store(Json(answer).into_response()))
}

pub async fn end_session_get(
    State(state): State<AppState>,
    requester: Requester,
    Path(slug): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let mut pairs = form_pairs(query.unwrap_or_default().as_bytes());
    // Only the confirmation form, posted with its CSRF token, confirms.
    take(&mut pairs, LOGOUT_FIELD);
    end_session(state, requester, slug, &headers, pairs, false).await
}

pub async fn end_session_post(
    State(state): State<AppState>,
    requester: Requester,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let mut pairs = form_pairs(&body);
    let confirmed = take(&mut pairs, LOGOUT_FIELD).is_some();
    let csrf = take(&mut pairs, "csrf_token");
    if confirmed && !csrf_posted(&headers, csrf.as_deref()) {
        let message = "This sign-out form has expired. Please sign out from the app again.";
        return Err(WebError::page(StatusCode::BAD_REQUEST, "Form expired", message));
    }
    end_session(state, requester, slug, &headers, pairs, confirmed).await
}

/// The sign-out confirmation's answer, posted back to the end-session endpoint.
const LOGOUT_FIELD: &str = "latch_logout";

async fn end_session(
    state: AppState,
    requester: Requester,
    slug: String,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
    confirmed: bool,
) -> Result<Response, WebError> {
    let now = clock::now();
    let params = Params::from_pairs(pairs.clone())
        .map_err(|error| WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-out request", error.to_string()))?;
    let slug = known_slug(&slug)
        .ok_or_else(|| WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-out request", "No such application."))?;
    let session = current_session(&state, headers, now).await?;
    let outcome = state.provider.end_session(slug, &params, session.as_ref(), confirmed, now).await.map_err(
        |error| match error {
            ProtocolError::Client(error) => {
                WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-out request", error.description)
            }
            ProtocolError::Internal(error) => WebError::Internal(error),
        },
    )?;
    let response = match outcome {
        LogoutOutcome::Confirm { app_name } => {
            let (csrf_token, set_cookie) = csrf_token_for(headers, state.secure_cookies);
            let action = format!("/application/o/{slug}/end-session/");
            let app_name = printable(&app_name);
            let page = LogoutPage { app_name: &app_name, action: &action, params: &pairs, csrf_token: &csrf_token };
            let mut page = render(StatusCode::OK, &page);
            page.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Ok((AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), page).into_response());
        }
        LogoutOutcome::Redirect(target) => redirect(&target),
        LogoutOutcome::SignedOut => {
            let page = MessagePage { title: "Signed out", message: "You are signed out of Latch.", is_error: false };
            render(StatusCode::OK, &page)
        }
    };
    if let Some(session) = &session {
        state.auditor.record("logout", &requester.actor(Some(&session.username), Some(slug)), None);
    }
    let clear = cookies::build(cookies::SESSION, "", 0, state.secure_cookies);
    Ok((AppendHeaders([(SET_COOKIE, clear)]), response).into_response())
}

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = clock::now();
    let token = bearer_token(&headers, &body)?;
    let claims = state.provider.userinfo(&token, now).await.map_err(WebError::bearer)?;
    let mut response = Json(claims).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// RFC 6750 §2.1 (header) or §2.2 (form body); both at once is an error.
fn bearer_token(headers: &HeaderMap, body: &[u8]) -> Result<String, WebError> {
    let malformed =
        || WebError::Bearer(Some(OAuthError::new(ErrorCode::InvalidRequest, "malformed bearer token request")));
    let from_header = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| malformed())?;
            match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                    Some(token.trim().to_owned())
                }
                _ => return Err(malformed()),
            }
        }
    };
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let from_body = if is_form {
        Params::from_pairs(form_pairs(body)).map_err(|_| malformed())?.get("access_token").map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(malformed()),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(WebError::Bearer(None)),
    }
}

/// A slug from the path, or `None` when it holds a control character: no
/// app's slug does (`latch app add` allows `[a-z0-9_-]`), and PostgreSQL
/// refuses NUL in text where SQLite would look it up.
fn known_slug(slug: &str) -> Option<&str> {
    (!has_control_character("slug", slug)).then_some(slug)
}

const NO_SUCH_APP: WebError = WebError::NotFound("no such application");

pub async fn discovery(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let slug = known_slug(&slug).ok_or(NO_SUCH_APP)?;
    let document = state.provider.discovery(slug).await.map_err(WebError::not_found)?;
    Ok(Json(document).into_response())
}

pub async fn jwks(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let slug = known_slug(&slug).ok_or(NO_SUCH_APP)?;
    let jwks = state.provider.jwks(slug).await.map_err(WebError::not_found)?;
    Ok(([(CONTENT_TYPE, "application/json")], jwks.to_string()).into_response())
}
