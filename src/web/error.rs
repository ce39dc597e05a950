//! The one place where errors become HTTP responses. Each protocol has its
//! own error format: JSON for the token endpoint (RFC 6749 §5.2),
//! `WWW-Authenticate` for bearer tokens (RFC 6750 §3), HTML for pages a
//! person sees. Internal causes are logged, never sent.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::pages::error_page;
use super::refusal::ErrorFormat;
use crate::admin::{AdminError, ErrorClass};
use crate::login::LoginError;
use crate::oidc::error::{ErrorCode, InternalError, OAuthError, ProtocolError};
use crate::proxy::ProxyError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum WebError {
    /// Token endpoint: JSON body. `basic_auth` says whether the client used
    /// the Authorization header, which makes `invalid_client` carry a
    /// `WWW-Authenticate: Basic` challenge.
    Token {
        error: OAuthError,
        basic_auth: bool,
    },
    /// A protected resource: `None` when no token was presented at all.
    Bearer(Option<OAuthError>),
    /// A JSON resource (discovery, JWKS) that does not exist.
    NotFound(&'static str),
    /// A page a person reads.
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    Internal(InternalError),
    /// A request refused before its handler answered (`web::refusal`),
    /// with the status the framework or a limit chose.
    Refused {
        format: ErrorFormat,
        status: StatusCode,
        title: &'static str,
        description: String,
    },
}

/// Marks a response as already in its endpoint's error format, so that
/// `web::refusal` leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct InFormat;

impl WebError {
    pub fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Page { status, title, message: message.into() }
    }

    /// Maps a token-endpoint protocol error.
    pub fn token(basic_auth: bool) -> impl Fn(ProtocolError) -> Self {
        move |error| match error {
            ProtocolError::Client(error) => Self::Token { error, basic_auth },
            ProtocolError::Internal(error) => Self::Internal(error),
        }
    }

    pub fn bearer(error: ProtocolError) -> Self {
        match error {
            ProtocolError::Client(error) => Self::Bearer(Some(error)),
            ProtocolError::Internal(error) => Self::Internal(error),
        }
    }

    pub fn not_found(error: ProtocolError) -> Self {
        match error {
            ProtocolError::Client(_) => Self::NotFound("no such application"),
            ProtocolError::Internal(error) => Self::Internal(error),
        }
    }
}

impl From<InternalError> for WebError {
    fn from(error: InternalError) -> Self {
        Self::Internal(error)
    }
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.into())
    }
}

/// An admin operation refused or failed, as a page (the console shows a
/// refusal on its form instead, where it has one): the class gives the
/// status, an internal cause goes to the log only.
impl From<AdminError> for WebError {
    fn from(error: AdminError) -> Self {
        let (status, title) = match error.class() {
            ErrorClass::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            ErrorClass::Conflict => (StatusCode::CONFLICT, "Already exists"),
            ErrorClass::Invalid => (StatusCode::BAD_REQUEST, "Not accepted"),
            ErrorClass::Internal => {
                tracing::error!(%error, "admin operation failed internally");
                let message = "Latch could not finish this. Check whether the change was made, then try again.";
                return Self::page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", message);
            }
        };
        Self::page(status, title, error.to_string())
    }
}

/// Forward-auth failures are pages (the browser or the proxy's log shows
/// them), never redirects: a refused `rd` must not send anyone anywhere.
impl From<ProxyError> for WebError {
    fn from(error: ProxyError) -> Self {
        let bad_request = StatusCode::BAD_REQUEST;
        match error {
            ProxyError::Store(error) => error.into(),
            ProxyError::Misconfigured(message) => {
                tracing::warn!(%message, "forward auth: the proxy's configuration needs fixing");
                Self::page(bad_request, "Forward auth is misconfigured", message)
            }
            ProxyError::NotRegistered { origin } => {
                tracing::info!(%origin, "forward auth: refused a URL outside the proxy apps");
                let message = format!("{origin} is not the address of an app registered with Latch.");
                Self::page(bad_request, "Unknown app", message)
            }
            ProxyError::BadRequest(message) => Self::page(bad_request, "This sign-in link is not valid", message),
            ProxyError::SignInExpired => Self::page(
                bad_request,
                "This sign-in link has expired",
                "It was already used, is too old, or was opened in another browser. Open the app again to sign in.",
            ),
            ProxyError::SignOutUnconfirmed => Self::page(
                bad_request,
                "This sign-out form has expired",
                "You are still signed in. Open the sign-out page again to sign out.",
            ),
        }
    }
}

