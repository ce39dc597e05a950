//! Accepting and serving HTTP/1.1 connections within limits, so that clients
//! which connect and then send slowly or nothing at all cannot hold the
//! server: a connection must deliver each request header within
//! `header_read_timeout` of its first byte, may sit idle between requests
//! (or before the first) for at most `idle_timeout`, and at most
//! `max_connections` are served at once. The body-read timeout is enforced
//! where bodies are read (`web::refusal`), so that its answer can be in the
//! endpoint's format.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// The limits on each client connection (settings `header_read_timeout`,
/// `body_read_timeout`, `idle_timeout`, `max_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the first byte of a request to the end of its header.
    pub header_read_timeout: Duration,
    /// From the end of a request's header to the end of its body.
    pub body_read_timeout: Duration,
    /// From accepting a connection, or from answering its last request,
    /// to the first byte of the next request.
    pub idle_timeout: Duration,
    /// Connections served at once. Further ones wait, unaccepted, in the
    /// kernel's listen backlog until a connection ends.
    pub max_connections: u32,
}

/// Open files kept for everything but client connections: database
/// connections, the SQLite files, the listeners, logs.
const RESERVED_FILES: u64 = 128;

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit,
/// so that the connection cap, not the kernel, decides how many clients are
/// served. Returns the soft limit now in force (`None`: unlimited).
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "could not raise the open files limit");
        }
    }
    open_files_limit()
}

/// The soft limit on open files (`None`: unlimited).
pub fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

impl ConnectionLimits {
    /// These limits with `max_connections` lowered, when need be, so that
    /// connections cannot use up the open files the rest of the server needs
    /// (which would stop sign-ins and every forward-auth check).
    pub fn within_open_files(self, open_files: Option<u64>) -> Self {
        let Some(open_files) = open_files else { return self };
        let room = u32::try_from(open_files.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(u32::MAX);
        if room < self.max_connections {
            tracing::warn!(
                max_connections = self.max_connections,
                open_files,
                serving = room,
                "the open files limit is too low for max_connections; serving fewer connections"
            );
        }
        Self { max_connections: self.max_connections.min(room), ..self }
    }
}

/// Serves `router` on `listener` until `stop` completes; then stops
/// accepting, lets every connection finish its request in flight (idle
/// ones, and ones still sending a header, close at once), and returns once
/// all have ended.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stopping, stopped) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        // The permit comes first: beyond the cap, clients wait in the backlog.
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = permits.clone().acquire_owned() => permit.map_err(io::Error::other)?,
        };
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(stream, peer, router.clone(), limits, stopped.clone(), permit));
            }
            Err(error) => {
                // Out of file descriptors, typically: wait for some to close.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a permit until it ends.
    let _ = permits.acquire_many(limits.max_connections).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    limits: ConnectionLimits,
    mut stopped: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(watch::Sender::new(Phase::Idle { since: Instant::now() }));
    let io = TokioIo::new(Watched { stream, activity: activity.clone() });
    let in_service = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let answering = Answering::start(in_service.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await;
            drop(answering);
            response
        }
    });
    // hyper's own header timer would also run while the connection is idle;
    // `expiry` keeps the two limits apart.
    let connection = http1::Builder::new().header_read_timeout(None).serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            _ = stopped.wait_for(|stop| *stop), if !draining => {
                // A header still arriving is no request yet: no need to wait for it.
                if matches!(phase(&activity), Phase::Header { .. }) {
                    return;
                }
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
            reason = expiry(activity.subscribe(), limits) => {
                tracing::debug!(%peer, reason, "closing a slow connection");
                return;
            }
        }
    }
}

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for the first byte of a request.
    Idle { since: Instant },
    /// Reading a request header that began at `since`.
    Header { since: Instant },
    /// A request is being answered (its body read, the handler running).
    Answering,
}

/// The connection's phase, watched by `expiry`.
type Activity = Arc<watch::Sender<Phase>>;

fn phase(activity: &Activity) -> Phase {
    *activity.borrow()
}

/// Moves to the phase `change` returns, waking `expiry` only on a change.
fn set_phase(activity: &Activity, change: impl FnOnce(Phase) -> Option<Phase>) {
    activity.send_if_modified(|phase| match change(*phase) {
        Some(next) => {
            *phase = next;
            true
        }
        None => false,
    });
}

/// Completes when the connection has been idle, or reading one header,
/// for longer than its limit; returns which.
async fn expiry(mut phases: watch::Receiver<Phase>, limits: ConnectionLimits) -> &'static str {
    loop {
        let limit = match *phases.borrow_and_update() {
            Phase::Idle { since } => Some((since + limits.idle_timeout, "idle")),
            Phase::Header { since } => Some((since + limits.header_read_timeout, "request header too slow")),
            // Handlers are not timed here.
            Phase::Answering => None,
        };
        let expired = async {
            match limit {
                Some((deadline, reason)) => {
                    tokio::time::sleep_until(deadline).await;
                    reason
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            reason = expired => return reason,
            changed = phases.changed() => {
                if changed.is_err() {
                    // The connection is gone, and with it the phase.
                    return std::future::pending().await;
                }
            }
        }
    }
}

/// Marks a connection as answering a request while alive; idle again after.
struct Answering(Activity);

impl Answering {
    fn start(activity: Activity) -> Self {
        set_phase(&activity, |_| Some(Phase::Answering));
        Self(activity)
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        set_phase(&self.0, |_| Some(Phase::Idle { since: Instant::now() }));
    }
}

/// The client's socket, noting when a request's first bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            set_phase(&self.activity, |phase| match phase {
                Phase::Idle { .. } => Some(Phase::Header { since: Instant::now() }),
                _ => None,
            });
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: u32) -> ConnectionLimits {
        let second = Duration::from_secs(1);
        ConnectionLimits {
            header_read_timeout: second,
            body_read_timeout: second,
            idle_timeout: second,
            max_connections,
        }
    }

    #[test]
    fn the_cap_leaves_open_files_for_the_rest_of_the_server() {
        assert_eq!(limits(4096).within_open_files(Some(1024)).max_connections, 1024 - 128);
        assert_eq!(limits(4096).within_open_files(Some(1_048_576)).max_connections, 4096);
        assert_eq!(limits(4096).within_open_files(None).max_connections, 4096);
        assert_eq!(limits(4096).within_open_files(Some(64)).max_connections, 1, "one connection at the least");
    }
}
