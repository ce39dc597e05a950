//! Every admin change goes through one layer that records who made it: run
//! as the real `latch` binary by a named operating-system user, each change
//! leaves exactly one event naming that user, the kind of change and the
//! object; reads leave none; refusals print one line, exit non-zero and
//! leave none either.

use std::process::Output;

use serde_json::Value;

use crate::common::{Backend, CALLBACK, PASSWORD, TestApp};
use crate::on_every_backend;

/// `latch <args>` against `app`'s database, run as `sudo` run by `os_user`
/// would be (`SUDO_USER`), or as `os_user` without sudo (`USER`).
async fn latch_as(app: &TestApp, os_user: &str, sudo: bool, args: &[&str], stdin: Option<&str>) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_latch"));
    command
        .args(args)
        .env("LATCH_DATABASE_URL", &app.database_url)
        .env("LATCH_PUBLIC_URL", &app.base)
        .env_remove("LATCH_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if sudo {
        command.env("SUDO_USER", os_user).env("USER", "root");
    } else {
        command.env_remove("SUDO_USER").env("USER", os_user);
    }
    let mut child = command.spawn().expect("run latch");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    child.wait_with_output().await.expect("latch output")
}

/// Runs `latch <args>` as operator `opsalice` behind sudo; it must succeed.
async fn change(app: &TestApp, args: &[&str], stdin: Option<&str>) -> String {
    let output = latch_as(app, "opsalice", true, args, stdin).await;
    assert!(output.status.success(), "latch {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn events(app: &TestApp) -> Vec<Value> {
    let json = app.admin(&["events", "--json", "--limit", "1000"]).await;
    serde_json::from_str(&json).unwrap_or_else(|error| panic!("events --json: {error}: {json}"))
}

/// An expected event: its kind, and what its `username`, `app` and `detail`
/// hold (`detail` as a fragment).
struct Expected {
    kind: &'static str,
    username: Option<&'static str>,
    app: Option<&'static str>,
    detail: Option<&'static str>,
}

const fn expect(
    kind: &'static str,
    username: Option<&'static str>,
    app: Option<&'static str>,
    detail: Option<&'static str>,
) -> Expected {
    Expected { kind, username, app, detail }
}

const EXPECTED: [Expected; 16] = [
    expect("group_created", None, None, Some("group staff")),
    expect("user_created", Some("ada"), None, Some("groups staff")),
    expect("user_created", Some("bob"), None, None),
    expect("password_changed_sessions_ended", Some("ada"), None, Some("session(s) ended")),
    expect("password_changed", Some("ada"), None, None),
    expect("user_disabled", Some("bob"), None, None),
    expect("user_enabled", Some("bob"), None, None),
    expect("user_unlocked", Some("ada"), None, None),
    expect("group_member_added", Some("bob"), None, Some("group staff")),
    expect("group_member_removed", Some("bob"), None, Some("group staff")),
    expect("app_created", None, Some("web"), None),
    expect("app_updated", None, Some("web"), None),
    expect("app_secret_rotated", None, Some("web"), None),
    expect("proxy_app_created", None, Some("gate"), Some("https://gate.example.com")),
    expect("app_removed", None, Some("gate"), None),
    expect("key_rotated", None, None, Some("RS256 key ")),
];

async fn every_admin_change_records_one_event_naming_its_actor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let before = events(&app).await.len();
    change(&app, &["group", "add", "staff"], None).await;
    let ada = ["user", "add", "ada", "--email", "ada@example.com", "--group", "staff", "--password-stdin"];
    change(&app, &ada, Some(PASSWORD)).await;
    change(&app, &["user", "add", "bob", "--email", "bob@example.com"], None).await;
    change(&app, &["user", "passwd", "ada", "--password-stdin"], Some("a new password")).await;
    change(&app, &["user", "passwd", "ada", "--password-stdin", "--keep-sessions"], Some("a newer password")).await;
    change(&app, &["user", "disable", "bob"], None).await;
    change(&app, &["user", "enable", "bob"], None).await;
    change(&app, &["user", "unlock", "ada"], None).await;
    change(&app, &["group", "add-member", "staff", "bob"], None).await;
    change(&app, &["group", "remove-member", "staff", "bob"], None).await;
    change(&app, &["app", "add", "web", "--name", "Web", "--redirect-uri", CALLBACK], None).await;
    change(&app, &["app", "update", "web", "--access-token-ttl", "10m"], None).await;
    change(&app, &["app", "rotate-secret", "web"], None).await;
    let gate = ["app", "add", "gate", "--name", "Gate", "--proxy", "--external-url", "https://gate.example.com"];
    change(&app, &gate, None).await;
    change(&app, &["app", "remove", "gate"], None).await;
    change(&app, &["key", "rotate", "--grace", "1h"], None).await;
    // Reads change nothing and record nothing.
    for read in [
        &["user", "list"][..],
        &["group", "list"],
        &["app", "list"],
        &["app", "show", "web"],
        &["key", "list"],
        &["events"],
    ] {
        change(&app, read, None).await;
    }

    let recorded = events(&app).await;
    assert_eq!(recorded.len() - before, EXPECTED.len(), "one event per change, none per read: {recorded:#?}");
    for expected in &EXPECTED {
        let found: Vec<&Value> = recorded
            .iter()
            .filter(|event| {
                event["kind"] == expected.kind
                    && event["username"].as_str() == expected.username
                    && event["app"].as_str() == expected.app
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one {} event about {:?}/{:?}: {recorded:#?}",
            expected.kind,
            expected.username,
            expected.app
        );
        let event = found[0];
        assert_eq!(event["actor"], "cli:opsalice", "the operator behind sudo, not root: {event}");
        let detail = event["detail"].as_str().unwrap_or_default();
        if let Some(fragment) = expected.detail {
            assert!(detail.contains(fragment), "{}: detail {detail:?} lacks {fragment:?}", expected.kind);
        }
    }
    let text = recorded.iter().map(Value::to_string).collect::<String>();
    for secret in [PASSWORD, "a new password", "a newer password"] {
        assert!(!text.contains(secret), "the trail holds a password: {text}");
    }

    // Without sudo, the event names the account itself; and the text
    // listing shows who.
    let output = latch_as(&app, "carol", false, &["user", "disable", "ada"], None).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let by_carol: Vec<Value> = events(&app).await.into_iter().filter(|event| event["actor"] == "cli:carol").collect();
    assert_eq!(by_carol.len(), 1, "{by_carol:#?}");
    assert_eq!((&by_carol[0]["kind"], &by_carol[0]["username"]), (&Value::from("user_disabled"), &Value::from("ada")));
    let listing = app.admin(&["events", "--user", "ada"]).await;
    assert!(listing.lines().next().is_some_and(|header| header.contains(" BY ")), "{listing}");
    assert!(
        listing.lines().any(|row| row.contains("user_disabled") && row.contains("cli:carol")),
        "the listing names who: {listing}"
    );
}

/// The command failed with exactly one line on stderr; returns that line.
fn refused(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what} should fail; stdout: {}", String::from_utf8_lossy(&output.stdout));
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got {stderr:?}");
    lines[0].to_owned()
}

async fn duplicate_missing_and_invalid_are_one_line_and_record_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    change(&app, &["group", "add", "staff"], None).await;
    change(&app, &["user", "add", "ada", "--email", "ada@example.com", "--password-stdin"], Some(PASSWORD)).await;
    change(&app, &["app", "add", "web", "--name", "Web", "--redirect-uri", CALLBACK], None).await;
    let before = events(&app).await;

    let cases: [(&[&str], Option<&str>, &str); 12] = [
        (&["group", "add", "staff"], None, "error: group \"staff\" already exists"),
        (
            &["user", "add", "ada", "--email", "a2@example.com", "--password-stdin"],
            Some(PASSWORD),
            "error: user \"ada\" already exists",
        ),
        (&["app", "add", "web", "--name", "W", "--redirect-uri", CALLBACK], None, "error: app \"web\" already exists"),
        (&["user", "disable", "nobody"], None, "error: no user named \"nobody\""),
        (&["user", "passwd", "nobody", "--password-stdin"], Some(PASSWORD), "error: no user named \"nobody\""),
        (&["group", "add-member", "nope", "ada"], None, "error: no group named \"nope\""),
        (&["group", "remove-member", "staff", "ada"], None, "error: no member of group named \"ada in staff\""),
        (&["app", "remove", "nope"], None, "error: no app named \"nope\""),
        (&["app", "update", "nope", "--code-ttl", "30s"], None, "error: no app named \"nope\""),
        (&["user", "add", "bad name", "--email", "b@example.com"], None, "error: invalid username \"bad name\""),
        (&["app", "update", "web", "--code-ttl", "soon"], None, "error: invalid --code-ttl \"soon\""),
        (&["key", "rotate", "--grace", "1s"], None, "error: --grace must be at least"),
    ];
    for (args, stdin, start) in cases {
        let line = refused(&latch_as(&app, "opsalice", true, args, stdin).await, &format!("{args:?}"));
        assert!(line.starts_with(start), "latch {args:?}: {line:?} should start with {start:?}");
    }
    assert_eq!(events(&app).await, before, "a refused command records nothing");
}

on_every_backend!(
    every_admin_change_records_one_event_naming_its_actor,
    duplicate_missing_and_invalid_are_one_line_and_record_nothing
);
