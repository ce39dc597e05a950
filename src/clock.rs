//! Wall-clock time as Unix seconds. Read once per request and passed down, so
//! protocol logic is a pure function of its inputs and tests can pin time.

use std::time::{SystemTime, UNIX_EPOCH};

pub type UnixTime = i64;

pub fn now() -> UnixTime {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs() as i64).unwrap_or(0)
}
