//! Protocol errors, carrying the registered OAuth 2.0 error codes. They know
//! nothing of HTTP; `web::error` maps them to responses in one place.

use std::borrow::Cow;

use crate::crypto::keys::KeyError;
use crate::store::StoreError;

/// RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, OIDC Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    InvalidToken,
    RequestNotSupported,
    RequestUriNotSupported,
    LoginRequired,
    ConsentRequired,
    /// OIDC Core §3.1.2.6: `prompt=none`, and the request needs the person
    /// (a second factor for this app).
    InteractionRequired,
    UnsupportedTokenType,
    /// RFC 8628 §3.5, while a device polls.
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::InvalidToken => "invalid_token",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
        }
    }
}

/// An error the client is told about in the protocol's own format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    /// Plain ASCII without `"` or `\`, so it can go into JSON and
    /// `WWW-Authenticate` unescaped (RFC 6749 §5.2).
    pub description: Cow<'static, str>,
}

impl OAuthError {
    /// Characters RFC 6749 §5.2 does not allow in a description (which may
    /// quote a client's input) become `?`.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let description = description.into();
        let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e');
        let description = if description.chars().all(allowed) {
            description
        } else {
            Cow::Owned(description.chars().map(|c| if allowed(c) { c } else { '?' }).collect())
        };
        Self { code, description }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set() {
        let error = OAuthError::new(ErrorCode::InvalidRequest, "the parameter a\"b\\c\u{e9} was repeated");
        assert_eq!(error.description, "the parameter a?b?c? was repeated");
    }
}

/// A failure that is Latch's, not the client's.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Signing(#[from] KeyError),
}

/// The result of a protocol step: the client's fault, or ours.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Client(#[from] OAuthError),
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl From<StoreError> for ProtocolError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.into())
    }
}

impl From<KeyError> for ProtocolError {
    fn from(error: KeyError) -> Self {
        Self::Internal(error.into())
    }
}

pub type ProtocolResult<T> = Result<T, ProtocolError>;

pub fn client_error<T>(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> ProtocolResult<T> {
    Err(ProtocolError::Client(OAuthError::new(code, description)))
}
