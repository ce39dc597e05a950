//! `latch cluster status`: two instances on one PostgreSQL database — this
//! test's server and a `latch serve` process — both listed with their
//! listen addresses; the process killed, it is flagged stale once the
//! surviving server's clock has moved past the limit, and cleared by
//! housekeeping a day later; one stopped cleanly leaves the list.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::active_active::{Instance, free_port};
use crate::common::{Backend, TestApp, http, poll_until};

async fn status(app: &TestApp) -> Value {
    let stdout = app.admin(&["cluster", "status", "--json"]).await;
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("cluster status --json: {error}: {stdout}"))
}

/// Asks for the status until `holds` of it.
async fn status_until(app: &TestApp, holds: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = poll_until(Duration::from_secs(20), async || {
        let status = status(app).await;
        if holds(&status) {
            return Some(status);
        }
        last = status;
        None
    })
    .await;
    found.unwrap_or_else(|| panic!("cluster status never got there; last: {last:#}"))
}

fn instance<'s>(status: &'s Value, listen: &str) -> &'s Value {
    let instances = status["instances"].as_array().expect("instances");
    instances.iter().find(|instance| instance["listen"] == listen).unwrap_or_else(|| panic!("no {listen}: {status:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_are_listed_and_a_killed_one_is_flagged_stale() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut other = Instance::spawn("b", port, &app.database_url, &app.base, dir.path());
    other.wait_ready().await;
    let (here, there) = (app.base.trim_start_matches("http://").to_owned(), format!("127.0.0.1:{port}"));

    let listed = status_until(&app, |status| status["instances"].as_array().is_some_and(|all| all.len() == 2)).await;
    let listens: BTreeSet<&str> =
        listed["instances"].as_array().unwrap().iter().filter_map(|instance| instance["listen"].as_str()).collect();
    assert_eq!(listens, BTreeSet::from([here.as_str(), there.as_str()]));
    for listen in [&here, &there] {
        let listed_one = instance(&listed, listen);
        assert_eq!(listed_one["stale"], false, "{listed_one}");
        assert_eq!(listed_one["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(listed_one["database_id"], instance(&listed, &here)["database_id"]);
        assert!(listed_one["host"].as_str().is_some_and(|host| !host.is_empty()), "{listed_one}");
        assert!(listed_one["clock_offset_ms"].as_i64().is_some_and(|offset| offset.abs() < 5_000), "{listed_one}");
    }
    assert_eq!(listed["mixed_versions"], serde_json::json!([]));
    let text = app.admin(&["cluster", "status"]).await;
    assert!(text.contains(&here) && text.contains(&there) && !text.contains("stale"), "{text}");

    // Each instance says who it is in its metrics.
    let id = instance(&listed, &here)["id"].as_str().unwrap().to_owned();
    let metrics = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("latch_instance_info{{id=\"{id}\"")), "{metrics}");
    assert!(metrics.contains(&format!("listen=\"{here}\"")), "{metrics}");

    other.sigkill();
    other.wait_exit().await;
    app.clock.advance(latch::cluster::STALE_AFTER + 5);
    let flagged = status_until(&app, |status| instance(status, &there)["stale"] == true).await;
    assert_eq!(instance(&flagged, &here)["stale"], false, "{flagged:#}");
    let text = app.admin(&["cluster", "status"]).await;
    let line = text.lines().find(|line| line.contains(&there)).expect("the killed instance is listed");
    assert!(line.contains("stale"), "{text}");

    // A day after its last heartbeat, housekeeping clears the dead one away.
    let store = latch::store::Store::connect(&app.database_url).await.expect("store");
    let dead_seen = instance(&flagged, &there)["last_seen"].as_i64().unwrap();
    store.delete_expired(dead_seen + 86_400 + 1, 0).await.expect("housekeeping");
    let cleared = status(&app).await;
    assert_eq!(cleared["instances"].as_array().unwrap().len(), 1, "{cleared:#}");
    instance(&cleared, &here);
    store.close().await;

    let port = free_port();
    let mut stopping = Instance::spawn("c", port, &app.database_url, &app.base, dir.path());
    stopping.wait_ready().await;
    let third = format!("127.0.0.1:{port}");
    status_until(&app, |status| status["instances"].as_array().is_some_and(|all| all.len() == 2)).await;
    stopping.sigterm();
    assert!(stopping.wait_exit().await.success());
    let left = status(&app).await;
    let listens: BTreeSet<&str> =
        left["instances"].as_array().unwrap().iter().filter_map(|instance| instance["listen"].as_str()).collect();
    assert_eq!(listens, BTreeSet::from([here.as_str()]), "{third} stopped cleanly: {left:#}");
}
