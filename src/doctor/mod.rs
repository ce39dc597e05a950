//! `latch doctor`: looks at the deployment from the outside in — through
//! `public_url`, as apps reach it — and at what the store recorded (audit
//! trail, heartbeats, keys), and says what is wrong and what to change.
//! `gather` does the I/O into `checks::Facts`; each check is a pure
//! function of them.

pub mod checks;
mod gather;

pub use checks::Problem;

use crate::config::Config;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up TLS for the requests to public_url: {0}")]
    Tls(#[from] rustls::Error),
    #[error("no OpenID Connect app named {0:?}")]
    NoSuchApp(String),
}

/// The problems of the deployment of `config` (its store open as `store`),
/// looking only at the app `only_app` when given. Errors when the store
/// cannot be read or `only_app` is no OIDC app; what `public_url` answers,
/// even nothing, is a finding, not an error.
pub async fn examine(store: &Store, config: &Config, only_app: Option<&str>) -> Result<Vec<Problem>, DoctorError> {
    let facts = gather::gather(store, config, only_app).await?;
    Ok(checks::all(&facts))
}