impl From<LoginError> for WebError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Store(error) => error.into(),
            LoginError::Busy => Self::page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many sign-ins at once",
                "Nothing was checked. Please try again in a moment.",
            ),
            other => {
                tracing::error!(error = %other, "sign-in failed internally");
                Self::page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again.")
            }
        }
    }
}

fn token_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut response = match self {
            Self::Token { error, basic_auth } => oauth_json(token_status(error.code), &error, basic_auth),
            Self::Bearer(error) => {
                let status = match &error {
                    Some(error) if error.code == ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNAUTHORIZED,
                };
                bearer_challenge(status, error.as_ref())
            }
            Self::NotFound(message) => (StatusCode::NOT_FOUND, Json(json!({"error": message}))).into_response(),
            Self::Page { status, title, message } => error_page(status, title, &message),
            Self::Internal(error) => internal_response(&error),
            Self::Refused { format, status, title, description } => {
                let error = OAuthError::new(ErrorCode::InvalidRequest, description);
                match format {
                    ErrorFormat::OAuth => oauth_json(status, &error, false),
                    ErrorFormat::Bearer => bearer_challenge(status, Some(&error)),
                    ErrorFormat::Page => error_page(status, title, &error.description),
                    ErrorFormat::Plain => (status, error.description.into_owned()).into_response(),
                }
            }
        };
        response.extensions_mut().insert(InFormat);
        response
    }
}

/// RFC 6749 §5.2: a JSON error body, never cached.
fn oauth_json(status: StatusCode, error: &OAuthError, basic_auth: bool) -> Response {
    let body = Json(json!({"error": error.code.as_str(), "error_description": error.description}));
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    if error.code == ErrorCode::InvalidClient && basic_auth {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"latch\""));
    }
    response
}

/// RFC 6750 §3: a `WWW-Authenticate: Bearer` challenge, naming the error
/// when there is one (none when no token was presented at all).
fn bearer_challenge(status: StatusCode, error: Option<&OAuthError>) -> Response {
    let challenge = match error {
        None => "Bearer realm=\"latch\"".to_owned(),
        Some(error) => format!(
            "Bearer realm=\"latch\", error=\"{}\", error_description=\"{}\"",
            error.code.as_str(),
            error.description
        ),
    };
    let body = match error {
        None => json!({"error": "unauthorized"}),
        Some(error) => json!({"error": error.code.as_str(), "error_description": error.description}),
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(challenge) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    response
}

/// 503 when the database is out of reach (the client may retry), 500
/// otherwise. The cause goes to the log only.
fn internal_response(error: &InternalError) -> Response {
    let unavailable = matches!(error, InternalError::Store(StoreError::Unavailable(_)));
    if unavailable {
        tracing::warn!(%error, "database unavailable");
    } else {
        tracing::error!(%error, "internal error");
    }
    let (status, code) = if unavailable {
        (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
    };
    let body = Json(json!({"error": code, "error_description": "the server could not complete the request"}));
    let mut response = (status, body).into_response();
    if matches!(error, InternalError::Store(_)) {
        response.extensions_mut().insert(super::ops::DatabaseFailure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(code: ErrorCode) -> OAuthError {
        OAuthError::new(code, "why")
    }

    #[test]
    fn invalid_client_is_401_with_a_basic_challenge_only_after_basic() {
        let response = WebError::Token { error: oauth(ErrorCode::InvalidClient), basic_auth: true }.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Basic realm=\"latch\"");
        let response = WebError::Token { error: oauth(ErrorCode::InvalidClient), basic_auth: false }.into_response();
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        let response = WebError::Token { error: oauth(ErrorCode::InvalidGrant), basic_auth: true }.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }

    #[test]
    fn bearer_errors_carry_rfc_6750_challenges() {
        let response = WebError::Bearer(None).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer realm=\"latch\"");
        let response = WebError::Bearer(Some(oauth(ErrorCode::InvalidToken))).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()[WWW_AUTHENTICATE].to_str().unwrap().contains("error=\"invalid_token\""));
    }

    #[test]
    fn an_unreachable_database_is_503() {
        let error = InternalError::Store(StoreError::Unavailable(sqlx::Error::PoolTimedOut));
        assert_eq!(WebError::Internal(error).into_response().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
