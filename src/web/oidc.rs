//! Handlers for the OpenID Connect endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, PRAGMA, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::cookies;
use super::error::WebError;
use super::login::{csrf_posted, csrf_token_for, step_up};
use super::ops::Requester;
use super::pages::{ConsentPage, FORM_POST_SCRIPT, FormPostPage, LogoutPage, MessagePage, form_post_csp, render};
use super::{AppState, redirect};
use crate::login::sign_in_url;
use crate::oidc::authorize::{AuthorizeOutcome, ConsentDecision};
use crate::oidc::claims::scope_description;
use crate::oidc::client_auth::parse_basic;
use crate::oidc::end_session::LogoutOutcome;
use crate::oidc::error::{ErrorCode, OAuthError, ProtocolError};
use crate::oidc::params::{Params, decode_pairs, has_control_character};
use crate::oidc::values::ResponseMode;
use crate::store::{App, SessionUser};
use crate::text::printable;

fn form_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    decode_pairs(raw).map_err(|error| error.to_string())
}

const FORM: &str = "application/x-www-form-urlencoded";

/// The parameters of a POST body, which OAuth sends form-encoded (RFC 6749
/// §3.2, RFC 7009 §2.1, RFC 7662 §2.1, RFC 6750 §2.2). An empty body has
/// none, whatever its `Content-Type`. `Err` says why a non-empty body is
/// not a form: the media type it declares, or that it declares none, so
/// that a JSON body is not answered with "grant_type is required".
fn form_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(format!("the request body has no Content-Type; it must be sent as {FORM}"));
    };
    let media_type = value.to_str().map(|value| value.split(';').next().unwrap_or_default().trim());
    match media_type {
        Ok(media_type) if media_type.eq_ignore_ascii_case(FORM) => form_pairs(body),
        Ok(media_type) => Err(format!("the request body is {media_type}; it must be sent as {FORM}")),
        Err(_) => Err(format!("the Content-Type header is not ASCII; the request body must be sent as {FORM}")),
    }
}

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes())
        .map_err(|why| WebError::page(StatusCode::BAD_REQUEST, "Invalid request", why))?;
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
    let mut pairs = form_body(&headers, &body)
        .map_err(|why| WebError::page(StatusCode::BAD_REQUEST, "This sign-in request is not valid", why))?;
    let decision = take(&mut pairs, CONSENT_FIELD);
    let csrf = take(&mut pairs, "csrf_token");
    let decision = match decision.as_deref() {
        None => None,
        Some(answer) => {
            if !csrf_posted(&state, &headers, csrf.as_deref()) {
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
    let now = state.clock.now();
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
            redirect(&sign_in_url(&next, login_hint.as_deref()))
        }
        AuthorizeOutcome::SecondFactor { app_name, session, resume } => {
            let next =
                format!("/application/o/authorize/?{}", serde_urlencoded::to_string(&resume).unwrap_or_default());
            step_up(&state, headers, &session, &next, &app_name).await?
        }
        AuthorizeOutcome::Consent { app_name, scopes, resume } => {
            let (csrf_token, set_cookie) = csrf_token_for(&state, headers);
            let scopes: Vec<_> = scopes.iter().map(|scope| (scope.as_str(), scope_description(*scope))).collect();
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
    match state.cookies.read(headers, cookies::SESSION) {
        Some(token) => Ok(state.authenticator.session(&token, now).await?),
        None => Ok(None),
    }
}

/// The parameters and authenticated client of a token-endpoint-style
/// request (token, revocation, introspection, device authorization).
pub(super) async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(App, Params, bool), WebError> {
    let basic = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let parsed = value
                .to_str()
                .map_err(|_| OAuthError::new(ErrorCode::InvalidClient, "the Authorization header is not ASCII"));
            Some(parsed.and_then(parse_basic).map_err(|error| WebError::Token { error, basic_auth: true })?)
        }
    };
    let basic_auth = basic.is_some();
    let invalid_request = |description: String| WebError::Token {
        error: OAuthError::new(ErrorCode::InvalidRequest, description),
        basic_auth,
    };
    let pairs = form_body(headers, body).map_err(invalid_request)?;
    let params = Params::from_pairs(pairs).map_err(|error| invalid_request(error.to_string()))?;
    let app = state.provider.authenticate_client(basic.as_ref(), &params).await.map_err(WebError::token(basic_auth))?;
    Ok((app, params, basic_auth))
}

/// Another method than POST at the token, revocation or introspection
/// endpoint (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1): 405 with
/// `Allow: POST` and an RFC 6749 §5.2 body that says so.
pub async fn post_only(method: Method) -> Response {
    let description = format!("this endpoint takes POST with a form body, not {method}");
    let error = OAuthError::new(ErrorCode::InvalidRequest, description);
    let mut response = WebError::Token { error, basic_auth: false }.into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
    response
}

