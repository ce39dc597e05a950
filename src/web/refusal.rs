//! Requests refused before a handler could answer them: a body over the
//! limit, or too slow to arrive; a method the route does not take; a path
//! parameter that is not UTF-8; an address with no route. The framework
//! would answer those in plain text or with an empty body; here they get
//! the format of the endpoint asked (`web::error`), like every other error.

use std::time::Duration;

use axum::body::HttpBody;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::ALLOW;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::{InFormat, WebError};

/// Request bodies larger than this are refused with 413: no OAuth or login
/// form comes near it.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How a group of endpoints states its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// RFC 6749 §5.2 JSON: token, revocation, introspection, discovery, JWKS.
    OAuth,
    /// RFC 6750 §3 `WWW-Authenticate: Bearer` with JSON: UserInfo.
    Bearer,
    /// An HTML page: whatever a browser shows.
    Page,
    /// Plain text: health and metrics, read by machines and operators.
    Plain,
}

/// The state of `in_format`.
#[derive(Debug, Clone, Copy)]
pub struct Refusals {
    pub format: ErrorFormat,
    /// From the end of the request header to the end of its body.
    pub body_read_timeout: Duration,
}

/// Middleware: reads the request body (at most `MAX_BODY_BYTES`, within
/// `body_read_timeout`: 413 or 408 otherwise) before the handler runs, and
/// restates in `format` any error response that did not come from Latch's
/// own error mapping (`InFormat` marks those).
pub async fn in_format(State(refusals): State<Refusals>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, refusals.body_read_timeout).await {
        Ok(body) => body,
        Err(status) => return refused(refusals.format, status),
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || response.extensions().get::<InFormat>().is_some() {
        return response;
    }
    let mut restated = refused(refusals.format, status);
    if let Some(allow) = response.headers().get(ALLOW) {
        restated.headers_mut().insert(ALLOW, allow.clone());
    }
    restated
}

/// The whole body: at most `MAX_BODY_BYTES` (413) within `timeout` (408).
/// A body already known to be empty (a GET, a HEAD) is not read, which
/// spares most requests the timer.
async fn read_body(body: Body, timeout: Duration) -> Result<Bytes, StatusCode> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    // A declared length over the limit is refused before reading anything.
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<LengthLimitError>() => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Err(error)) => {
            tracing::debug!(%error, "could not read a request body");
            Err(StatusCode::BAD_REQUEST)
        }
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
    }
}

/// The router's fallback: an address with no route is a page.
pub async fn not_found() -> Response {
    refused(ErrorFormat::Page, StatusCode::NOT_FOUND)
}

fn refused(format: ErrorFormat, status: StatusCode) -> Response {
    let (title, description) = match status {
        StatusCode::NOT_FOUND => ("Page not found", "There is nothing at this address.".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("Method not allowed", "This address does not take this request method.".to_owned())
        }
        StatusCode::REQUEST_TIMEOUT => ("Request too slow", "The request body did not arrive in time.".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("Request too large", format!("The request body is larger than {} KiB.", MAX_BODY_BYTES / 1024))
        }
        status if status.is_server_error() => {
            ("Something went wrong", "The server could not complete the request.".to_owned())
        }
        _ => ("Invalid request", "The request could not be read.".to_owned()),
    };
    WebError::Refused { format, status, title, description }.into_response()
}
