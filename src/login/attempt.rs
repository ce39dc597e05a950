//! Holding throttling slots (`store::throttle`) for one password check.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::LoginError;
use crate::clock::UnixTime;
use crate::store::{Admission, AttemptOutcome, FailureLimit, Store, StoreError};

/// How long an attempt waits for a slot held by checks in flight before it
/// gives up with `LoginError::Busy`. A check takes well under a second.
const BUSY_WAIT: Duration = Duration::from_secs(20);
/// How often a waiting attempt asks the store again, for slots freed on
/// another instance (this instance's wake the wait at once).
const BUSY_POLL: Duration = Duration::from_millis(50);
/// Seconds a slot stays held if its instance dies mid-check.
const ATTEMPT_LEASE: i64 = 300;

/// A throttled subject (`user:…`, `ip:…`) and its limit.
pub(super) type Subject = (String, FailureLimit);

/// Admits password checks; one per `Authenticator`.
pub(super) struct Gate {
    store: Store,
    /// Woken whenever a check on this instance frees its slots.
    slot_freed: Arc<Notify>,
}

impl Gate {
    pub(super) fn new(store: Store) -> Self {
        Self { store, slot_freed: Arc::new(Notify::new()) }
    }

    /// Waits until every subject, in order, has a slot free, and holds them.
    /// `Locked` as soon as one is locked; `Busy` after `BUSY_WAIT`.
    pub(super) async fn admit(&self, subjects: Vec<Subject>, now: UnixTime) -> Result<HeldSlots, LoginError> {
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        loop {
            let freed = self.slot_freed.notified();
            match self.store.begin_login_attempt(&borrowed(&subjects), now, ATTEMPT_LEASE).await? {
                Admission::Granted(attempt) => {
                    let (store, slot_freed) = (self.store.clone(), self.slot_freed.clone());
                    return Ok(HeldSlots { store, slot_freed, attempt, subjects, now, ended: false });
                }
                Admission::Locked => return Err(LoginError::Locked),
                Admission::Busy if tokio::time::Instant::now() >= deadline => return Err(LoginError::Busy),
                Admission::Busy => {
                    let _ = tokio::time::timeout(BUSY_POLL, freed).await;
                }
            }
        }
    }
}

fn borrowed(subjects: &[Subject]) -> Vec<(&str, FailureLimit)> {
    subjects.iter().map(|(subject, limit)| (subject.as_str(), *limit)).collect()
}

/// Slots held for one check. `end` frees them; if the request is dropped
/// before that (the client went away mid-check), dropping this frees them
/// from a task of its own as `Abandoned`, so a visitor who hangs up cannot
/// keep slots taken.
pub(super) struct HeldSlots {
    store: Store,
    slot_freed: Arc<Notify>,
    attempt: String,
    subjects: Vec<Subject>,
    now: UnixTime,
    ended: bool,
}

impl HeldSlots {
    pub(super) async fn end(mut self, outcome: AttemptOutcome) -> Result<(), StoreError> {
        let ended = self.store.end_login_attempt(&self.attempt, &borrowed(&self.subjects), outcome, self.now).await;
        self.ended = ended.is_ok();
        self.slot_freed.notify_waiters();
        ended
    }
}

impl Drop for HeldSlots {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if self.ended {
            return;
        }
        let (store, slot_freed, now) = (self.store.clone(), self.slot_freed.clone(), self.now);
        let (attempt, subjects) = (std::mem::take(&mut self.attempt), std::mem::take(&mut self.subjects));
        runtime.spawn(async move {
            let abandoned = AttemptOutcome::Abandoned;
            if store.end_login_attempt(&attempt, &borrowed(&subjects), abandoned, now).await.is_ok() {
                slot_freed.notify_waiters();
            }
        });
    }
}
