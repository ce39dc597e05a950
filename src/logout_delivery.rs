//! Delivery of back-channel logout notices (OpenID Connect Back-Channel
//! Logout 1.0 §2.5): each instance runs one worker that claims due notices
//! from the store, has the provider mint a logout token for each attempt,
//! and POSTs it, form-encoded, to the app's registered URI.
//!
//! The notices live in the store, written with the session's end, so a
//! crash loses none; a claim is a lease, so a dead instance's attempt is
//! taken up by another once it runs out. No transaction is open while a
//! request is out (the app may call back into Latch while it handles the
//! notice), and deliveries run side by side, so one slow app delays
//! neither the sign-out that caused it nor the other apps' notices.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::CONTENT_TYPE;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::audit::{Actor, Auditor};
use crate::clock::Clock;
use crate::http_client::{self, Connections, HttpClient};
use crate::oidc::Provider;
use crate::store::{LogoutNotice, Store};

/// How long one attempt may take, connecting included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds a claim holds a notice: past any attempt's timeout, so that only
/// a dead instance's claim runs out while its attempt could still be going.
const LEASE: i64 = 15;

/// How often the worker looks for due notices when nothing woke it: for
/// retries coming due, for sessions ended by admin commands (another
/// process) and for notices whose instance died.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Attempts under way at once, per instance.
const CONCURRENT_ATTEMPTS: usize = 16;

/// After this many failed attempts a notice is dropped. With the backoff
/// below the last one is made about an hour after the session ended.
const MAX_ATTEMPTS: i64 = 10;

/// Seconds before the retry after `attempts` failures: 10 s, doubling, at
/// most 15 minutes.
fn backoff(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    10i64.saturating_mul(1 << doublings).min(900)
}

/// Wakes this instance's worker: a session just ended here, so notices may
/// be due now rather than at the next poll.
#[derive(Clone, Default)]
pub struct DeliveryWake(Arc<Notify>);

impl DeliveryWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot set up TLS for back-channel logout: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why one attempt failed, for the log and the audit trail.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("the app no longer has a back-channel logout URI")]
    NoUri,
    #[error("the back-channel logout URI is not a valid URI: {0}")]
    BadUri(String),
    #[error("cannot mint the logout token: {0}")]
    Token(String),
    #[error("the request failed: {0}")]
    Request(String),
    #[error("no answer within {ATTEMPT_TIMEOUT:?}")]
    Timeout,
    #[error("the app answered {0}")]
    Status(hyper::StatusCode),
}

impl AttemptError {
    /// Whether another attempt could succeed.
    fn is_retryable(&self) -> bool {
        !matches!(self, Self::NoUri | Self::BadUri(_))
    }
}

#[derive(Clone)]
struct Worker {
    store: Store,
    provider: Arc<Provider>,
    auditor: Auditor,
    clock: Clock,
    http: HttpClient,
    wake: DeliveryWake,
    slots: Arc<Semaphore>,
}

/// Starts this instance's worker. Returns the handle that wakes it and the
/// task (abort it to stop).
pub fn start(
    store: Store,
    provider: Arc<Provider>,
    auditor: Auditor,
    clock: Clock,
) -> Result<(DeliveryWake, JoinHandle<()>), DeliveryError> {
    let wake = DeliveryWake::default();
    let worker = Worker {
        store,
        provider,
        auditor,
        clock,
        http: http_client::build(Connections::Reuse)?,
        wake: wake.clone(),
        slots: Arc::new(Semaphore::new(CONCURRENT_ATTEMPTS)),
    };
    Ok((wake, tokio::spawn(worker.run())))
}

impl Worker {
    async fn run(self) {
        loop {
            self.claim_due().await;
            tokio::select! {
                () = self.wake.0.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// Claims as many due notices as there are free slots and starts an
    /// attempt at each; the slots of notices not found are given back.
    async fn claim_due(&self) {
        let free = self.slots.available_permits();
        if free == 0 {
            return;
        }
        let Ok(mut slots) = self.slots.clone().try_acquire_many_owned(u32::try_from(free).unwrap_or(1)) else {
            return;
        };
        let now = self.clock.now();
        let notices = match self.store.claim_logout_notices(now, now + LEASE, free).await {
            Ok(notices) => notices,
            Err(error) => {
                tracing::warn!(%error, "could not claim back-channel logout notices");
                return;
            }
        };
        for notice in notices {
            let Some(slot) = slots.split(1) else { return };
            let worker = self.clone();
            tokio::spawn(async move {
                worker.attempt(notice).await;
                drop(slot);
                // A slot is free: claim what may have waited for one.
                worker.wake.wake();
            });
        }
    }

    /// One attempt: deliver, then remove the notice, or schedule the next
    /// attempt, or give up.
    async fn attempt(&self, notice: LogoutNotice) {
        let result = self.deliver(&notice).await;
        let now = self.clock.now();
        let recorded = match result {
            Ok(()) => {
                tracing::info!(app = %notice.app_slug, attempts = notice.attempts, "back-channel logout delivered");
                self.store.finish_logout_notice(&notice).await
            }
            Err(error) if error.is_retryable() && notice.attempts < MAX_ATTEMPTS => {
                let retry_in = backoff(notice.attempts);
                tracing::info!(app = %notice.app_slug, attempts = notice.attempts, retry_in, %error,
                    "back-channel logout failed; will retry");
                self.store.retry_logout_notice(&notice, now + retry_in).await
            }
            Err(error) => {
                tracing::warn!(app = %notice.app_slug, attempts = notice.attempts, %error,
                    "back-channel logout abandoned");
                let actor = Actor { app: Some(&notice.app_slug), ..Default::default() };
                let detail = format!("after {} attempt(s): {error}", notice.attempts);
                self.auditor.record("backchannel_logout_abandoned", &actor, Some(detail));
                self.store.finish_logout_notice(&notice).await
            }
        };
        if let Err(error) = recorded {
            // The lease runs out and the notice is attempted again.
            tracing::warn!(app = %notice.app_slug, %error, "could not record a back-channel logout attempt");
        }
    }

    /// POSTs `logout_token=…` to the app's URI; any 2xx is success (§2.8
    /// asks for 200, and some frameworks answer 204).
    async fn deliver(&self, notice: &LogoutNotice) -> Result<(), AttemptError> {
        let uri = notice.uri.as_deref().ok_or(AttemptError::NoUri)?;
        let uri: hyper::Uri =
            uri.parse().map_err(|error: hyper::http::uri::InvalidUri| AttemptError::BadUri(error.to_string()))?;
        let token = self
            .provider
            .logout_token(notice, self.clock.now())
            .await
            .map_err(|error| AttemptError::Token(error.to_string()))?;
        let body = serde_urlencoded::to_string([("logout_token", token)])
            .map_err(|error| AttemptError::Token(error.to_string()))?;
        let request = hyper::Request::post(uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| AttemptError::BadUri(error.to_string()))?;
        let response = tokio::time::timeout(ATTEMPT_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| AttemptError::Timeout)?
            .map_err(|error| AttemptError::Request(error.to_string()))?;
        if response.status().is_success() { Ok(()) } else { Err(AttemptError::Status(response.status())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_fifteen_minutes() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(backoff).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 900, 900, 900]);
        assert_eq!(backoff(i64::MAX), 900);
        let total: i64 = waits[..waits.len() - 1].iter().sum();
        assert!((3000..=4000).contains(&total), "the last attempt about an hour after the first: {total} s");
    }
}
