//! The audit trail. Requests hand events to a background writer that stores
//! them in batches, so recording who signed in where costs a request no
//! database round trip; admin commands write theirs directly.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::{Clock, UnixTime};
use crate::store::{AuditEvent, Store};
use crate::text::{MAX_RECORDED_CHARS, bounded};

/// Events waiting to be written; beyond this, new events are dropped (and
/// counted in the log) rather than letting memory grow without bound.
const QUEUE: usize = 10_000;
const BATCH: usize = 200;
const FLUSH_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Auditor {
    sender: mpsc::Sender<AuditEvent>,
    /// The server's clock: events are stamped, and later expire, by it.
    clock: Clock,
}

/// Who and where an event is about; every field optional.
#[derive(Debug, Default, Clone)]
pub struct Actor<'a> {
    pub username: Option<&'a str>,
    pub app: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// The event to store. Every text field may be client-chosen (the username
/// of a failed sign-in, a user agent, a slug from a URL), so each is cut to
/// `MAX_RECORDED_CHARS`; escaping is left to whoever shows it.
pub fn event(kind: &str, actor: &Actor<'_>, detail: Option<String>, at: UnixTime) -> AuditEvent {
    let recorded = |text: &str| bounded(text, MAX_RECORDED_CHARS).into_owned();
    AuditEvent {
        at,
        kind: recorded(kind),
        actor: None,
        username: actor.username.map(recorded),
        app: actor.app.map(recorded),
        ip: actor.ip.map(recorded),
        user_agent: actor.user_agent.map(recorded),
        detail: detail.as_deref().map(recorded),
    }
}

/// An event about a change someone made (an admin command, the admin
/// console): `event`, and `by` names who made it.
pub fn change_event(kind: &str, by: &str, about: &Actor<'_>, detail: Option<String>, at: UnixTime) -> AuditEvent {
    AuditEvent { actor: Some(bounded(by, MAX_RECORDED_CHARS).into_owned()), ..event(kind, about, detail, at) }
}

impl Auditor {
    /// Starts the writer; it stops, after writing what is queued, when every
    /// `Auditor` clone is dropped.
    pub fn start(store: Store, clock: Clock) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (Self { sender, clock }, tokio::spawn(write_events(store, receiver)))
    }

    pub fn record(&self, kind: &str, actor: &Actor<'_>, detail: Option<String>) {
        if self.sender.try_send(event(kind, actor, detail, self.clock.now())).is_err() {
            tracing::warn!(kind, "audit queue full; event dropped");
        }
    }
}

async fn write_events(store: Store, mut receiver: mpsc::Receiver<AuditEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let open = tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => received > 0,
            () = tokio::time::sleep(FLUSH_EVERY) => true,
        };
        if !batch.is_empty() {
            if let Err(error) = store.record_events(&batch).await {
                tracing::error!(%error, events = batch.len(), "could not store audit events");
            }
            batch.clear();
        }
        if !open {
            return;
        }
    }
}
