//! The CLI survives its reader going away (issue 11 item 13): the real
//! `latch` binary, its standard output a pipe whose reading end closes
//! early, ends quietly and successfully, as Unix tools do.

use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::{Backend, TestApp};
use crate::on_every_backend;

/// Starts `latch <args>` on `app`'s database, stdout and stderr piped.
fn spawn(app: &TestApp, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_latch"))
        .args(args)
        .env("LATCH_DATABASE_URL", &app.database_url)
        .env("LATCH_PUBLIC_URL", &app.base)
        .env_remove("LATCH_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run latch")
}

/// Waits for `child` (its stdout already gone); its status and stderr.
async fn finish(mut child: Child) -> (ExitStatus, String) {
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).await.expect("read stderr");
    (child.wait().await.expect("wait"), stderr)
}

fn assert_quiet(what: &str, status: ExitStatus, stderr: &str) {
    assert!(status.success() && stderr.is_empty(), "{what}: {status}, stderr: {stderr}");
}

/// Enough audit events that a listing is many times the 64 KiB a pipe holds.
async fn record_events(app: &TestApp, count: usize) {
    let store = latch::store::Store::connect(&app.database_url).await.expect("store");
    let actor = latch::audit::Actor { username: Some("ada"), app: None, ip: Some("192.0.2.1"), user_agent: None };
    let events: Vec<_> = (0..count)
        .map(|n| latch::audit::event("login_failure", &actor, Some(format!("attempt {n}")), latch::clock::now()))
        .collect();
    store.record_events(&events).await.expect("record events");
    store.close().await;
}

/// `latch events [--json] | head -1`: the reader takes one line and goes.
async fn events_stop_quietly_when_the_reader_goes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    record_events(&app, 3000).await;
    for args in [&["events", "--json", "--limit", "5000"][..], &["events", "--limit", "5000"]] {
        let mut child = spawn(&app, args);
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next_line().await.expect("read").expect("a first line");
        assert!(!first.is_empty(), "latch {args:?}");
        drop(lines);
        let (status, stderr) = finish(child).await;
        assert_quiet(&format!("latch {args:?}"), status, &stderr);
    }
}

/// Every command that prints, its stdout closed before it writes a thing.
async fn every_command_ends_quietly_on_a_closed_stdout(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_app("grafana", &["https://grafana.example.com/callback"], &[]).await;
    let commands: [&[&str]; 11] = [
        &["user", "list"],
        &["user", "list", "--json"],
        &["user", "add", "ada", "--email", "ada@example.com"],
        &["group", "add", "staff"],
        &["group", "list"],
        &["app", "list"],
        &["app", "show", "grafana"],
        &["app", "show", "grafana", "--json"],
        &["app", "rotate-secret", "grafana"],
        &["key", "list"],
        &["events"],
    ];
    for args in commands {
        let mut child = spawn(&app, args);
        drop(child.stdout.take());
        let (status, stderr) = finish(child).await;
        assert_quiet(&format!("latch {args:?}"), status, &stderr);
    }
    // What the quiet commands did, they did.
    let users = app.admin(&["user", "list", "--json"]).await;
    assert!(users.contains("\"ada\""), "{users}");
}

on_every_backend!(events_stop_quietly_when_the_reader_goes, every_command_ends_quietly_on_a_closed_stdout);
