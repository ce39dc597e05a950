//! Assembling and running the server from a `Config`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin::invites::OneTimeLink;
use crate::audit::Auditor;
use crate::clock::Clock;
use crate::cluster::{self, ThisInstance};
use crate::config::Config;
use crate::connections::{self, ConnectionLimits};
use crate::crypto::keys::KeyError;
use crate::crypto::password::{PasswordError, PasswordHasher};
use crate::crypto::random_token;
use crate::crypto::signing_threads::SigningThreads;
use crate::ldap::{self, Directory, LdapListeners};
use crate::login::csrf::CsrfKey;
use crate::login::{Authenticator, Limits};
use crate::logout_delivery::{self, DeliveryError};
use crate::metrics::Metrics;
use crate::oidc::error::InternalError;
use crate::oidc::keyring::Keys;
use crate::oidc::{Lifetimes, Provider};
use crate::proxy::ForwardAuth;
use crate::store::{Store, StoreError};
use crate::web::cookies::CookiePolicy;
use crate::web::{AppState, metrics_router, router};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] InternalError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("cannot start the signing threads: {0}")]
    Signing(#[from] KeyError),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("cannot make the first-run setup link: {0}")]
    Setup(#[from] crate::admin::AdminError),
    #[error("cannot listen on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Ldap(#[from] ldap::ListenError),
    #[error("bad ldap_base_dn: {0}")]
    BaseDn(String),
}

/// How often each instance checks the store for new or retiring keys. A
/// rotation's grace period must be longer, so that every instance publishes
/// a key before any instance signs with it.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// How often expired rows are cleared away.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: axum::Router,
    metrics_router: Option<axum::Router>,
    limits: ConnectionLimits,
    store: Store,
    clock: Clock,
    /// This instance's id in the cluster view: its heartbeat is removed on a clean stop.
    instance_id: String,
    background: Vec<JoinHandle<()>>,
    audit_writer: JoinHandle<()>,
    /// The LDAP listeners and what they serve, when LDAP is on.
    ldap: Option<(LdapListeners, Arc<Directory>)>,
    setup_link: Option<OneTimeLink>,
}

impl Server {
    /// Raises the open files limit (see `connections`), binds
    /// `config.listen` (and `config.metrics_listen`), then builds as
    /// `with_listener`.
    pub async fn build(config: &Config) -> Result<Self, StartError> {
        let open_files = connections::raise_open_files_limit();
        tracing::info!(open_files = %open_files.map_or("unlimited".to_owned(), |limit| limit.to_string()), "open files limit");
        let listener = bind(config.listen).await?;
        let mut server = Self::with_listener(config, listener).await?;
        if let Some(address) = config.metrics_listen {
            server.metrics_listener = Some(bind(address).await?);
        }
        Ok(server)
    }

    /// Connects to the store (migrating it) and loads or creates the
    /// signing key. The listener is the caller's, so tests can learn the
    /// port before choosing the public URL.
    pub async fn with_listener(config: &Config, listener: TcpListener) -> Result<Self, StartError> {
        let store = Store::connect_with(&config.database_url, config.secret_key.clone()).await?;
        let clock = Clock::default();
        let keys = Arc::new(Keys::load(&store, clock.now()).await?);
        let setup_link = crate::admin::setup::first_run_link(&store, &config.public_url, clock.now()).await?;
        let (auditor, audit_writer) = Auditor::start(store.clone(), clock.clone());
        let provider = Arc::new(Provider::new(
            store.clone(),
            keys.clone(),
            config.public_url.clone(),
            Lifetimes {
                code: config.code_ttl,
                access_token: config.access_token_ttl,
                refresh_token: config.refresh_token_ttl,
            },
            auditor.clone(),
            SigningThreads::start()?,
            config.mfa,
        ));
        let (logout_delivery, delivery_worker) =
            logout_delivery::start(store.clone(), provider.clone(), auditor.clone(), clock.clone())?;
        let database_id = store.database_id().await?;
        let listen = listener.local_addr().map_or_else(|_| "unknown".to_owned(), |address| address.to_string());
        let this = ThisInstance::new(listen, database_id.clone(), clock.now());
        let mut metrics = Metrics::new();
        metrics.describe_instance(&this);
        let metrics = Arc::new(metrics);
        let instance_id = this.id.clone();
        let hasher = PasswordHasher::for_this_machine()?;
        let limits = Limits::from_config(&config.throttle);
        let authenticator = Arc::new(Authenticator::new(
            store.clone(),
            hasher,
            config.session_ttl,
            limits,
            config.public_url.as_str(),
            config.mfa.required_by_default,
        ));
        let ldap =
            match LdapListeners::bind(config.ldap.listen, config.ldap.ldaps_listen, config.ldap.tls.as_ref()).await? {
                Some(listeners) => {
                    let tree = ldap::dn::Tree::new(&config.ldap.base_dn).map_err(StartError::BaseDn)?;
                    let starttls = listeners.has_tls();
                    let directory = Directory::new(
                        tree,
                        store.clone(),
                        authenticator.clone(),
                        auditor.clone(),
                        metrics.clone(),
                        clock.clone(),
                        starttls,
                    );
                    Some((listeners, Arc::new(directory)))
                }
                None => None,
            };
        let state = AppState {
            clock: clock.clone(),
            provider,
            logout_delivery,
            authenticator,
            cookies: CookiePolicy::for_public_url(&config.public_url),
            csrf: Arc::new(CsrfKey::new(store.deployment_secret("csrf_key", &random_token()).await?.as_bytes())),
            forward_auth: Arc::new(ForwardAuth::new(store.clone(), config.public_url.clone(), config.mfa)),
            mfa: config.mfa,
            store: store.clone(),
            metrics: metrics.clone(),
            database_id: database_id.into(),
            auditor,
            trusted_proxies: config.trusted_proxies.clone().into(),
            config: Arc::new(config.clone()),
            body_read_timeout: config.connections.body_read_timeout,
            mailer: config.mailer.clone(),
            public_url: config.public_url.clone(),
        };
        let separate_metrics = config.metrics_listen.is_some();
        let background = vec![
            tokio::spawn(refresh_keys(keys, store.clone(), clock.clone())),
            tokio::spawn(housekeeping(store.clone(), config.event_retention, clock.clone())),
            cluster::start_heartbeat(store.clone(), clock.clone(), this, metrics),
            delivery_worker,
        ];
        Ok(Self {
            listener,
            metrics_listener: None,
            router: router(state.clone(), !separate_metrics),
            metrics_router: separate_metrics.then(|| metrics_router(state)),
            limits: config.connections.within_open_files(connections::open_files_limit()),
            store,
            clock,
            instance_id,
            background,
            audit_writer,
            ldap,
            setup_link,
        })
    }

