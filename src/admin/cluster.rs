//! The cluster view, read from the instances' heartbeats.

use super::AdminResult;
use crate::clock;
use crate::cluster::{self, ClusterStatus};
use crate::store::Store;

/// Every instance that has recorded a heartbeat (and not stopped cleanly or
/// been cleared away), stale ones flagged, and mixed versions.
pub async fn cluster_status(store: &Store) -> AdminResult<ClusterStatus> {
    Ok(cluster::status(store.instances().await?, clock::now()))
}
