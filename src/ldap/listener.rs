//! Accepting LDAP connections: plain (with StartTLS when a certificate is
//! configured) and LDAPS, each connection framed by `ldap3_proto`'s codec
//! and answered by a `Session`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::codec::Framed;

use super::session::{Directory, Reply, Session};
use crate::config::TlsFiles;

/// How long a connection may stay silent between requests. Mail servers
/// and NAS boxes keep a connection open and reuse it; a reconnect is cheap.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the LDAP listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot read {path}: {reason}")]
    TlsFile { path: String, reason: String },
    #[error("the LDAP certificate and key do not fit together: {0}")]
    TlsConfig(#[from] rustls::Error),
    #[error("cannot listen for LDAP on {address}: {source}")]
    Listen { address: SocketAddr, source: std::io::Error },
}

/// A byte stream a connection runs over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The bound LDAP listeners, before they serve.
pub struct LdapListeners {
    plain: Option<TcpListener>,
    ldaps: Option<TcpListener>,
    tls: Option<TlsAcceptor>,
}

impl LdapListeners {
    /// Binds what is configured; `None` when LDAP is off.
    pub async fn bind(
        listen: Option<SocketAddr>,
        ldaps_listen: Option<SocketAddr>,
        tls: Option<&TlsFiles>,
    ) -> Result<Option<Self>, ListenError> {
        if listen.is_none() && ldaps_listen.is_none() {
            return Ok(None);
        }
        let tls = tls.map(acceptor).transpose()?;
        let bind = |address: SocketAddr| async move {
            TcpListener::bind(address).await.map_err(|source| ListenError::Listen { address, source })
        };
        let plain = match listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let ldaps = match ldaps_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        Ok(Some(Self { plain, ldaps, tls }))
    }

    /// Whether StartTLS can be offered.
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The plain listener's address (tests listen on port 0).
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    pub fn ldaps_addr(&self) -> Option<SocketAddr> {
        self.ldaps.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until the returned task is aborted, which also ends every
    /// connection. At most `max_connections` are served at once; more wait
    /// to be accepted.
    pub fn serve(self, directory: Arc<Directory>, max_connections: u32) -> JoinHandle<()> {
        let permits = Arc::new(Semaphore::new(usize::try_from(max_connections).unwrap_or(usize::MAX)));
        let tls = self.tls;
        tokio::spawn(async move {
            let mut connections = JoinSet::new();
            let plain = accept_loop(self.plain, false, tls.clone(), directory.clone(), permits.clone());
            let ldaps = accept_loop(self.ldaps, true, tls, directory, permits);
            connections.spawn(plain);
            connections.spawn(ldaps);
            while connections.join_next().await.is_some() {}
        })
    }
}

/// Loads the PEM certificate chain and key into a TLS acceptor, with the
/// aws-lc-rs provider Latch signs with.
fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ListenError> {
    let unreadable = |path: &Path| {
        let path = path.display().to_string();
        move |error: rustls::pki_types::pem::Error| ListenError::TlsFile { path, reason: error.to_string() }
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(unreadable(&files.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable(&files.cert))?;
    if chain.is_empty() {
        let path = files.cert.display().to_string();
        return Err(ListenError::TlsFile { path, reason: "no certificate in it".into() });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(unreadable(&files.key))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: Option<TcpListener>,
    ldaps: bool,
    tls: Option<TlsAcceptor>,
    directory: Arc<Directory>,
    permits: Arc<Semaphore>,
) {
    let Some(listener) = listener else { return };
    let mut connections = JoinSet::new();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause, not spin.
                tracing::warn!(%error, "LDAP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (directory, tls) = (directory.clone(), tls.clone());
        connections.spawn(async move {
            serve_connection(stream, peer, ldaps, tls, directory).await;
            drop(permit);
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ldaps: bool,
    tls: Option<TlsAcceptor>,
    directory: Arc<Directory>,
) {
    let _ = stream.set_nodelay(true);
    let stream: Box<dyn Stream> = match (ldaps, &tls) {
        (true, Some(acceptor)) => match handshake(acceptor, stream).await {
            Some(stream) => stream,
            None => return,
        },
        (true, None) => return,
        (false, _) => Box::new(stream),
    };
    let mut session = Session::new(peer.ip().to_canonical().to_string(), ldaps);
    let mut framed = Framed::new(stream, LdapCodec::default());
    loop {
        let message = match tokio::time::timeout(IDLE_TIMEOUT, framed.next()).await {
            Ok(Some(Ok(message))) => message,
            // Closed, idle too long, or not LDAP: the connection ends.
            Ok(Some(Err(_)) | None) | Err(_) => return,
        };
        match directory.handle(&mut session, message).await {
            Reply::Send(messages) => {
                for message in messages {
                    if framed.feed(message).await.is_err() {
                        return;
                    }
                }
                if framed.flush().await.is_err() {
                    return;
                }
            }
            Reply::StartTls(response) => {
                let Some(acceptor) = &tls else { return };
                if framed.send(response).await.is_err() {
                    return;
                }
                let parts = framed.into_parts();
                // RFC 4511 §4.14.1: nothing may follow the request before
                // the handshake; bytes that did could be an injection.
                if !parts.read_buf.is_empty() {
                    return;
                }
                let Some(stream) = handshake(acceptor, parts.io).await else { return };
                session.tls = true;
                framed = Framed::new(stream, LdapCodec::default());
            }
            Reply::Close => return,
        }
    }
}

async fn handshake(acceptor: &TlsAcceptor, stream: impl Stream + 'static) -> Option<Box<dyn Stream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(error)) => {
            tracing::debug!(%error, "LDAP TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}