    /// The plain LDAP listener's address, when LDAP is on.
    pub fn ldap_addr(&self) -> Option<SocketAddr> {
        self.ldap.as_ref().and_then(|(listeners, _)| listeners.plain_addr())
    }

    /// The LDAPS listener's address, when configured.
    pub fn ldaps_addr(&self) -> Option<SocketAddr> {
        self.ldap.as_ref().and_then(|(listeners, _)| listeners.ldaps_addr())
    }

    /// The clock this server runs by; moving it moves every request's time.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// The first-run setup link (`<public_url>/setup/<token>`) made at
    /// start because no one is an administrator yet; `None` when someone is.
    pub fn setup_link(&self) -> Option<&OneTimeLink> {
        self.setup_link.as_ref()
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; then stops accepting, lets
    /// in-flight requests finish (for at most `SHUTDOWN_GRACE`), writes the
    /// queued audit events, removes this instance from the cluster view
    /// and closes the pool.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut signalled = stopped.clone();
        let signalled = async move {
            let _ = signalled.wait_for(|stop| *stop).await;
        };
        if let (Some(listener), Some(router)) = (self.metrics_listener, self.metrics_router) {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let until = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(error) = connections::serve(listener, router, self.limits, until).await {
                    tracing::error!(%error, "metrics listener failed");
                }
            });
        }
        let mut background = self.background;
        if let Some((listeners, directory)) = self.ldap {
            background.push(listeners.serve(directory, self.limits.max_connections));
        }
        let serving = tokio::spawn(connections::serve(self.listener, self.router, self.limits, signalled));
        shutdown.await;
        let _ = stop.send(true);
        let result = match tokio::time::timeout(SHUTDOWN_GRACE, serving).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => {
                tracing::warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}; stopping anyway");
                Ok(())
            }
        };
        for task in background {
            task.abort();
        }
        // The router (and with it every audit sender) is gone: the writer
        // drains the queue and ends.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.audit_writer).await;
        if let Err(error) = self.store.remove_instance(&self.instance_id).await {
            tracing::warn!(%error, "could not remove this instance from the cluster view");
        }
        self.store.close().await;
        result
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(address).await.map_err(|source| StartError::Listen { address, source })
}

async fn refresh_keys(keys: Arc<Keys>, store: Store, clock: Clock) {
    let mut interval = tokio::time::interval(KEY_REFRESH_INTERVAL);
    loop {
        interval.tick().await;
        if let Err(error) = keys.refresh(&store, clock.now()).await {
            tracing::warn!(%error, "could not refresh signing keys");
        }
    }
}

async fn housekeeping(store: Store, event_retention: Duration, clock: Clock) {
    let retention = i64::try_from(event_retention.as_secs()).unwrap_or(i64::MAX);
    let mut interval = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        interval.tick().await;
        let now = clock.now();
        match store.delete_expired(now, now.saturating_sub(retention)).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "expired rows deleted"),
            Err(error) => tracing::warn!(%error, "housekeeping failed"),
        }
    }
}
