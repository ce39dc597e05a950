//! Wall-clock time as Unix seconds. Read once per request and passed down, so
//! protocol logic is a pure function of its inputs and tests can pin time.

use std::time::{SystemTime, UNIX_EPOCH};

pub type UnixTime = i64;

pub fn now() -> UnixTime {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs() as i64).unwrap_or(0)
}

/// The time one server runs by: the wall clock plus an offset. Every
/// request reads it once (`now`) and passes the value down. The offset is
/// zero in production; tests move one server's clock forward (`advance`)
/// instead of sleeping through a lifetime, and other servers in the same
/// process keep their own time.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// Unix seconds on this clock.
    pub fn now(&self) -> UnixTime {
        now().saturating_add(self.offset.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Milliseconds since the Unix epoch on this clock: for measuring the
    /// offset to the database's clock, where whole seconds are too coarse.
    pub fn now_millis(&self) -> i64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis());
        let offset = self.offset.load(std::sync::atomic::Ordering::Relaxed);
        i64::try_from(wall).unwrap_or(i64::MAX).saturating_add(offset.saturating_mul(1000))
    }

    /// Moves this clock `seconds` ahead, for every later `now`.
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }
}
