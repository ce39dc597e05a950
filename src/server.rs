//! Assembling and running the server from a `Config`.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock;
use crate::config::Config;
use crate::crypto::password::{PasswordError, PasswordHasher};
use crate::login::Authenticator;
use crate::oidc::error::InternalError;
use crate::oidc::keyring::Keys;
use crate::oidc::{Lifetimes, Provider};
use crate::proxy::ForwardAuth;
use crate::store::{Store, StoreError};
use crate::web::{AppState, router};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] InternalError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

pub struct Server {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    refresher: tokio::task::JoinHandle<()>,
}

/// How often each instance checks the store for new or retiring keys. A
/// rotation's grace period must be longer, so that every instance publishes
/// a key before any instance signs with it.
pub const KEY_REFRESH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

async fn refresh_keys(keys: Arc<Keys>, store: Store) {
    let mut interval = tokio::time::interval(KEY_REFRESH_INTERVAL);
    loop {
        interval.tick().await;
        if let Err(error) = keys.refresh(&store, clock::now()).await {
            tracing::warn!(%error, "could not refresh signing keys");
        }
    }
}

impl Server {
    /// Binds `config.listen`, then builds as `with_listener`.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen { address: config.listen, source })?;
        Self::with_listener(config, listener).await
    }

    /// Connects to the store (migrating it) and loads or creates the
    /// signing key. The listener is the caller's, so tests can learn the
    /// port before choosing the public URL.
    pub async fn with_listener(config: &Config, listener: TcpListener) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url).await?;
        let keys = Arc::new(Keys::load(&store, clock::now()).await?);
        let refresher = tokio::spawn(refresh_keys(keys.clone(), store.clone()));
        let provider = Provider::new(
            store.clone(),
            keys,
            config.public_url.clone(),
            Lifetimes {
                code: config.code_ttl,
                access_token: config.access_token_ttl,
                refresh_token: config.refresh_token_ttl,
            },
        );
        let hasher = PasswordHasher::for_this_machine()?;
        let authenticator = Authenticator::new(store.clone(), hasher, config.session_ttl);
        let state = AppState {
            provider: Arc::new(provider),
            authenticator: Arc::new(authenticator),
            secure_cookies: config.public_url.is_https(),
            forward_auth: Arc::new(ForwardAuth::new(store.clone(), config.public_url.clone())),
        };
        Ok(Self { listener, router: router(state), store, refresher })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests
    /// and closes the pool.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let result = axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await;
        self.refresher.abort();
        self.store.close().await;
        result
    }
}
