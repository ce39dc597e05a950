//! The cluster view: every running `latch serve` records a heartbeat in the
//! store (who it is, where it listens, when it was last seen, how far its
//! clock is from the database's), and `latch cluster status` reads them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;

use crate::clock::{Clock, UnixTime};
use crate::metrics::Metrics;
use crate::store::{Heartbeat, Store, StoreResult};

/// How often each instance records its heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);

/// Seconds without a heartbeat after which an instance counts as stopped:
/// many missed beats (so a slow database does not flag a live instance),
/// well within a minute of one dying.
pub const STALE_AFTER: i64 = 30;

/// Who this instance is, fixed at start.
#[derive(Debug, Clone)]
pub struct ThisInstance {
    pub id: String,
    pub version: &'static str,
    pub host: String,
    pub listen: String,
    pub database_id: String,
    pub started_at: UnixTime,
}

impl ThisInstance {
    /// A new random id, this build's version and this machine's host name.
    pub fn new(listen: String, database_id: String, started_at: UnixTime) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            version: env!("CARGO_PKG_VERSION"),
            host: host_name(),
            listen,
            database_id,
            started_at,
        }
    }

    fn heartbeat(&self, last_seen: UnixTime, clock_offset_ms: i64) -> Heartbeat {
        Heartbeat {
            id: self.id.clone(),
            version: self.version.to_owned(),
            host: self.host.clone(),
            listen: self.listen.clone(),
            database_id: self.database_id.clone(),
            started_at: self.started_at,
            last_seen,
            clock_offset_ms,
        }
    }
}

/// This machine's host name (`uname -n`).
pub fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

/// `clock` minus the database's clock, in milliseconds: the database's time
/// is compared with the midpoint of the query's round trip.
pub async fn clock_offset_ms(store: &Store, clock: &Clock) -> StoreResult<i64> {
    let before = clock.now_millis();
    let database = store.database_time_ms().await?;
    let after = clock.now_millis();
    Ok(before + (after - before) / 2 - database)
}

/// Starts the task that records this instance's heartbeat every
/// `HEARTBEAT_INTERVAL` (abort it to stop) and shows the clock offset in
/// `metrics`.
pub fn start_heartbeat(store: Store, clock: Clock, this: ThisInstance, metrics: Arc<Metrics>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(HEARTBEAT_INTERVAL);
        loop {
            interval.tick().await;
            let beat = async {
                let offset = clock_offset_ms(&store, &clock).await?;
                metrics.clock_offset(offset);
                store.record_heartbeat(&this.heartbeat(clock.now(), offset)).await
            };
            if let Err(error) = beat.await {
                tracing::warn!(%error, "could not record this instance's heartbeat");
            }
        }
    })
}

/// One instance as `latch cluster status` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceStatus {
    #[serde(flatten)]
    pub heartbeat: Heartbeat,
    /// Seconds since its last heartbeat.
    pub silent_for: i64,
    /// No heartbeat for more than `STALE_AFTER` seconds: it stopped (or
    /// lost its database) without saying so.
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClusterStatus {
    pub instances: Vec<InstanceStatus>,
    /// The versions the live instances run, when they differ (an upgrade
    /// under way, or one left behind); empty otherwise.
    pub mixed_versions: Vec<String>,
}

/// The status of the instances whose heartbeats are `heartbeats`, at `now`.
/// Silence is measured from the newest heartbeat when that is later than
/// `now`: an instance that beat at that time proves the deployment's time
/// has reached it, whatever the clock of the machine asking says.
pub fn status(heartbeats: Vec<Heartbeat>, now: UnixTime) -> ClusterStatus {
    let reference = heartbeats.iter().map(|beat| beat.last_seen).max().unwrap_or(now).max(now);
    let instances: Vec<InstanceStatus> = heartbeats
        .into_iter()
        .map(|heartbeat| {
            let silent_for = reference - heartbeat.last_seen;
            InstanceStatus { stale: silent_for > STALE_AFTER, silent_for, heartbeat }
        })
        .collect();
    let mut versions: Vec<String> = instances
        .iter()
        .filter(|instance| !instance.stale)
        .map(|instance| instance.heartbeat.version.clone())
        .collect();
    versions.sort();
    versions.dedup();
    let mixed_versions = if versions.len() > 1 { versions } else { Vec::new() };
    ClusterStatus { instances, mixed_versions }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(id: &str, version: &str, last_seen: UnixTime) -> Heartbeat {
        Heartbeat {
            id: id.into(),
            version: version.into(),
            host: "h".into(),
            listen: "127.0.0.1:9000".into(),
            database_id: "db".into(),
            started_at: 0,
            last_seen,
            clock_offset_ms: 0,
        }
    }

    #[test]
    fn an_instance_silent_past_the_limit_is_stale_and_live_ones_are_not() {
        let cluster = status(vec![beat("a", "1", 1000), beat("b", "1", 1000 - STALE_AFTER - 1)], 1001);
        assert_eq!(
            cluster.instances.iter().map(|i| (i.stale, i.silent_for)).collect::<Vec<_>>(),
            [(false, 1), (true, STALE_AFTER + 2)]
        );
        assert!(cluster.mixed_versions.is_empty());
    }

    #[test]
    fn silence_is_measured_from_the_newest_heartbeat_when_it_is_ahead() {
        let cluster = status(vec![beat("a", "1", 2000), beat("b", "1", 1000)], 1000);
        assert!(!cluster.instances[0].stale);
        assert!(cluster.instances[1].stale);
        assert_eq!(cluster.instances[1].silent_for, 1000);
    }

    #[test]
    fn live_instances_on_different_versions_are_mixed_and_dead_ones_do_not_count() {
        let upgrading = status(vec![beat("a", "1.0", 100), beat("b", "1.1", 99)], 100);
        assert_eq!(upgrading.mixed_versions, ["1.0", "1.1"]);
        let upgraded = status(vec![beat("a", "1.0", 100), beat("b", "1.1", 10)], 100);
        assert!(upgraded.mixed_versions.is_empty());
    }
}
