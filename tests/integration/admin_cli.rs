//! The admin commands, run as the real `latch` binary: refusals exit
//! non-zero with one line on stderr and write nothing; what they change
//! takes effect over HTTP.

use std::process::Output;

use reqwest::StatusCode;

use crate::common::{
    Backend, Browser, CALLBACK, PASSWORD, TestApp, assert_error_page, code_request, http, token_error, token_ok,
};
use crate::on_every_backend;

/// The command failed with exactly one line on stderr; returns that line.
fn refused(output: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{what} should fail; stdout: {}", String::from_utf8_lossy(&output.stdout));
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr, got {stderr:?}");
    assert!(!lines[0].trim().is_empty(), "{what}: an empty error line");
    lines[0].to_owned()
}

async fn json(app: &TestApp, args: &[&str]) -> serde_json::Value {
    let stdout = app.admin(args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("latch {args:?} --json: {error}: {stdout}"))
}

async fn usernames(app: &TestApp) -> Vec<String> {
    let users = json(app, &["user", "list", "--json"]).await;
    users.as_array().expect("array").iter().map(|user| user["username"].as_str().unwrap().to_owned()).collect()
}

/// The `group list --json` entry of the group `name`.
async fn group(app: &TestApp, name: &str) -> serde_json::Value {
    let groups = json(app, &["group", "list", "--json"]).await;
    let found = groups.as_array().expect("array").iter().find(|group| group["name"] == name).cloned();
    found.unwrap_or_else(|| panic!("no group {name} in {groups}"))
}

async fn slugs(app: &TestApp) -> Vec<String> {
    let apps = json(app, &["app", "list", "--json"]).await;
    apps.as_array().expect("array").iter().map(|app| app["slug"].as_str().unwrap().to_owned()).collect()
}

async fn duplicate_username_or_slug_is_refused_and_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let args = ["user", "add", "ada", "--email", "other@example.com", "--password-stdin"];
    let line = refused(&app.latch(&args, Some("another password")).await, "duplicate user");
    assert!(line.contains("ada"), "{line}");
    let users = json(&app, &["user", "list", "--json"]).await;
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "ada@example.com", "the first user is untouched");
    assert_eq!(Browser::new().sign_in(&app.base, "ada", PASSWORD).await.status(), StatusCode::SEE_OTHER);

    let first = app.add_app("web", &[CALLBACK], &[]).await;
    let args = ["app", "add", "web", "--name", "Other", "--redirect-uri", "https://other.example.com/cb"];
    let line = refused(&app.latch(&args, None).await, "duplicate slug");
    assert!(line.contains("web"), "{line}");
    let apps = json(&app, &["app", "list", "--json"]).await;
    let apps = apps.as_array().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0]["client_id"], first.client_id.as_str());
    assert_eq!(apps[0]["redirect_uris"], serde_json::json!([CALLBACK]));
}