pub(super) fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
    let (grant_type, response) = state.provider.token(&app, &params, now).await.map_err(WebError::token(basic_auth))?;
    state.metrics.token_issued(grant_type);
    Ok(no_store(Json(response).into_response()))
}

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
    state.provider.revoke(&app, &params, now).await.map_err(WebError::token(basic_auth))?;
    Ok(no_store(StatusCode::OK.into_response()))
}

pub async fn introspect(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = state.clock.now();
    let (app, params, basic_auth) = authenticated(&state, &headers, &body).await?;
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
    let mut pairs = form_pairs(query.unwrap_or_default().as_bytes())
        .map_err(|why| WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-out request", why))?;
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
    let mut pairs = form_body(&headers, &body)
        .map_err(|why| WebError::page(StatusCode::BAD_REQUEST, "Invalid sign-out request", why))?;
    let confirmed = take(&mut pairs, LOGOUT_FIELD).is_some();
    let csrf = take(&mut pairs, "csrf_token");
    if confirmed && !csrf_posted(&state, &headers, csrf.as_deref()) {
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
    let now = state.clock.now();
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
            let (csrf_token, set_cookie) = csrf_token_for(&state, headers);
            let action = format!("/application/o/{slug}/end-session/");
            let app_name = printable(&app_name);
            let page = LogoutPage { app_name: &app_name, action: &action, params: &pairs, csrf_token: &csrf_token };
            let page = render(StatusCode::OK, &page);
            return Ok((AppendHeaders(set_cookie.map(|cookie| (SET_COOKIE, cookie))), page).into_response());
        }
        LogoutOutcome::Redirect(target) => redirect(&target),
        LogoutOutcome::SignedOut { not_returned } => {
            let message = match not_returned {
                Some(why) => format!("You are signed out of Latch. The app asked to send you back to it. {why}"),
                None => "You are signed out of Latch.".to_owned(),
            };
            render(StatusCode::OK, &MessagePage { title: "Signed out", message: &message, is_error: false })
        }
    };
    if let Some(session) = &session {
        state.logout_delivery.wake();
        state.auditor.record("logout", &requester.actor(Some(&session.username), Some(slug)), None);
    }
    let clear = state.cookies.build(cookies::SESSION, "", 0);
    Ok((AppendHeaders([(SET_COOKIE, clear)]), response).into_response())
}

pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let token = bearer_token(&headers, query.as_deref(), &body)?;
    let claims = state.provider.userinfo(&token, now).await.map_err(WebError::bearer)?;
    let mut response = Json(claims).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// RFC 6750 §2.1 (header) or §2.2 (form body); both at once is an error,
/// and so is §2.3 (the URL query), which leaks tokens into logs. Each
/// refusal names its cause.
fn bearer_token(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<String, WebError> {
    let invalid = |description: String| WebError::Bearer(Some(OAuthError::new(ErrorCode::InvalidRequest, description)));
    if form_pairs(query.unwrap_or_default().as_bytes())
        .unwrap_or_default()
        .iter()
        .any(|(name, _)| name == "access_token")
    {
        return Err(invalid(
            "access_token in the URL query is not accepted; send it in the Authorization header".into(),
        ));
    }
    let from_header = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().map_err(|_| invalid("the Authorization header is not ASCII".into()))?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(invalid("the Authorization header must use the Bearer scheme".into()));
            }
            if token.trim().is_empty() {
                return Err(invalid("the Authorization header has no token after Bearer".into()));
            }
            Some(token.trim().to_owned())
        }
    };
    let from_body = match form_body(headers, body) {
        Ok(pairs) => {
            let params = Params::from_pairs(pairs).map_err(|error| invalid(error.to_string()))?;
            params.get("access_token").map(str::to_owned)
        }
        // A body that is no form carries no token; that matters only when
        // the header carries none either.
        Err(why) if from_header.is_none() => return Err(invalid(why)),
        Err(_) => None,
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => {
            Err(invalid("the access token was sent both in the Authorization header and in the body".into()))
        }
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
    let document = state.provider.discovery(slug, state.clock.now()).await.map_err(WebError::not_found)?;
    Ok(Json(document).into_response())
}

/// Discovery at the root of the host: Latch has one issuer per app, so the
/// 404 says where the documents are.
pub async fn discovery_at_root() -> WebError {
    WebError::NotFound(
        "Latch has one issuer per application: its discovery document is at \
         /application/o/<slug>/.well-known/openid-configuration",
    )
}

pub async fn jwks(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let slug = known_slug(&slug).ok_or(NO_SUCH_APP)?;
    let jwks = state.provider.jwks(slug, state.clock.now()).await.map_err(WebError::not_found)?;
    Ok(([(CONTENT_TYPE, "application/json")], jwks.to_string()).into_response())
}
