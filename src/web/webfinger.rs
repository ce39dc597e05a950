//! `GET /.well-known/webfinger` (RFC 7033): parses the query, asks
//! `oidc::webfinger`, and answers `application/jrd+json`, errors in JSON
//! too. Any origin may read the answers (RFC 7033 §5): the route's layer
//! adds `Access-Control-Allow-Origin: *` to every response.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::{InFormat, WebError};
use crate::oidc::webfinger::{WebFingerError, WebFingerQuery};

/// RFC 7033 §10.2.
const JRD: &str = "application/jrd+json";

pub async fn webfinger(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let answer = match WebFingerQuery::parse(query.as_deref()) {
        Ok(query) => state.provider.webfinger(&query).await,
        Err(error) => Err(error),
    };
    match answer {
        Ok(jrd) => {
            let mut response = Json(jrd).into_response();
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JRD));
            // Who has an account changes; an answer must not outlive that.
            response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(WebFingerError::BadRequest(reason)) => refusal(StatusCode::BAD_REQUEST, "invalid_request", reason),
        Err(error @ WebFingerError::NotFound) => refusal(StatusCode::NOT_FOUND, "not_found", &error.to_string()),
        Err(WebFingerError::Store(error)) => WebError::from(error).into_response(),
    }
}

fn refusal(status: StatusCode, code: &str, description: &str) -> Response {
    let mut response = (status, Json(json!({"error": code, "error_description": description}))).into_response();
    response.extensions_mut().insert(InFormat);
    response
}
