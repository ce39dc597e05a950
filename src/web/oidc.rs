//! Handlers for the OpenID Connect endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::cookies;
use super::error::WebError;
use crate::clock;
use crate::oidc::authorize::AuthorizeOutcome;
use crate::oidc::client_auth::parse_basic;
use crate::oidc::error::{ErrorCode, OAuthError};
use crate::oidc::params::Params;
use crate::store::SessionUser;

fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(raw).unwrap_or_default()
}

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    authorize(state, &headers, form_pairs(query.unwrap_or_default().as_bytes())).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    authorize(state, &headers, form_pairs(&body)).await
}

async fn authorize(state: AppState, headers: &HeaderMap, pairs: Vec<(String, String)>) -> Result<Response, WebError> {
    let now = clock::now();
    let session = current_session(&state, headers, now).await?;
    let params = Params::from_pairs(pairs);
    let outcome = state.provider.authorize(params.clone(), session.as_ref(), now).await?;
    Ok(match outcome {
        AuthorizeOutcome::ErrorPage(message) => {
            tracing::info!(reason = %message, "authorization request refused");
            WebError::page(StatusCode::BAD_REQUEST, "This sign-in link is not valid", message).into_response()
        }
        AuthorizeOutcome::SignIn => {
            // Come back to the same request, as a GET, once signed in.
            let params = params.unwrap_or_default();
            let query = serde_urlencoded::to_string(params.sorted_pairs()).unwrap_or_default();
            let next = format!("/application/o/authorize/?{query}");
            let login = format!("/login?{}", serde_urlencoded::to_string([("next", next)]).unwrap_or_default());
            Redirect::to(&login).into_response()
        }
        AuthorizeOutcome::Redirect(target) => Redirect::to(&target).into_response(),
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

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let now = clock::now();
    let basic = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => {
            let parsed =
                value.to_str().map_err(|_| OAuthError::new(ErrorCode::InvalidClient, "malformed Authorization header"));
            Some(parsed.and_then(parse_basic).map_err(|error| WebError::Token { error, basic_auth: true })?)
        }
    };
    let to_web = WebError::token(basic.is_some());
    let params = Params::from_pairs(form_pairs(&body)).map_err(|repeated| WebError::Token {
        error: OAuthError::new(ErrorCode::InvalidRequest, format!("the parameter {repeated} was sent more than once")),
        basic_auth: basic.is_some(),
    })?;
    let app = state.provider.authenticate_client(basic.as_ref(), &params).await.map_err(&to_web)?;
    let response = state.provider.token(&app, &params, now).await.map_err(&to_web)?;
    let mut response = Json(response).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
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

pub async fn discovery(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let document = state.provider.discovery(&slug).await.map_err(WebError::not_found)?;
    Ok(Json(document).into_response())
}

pub async fn jwks(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let jwks = state.provider.jwks(&slug).await.map_err(WebError::not_found)?;
    Ok(([(CONTENT_TYPE, "application/json")], jwks.to_string()).into_response())
}