async fn unknown_group_or_malformed_redirect_uri_writes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    let args = ["user", "add", "bob", "--email", "bob@example.com", "--group", "staff", "--group", "nope"];
    let line = refused(&app.latch(&[&args[..], &["--password-stdin"]].concat(), Some(PASSWORD)).await, "user add");
    assert!(line.contains("nope"), "{line}");
    assert!(!usernames(&app).await.contains(&"bob".to_owned()));
    let staff = group(&app, "staff").await;
    assert_eq!(staff["members"], serde_json::json!([]), "no membership left behind: {staff}");
    assert_eq!(Browser::new().sign_in(&app.base, "bob", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);

    let args = ["app", "add", "x", "--name", "X", "--redirect-uri", CALLBACK, "--group", "staff", "--group", "nope"];
    let line = refused(&app.latch(&args, None).await, "app add");
    assert!(line.contains("nope"), "{line}");
    for bad in ["not a uri", "/relative/callback", "https://app.example.com/cb#fragment"] {
        let args = ["app", "add", "x", "--name", "X", "--redirect-uri", CALLBACK, "--redirect-uri", bad];
        let line = refused(&app.latch(&args, None).await, bad);
        assert!(line.contains(bad), "the error should quote the URI: {line}");
    }
    assert!(slugs(&app).await.is_empty());
    let discovery = http().get(app.url("/application/o/x/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(discovery.status(), StatusCode::NOT_FOUND);

    app.add_user("ada", PASSWORD, &[]).await;
    refused(&app.latch(&["group", "add-member", "nope", "ada"], None).await, "add-member to unknown group");
    refused(&app.latch(&["group", "add-member", "staff", "nobody"], None).await, "add-member of unknown user");
    refused(&app.latch(&["user", "disable", "nobody"], None).await, "disable an unknown user");
}

async fn app_add_json_has_exactly_the_credentials(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let keys = |value: &serde_json::Value| {
        let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    let expected = ["client_id", "client_secret", "discovery_url", "issuer"];

    let confidential = json(&app, &["app", "add", "web", "--name", "Web", "--redirect-uri", CALLBACK, "--json"]).await;
    assert_eq!(keys(&confidential), expected);
    assert!(confidential["client_secret"].as_str().is_some_and(|secret| secret.len() >= 32), "{confidential}");
    assert_eq!(confidential["issuer"], app.issuer("web"));
    let discovery_url = confidential["discovery_url"].as_str().unwrap();
    assert_eq!(discovery_url, format!("{}.well-known/openid-configuration", app.issuer("web")));
    let document: serde_json::Value = http().get(discovery_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["issuer"], app.issuer("web"));

    let public =
        json(&app, &["app", "add", "spa", "--name", "SPA", "--redirect-uri", CALLBACK, "--public", "--json"]).await;
    assert_eq!(keys(&public), expected);
    assert!(public["client_secret"].is_null(), "{public}");
    assert_ne!(public["client_id"], confidential["client_id"]);
}

async fn rotate_secret_replaces_the_old_secret(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let old = app.add_app("web", &[CALLBACK], &[]).await;
    let browser = Browser::new();
    let params = code_request(&old.client_id, CALLBACK, "s");
    let first_code = browser.code(&app, &params, "ada", PASSWORD).await;
    let second_code = browser.code(&app, &params, "ada", PASSWORD).await;

    let rotated = json(&app, &["app", "rotate-secret", "web", "--json"]).await;
    assert_eq!(rotated["client_id"], old.client_id.as_str());
    let new_secret = rotated["client_secret"].as_str().expect("a new secret").to_owned();
    assert_ne!(Some(&new_secret), old.client_secret.as_ref());

    let response = app.redeem(&old, &first_code, CALLBACK, None).await;
    token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let new = crate::common::AppCredentials { client_secret: Some(new_secret), ..old.clone() };
    token_ok(app.redeem(&new, &second_code, CALLBACK, None).await).await;

    // A public app has no secret to rotate.
    app.add_app("spa", &[CALLBACK], &["--public"]).await;
    refused(&app.latch(&["app", "rotate-secret", "spa"], None).await, "rotate a public app");
}

async fn app_remove_makes_its_client_unknown(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("web", &[CALLBACK], &[]).await;
    let params = code_request(&credentials.client_id, CALLBACK, "s");
    let browser = Browser::new();
    let code = browser.code(&app, &params, "ada", PASSWORD).await;
    let tokens = token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;
    let unused_code = browser.code(&app, &params, "ada", PASSWORD).await;

    app.admin(&["app", "remove", "web"]).await;

    let page = assert_error_page(http().get(app.authorize_url(&params)).send().await.unwrap()).await;
    assert!(page.contains(&credentials.client_id), "{page}");
    let response = app.redeem(&credentials, &unused_code, CALLBACK, None).await;
    token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let response = app.userinfo(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the removed app's tokens stop working");
    let discovery = http().get(app.url("/application/o/web/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(discovery.status(), StatusCode::NOT_FOUND);
    assert!(slugs(&app).await.is_empty());
    refused(&app.latch(&["app", "remove", "web"], None).await, "remove twice");
}

/// `user passwd --password-stdin` replaces the password; `user add`
/// without `--password-stdin` prints a generated one that works.
async fn passwords_set_by_the_cli_work(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let new_password = "a brand new passphrase";
    let output = app.latch(&["user", "passwd", "ada", "--password-stdin"], Some(&format!("{new_password}\n"))).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(Browser::new().sign_in(&app.base, "ada", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(Browser::new().sign_in(&app.base, "ada", new_password).await.status(), StatusCode::SEE_OTHER);

    refused(&app.latch(&["user", "passwd", "nobody", "--password-stdin"], Some(new_password)).await, "unknown user");
    refused(&app.latch(&["user", "passwd", "ada", "--password-stdin"], Some("short")).await, "short password");
    assert_eq!(Browser::new().sign_in(&app.base, "ada", new_password).await.status(), StatusCode::SEE_OTHER);

    let stdout = app.admin(&["user", "add", "grace", "--email", "grace@example.com"]).await;
    let generated = stdout
        .lines()
        .find_map(|line| line.strip_prefix("Password (shown once): "))
        .unwrap_or_else(|| panic!("no generated password in {stdout:?}"))
        .trim()
        .to_owned();
    assert!(generated.len() >= 16, "{generated:?}");
    assert_eq!(Browser::new().sign_in(&app.base, "grace", &generated).await.status(), StatusCode::SEE_OTHER);
}

async fn list_and_show_commands_print_json(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    app.add_user("ada", PASSWORD, &["staff"]).await;
    let credentials = app.add_app("web", &[CALLBACK], &["--group", "staff"]).await;

    let users = json(&app, &["user", "list", "--json"]).await;
    assert_eq!(users[0]["username"], "ada");
    assert_eq!(users[0]["groups"], serde_json::json!(["staff"]));
    assert_eq!(users[0]["disabled"], false);
    let groups = json(&app, &["group", "list", "--json"]).await;
    let names: Vec<_> = groups.as_array().unwrap().iter().map(|group| group["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["latch-admins", "staff"], "the built-in administrators' group is listed too");
    assert_eq!(group(&app, "staff").await["members"], serde_json::json!(["ada"]));
    app.add_user("root", PASSWORD, &["latch-admins"]).await;
    assert_eq!(group(&app, "latch-admins").await["members"], serde_json::json!(["root"]), "made an administrator");
    let apps = json(&app, &["app", "list", "--json"]).await;
    assert_eq!(apps[0]["slug"], "web");
    assert_eq!(apps[0]["client_id"], credentials.client_id.as_str());
    let shown = json(&app, &["app", "show", "web", "--json"]).await;
    assert_eq!(shown["client_id"], credentials.client_id.as_str());
    assert_eq!(shown["redirect_uris"], serde_json::json!([CALLBACK]));
    assert_eq!(shown["issuer"], app.issuer("web"));
    assert!(shown.get("client_secret").is_none_or(serde_json::Value::is_null), "secrets are shown once: {shown}");

    app.admin(&["user", "disable", "ada"]).await;
    assert_eq!(json(&app, &["user", "list", "--json"]).await[0]["disabled"], true);
    refused(&app.latch(&["app", "show", "nope", "--json"], None).await, "show an unknown app");
}

/// A redirect URI that a browser would run or read rather than deliver a
/// code to (`javascript:`, `data:`, `file:`; with `response_mode=form_post`
/// the code would be posted to it), or one whose apparent host is a userinfo
/// part hiding the real one, is refused at `app add` and `app update`.
async fn a_redirect_uri_a_browser_would_run_or_that_hides_its_host_is_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["app", "add", "web", "--name", "Web", "--redirect-uri", CALLBACK]).await;
    for bad in [
        "javascript://app.example.com/%0aalert(document.domain)",
        "JavaScript:alert(1)//x",
        "data:text/html,<script>alert(1)</script>",
        "vbscript://app.example.com/x",
        "file:///etc/passwd",
        "http://127.0.0.1:8080@evil.example/cb",
        "https://app.example.com:pw@evil.example/cb",
    ] {
        let line = refused(&app.latch(&["app", "add", "x", "--name", "X", "--redirect-uri", bad], None).await, bad);
        assert!(line.contains("redirect URI"), "{bad}: {line}");
        refused(&app.latch(&["app", "update", "web", "--redirect-uri", bad], None).await, bad);
    }
    assert_eq!(slugs(&app).await, vec!["web".to_owned()]);
    let shown = json(&app, &["app", "show", "web", "--json"]).await;
    assert_eq!(shown["redirect_uris"], serde_json::json!([CALLBACK]), "{shown}");
}

on_every_backend!(
    a_redirect_uri_a_browser_would_run_or_that_hides_its_host_is_refused,
    duplicate_username_or_slug_is_refused_and_changes_nothing,
    unknown_group_or_malformed_redirect_uri_writes_nothing,
    app_add_json_has_exactly_the_credentials,
    rotate_secret_replaces_the_old_secret,
    app_remove_makes_its_client_unknown,
    passwords_set_by_the_cli_work,
    list_and_show_commands_print_json,
);
