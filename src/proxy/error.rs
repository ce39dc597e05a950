//! What can go wrong in forward auth. Nothing here knows about HTTP;
//! `web::error` turns each variant into a response, in one place.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The proxy did not say which URL was requested (or said it in a way
    /// that cannot be trusted): its configuration needs fixing.
    #[error("forward auth is misconfigured: {0}")]
    Misconfigured(String),
    /// The URL belongs to no registered proxy app. Never redirected to.
    #[error("{origin} is not the external URL of any proxy app")]
    NotRegistered { origin: String },
    /// `rd` or a parameter of the sign-in is missing or malformed.
    #[error("invalid sign-in request: {0}")]
    BadRequest(String),
    /// The code is unknown, expired, used, or not this browser's.
    #[error("the sign-in link has expired or was already used")]
    SignInExpired,
    /// A sign-out that did not come from the confirmation form Latch showed
    /// this browser (a link or a form on another site, or an old form).
    #[error("the sign-out was not confirmed")]
    SignOutUnconfirmed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ProxyResult<T> = Result<T, ProxyError>;
