//! `latch apply` and `latch export`, run as the real binary: a file's
//! groups, people, apps and access policies take effect over HTTP; a
//! second run changes nothing; `--dry-run` and a refused file change
//! nothing; `--prune` alone removes what the file does not mention; and
//! export → apply on an empty database reproduces the state.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use reqwest::StatusCode;

use crate::common::{
    Backend, Browser, CALLBACK, PASSWORD, TestApp, drop_postgres_database, fresh_database, run_latch,
    run_latch_with_env,
};
use crate::on_every_backend;

const GRANT: [(&str, &str); 1] = [("grant_type", "client_credentials")];
/// What `ENV_SECRET` holds for the app declared with `{ env = … }`.
const ENV_SECRET: &str = "env-secret-0123456789-abcdefghijklmnopqrstuvwxyz";

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn succeeded(output: Output, what: &str) -> String {
    assert!(output.status.success(), "{what} failed: {}", String::from_utf8_lossy(&output.stderr));
    stdout(&output)
}

/// `latch apply <file> <flags>` against `app`, with `ENV_SECRET` set.
async fn apply(app: &TestApp, file: &Path, flags: &[&str]) -> Output {
    let path = file.display().to_string();
    let args = [&["apply", path.as_str()][..], flags].concat();
    run_latch_with_env(&app.database_url, &app.base, &args, None, &[("ENV_SECRET", ENV_SECRET)]).await
}

async fn json(app: &TestApp, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&app.admin(args).await).expect("JSON")
}

/// How many admin changes the audit trail holds (events with an actor;
/// sign-ins and tokens have none): a run that changes nothing records none.
async fn event_count(app: &TestApp) -> usize {
    let events = json(app, &["events", "--limit", "10000", "--json"]).await;
    events.as_array().expect("array").iter().filter(|event| event["actor"].is_string()).count()
}

/// The kinds of the admin changes in the audit trail (each names a
/// `cli:` actor), sorted: events of one second have no order among them.
async fn change_kinds(app: &TestApp) -> Vec<String> {
    let events = json(app, &["events", "--limit", "10000", "--json"]).await;
    let by_cli = |event: &&serde_json::Value| event["actor"].as_str().is_some_and(|actor| actor.starts_with("cli:"));
    let mut kinds: Vec<String> = events
        .as_array()
        .expect("array")
        .iter()
        .filter(by_cli)
        .map(|event| event["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort_unstable();
    kinds
}

/// A client secret works at the token endpoint (client credentials grant).
async fn secret_works(app: &TestApp, client_id: &str, secret: &str) -> bool {
    app.token(Some((client_id, secret)), &GRANT).await.status() == StatusCode::OK
}

fn client_id(apps: &serde_json::Value, slug: &str) -> String {
    let app = apps.as_array().unwrap().iter().find(|app| app["slug"] == slug).unwrap_or_else(|| panic!("{slug}"));
    app["client_id"].as_str().unwrap().to_owned()
}

fn declaration() -> String {
    format!(
        r#"
[[group]]
name = "staff"

[[person]]
username = "ada"
email = "ada@example.com"
name = "Ada Lovelace"
groups = ["staff"]

[[person]]
username = "bob"
email = "bob@example.com"
disabled = true

[[app]]
slug = "wiki"
name = "Wiki"
groups = ["staff"]
redirect_uris = ["{CALLBACK}"]
client_secret = {{ env = "ENV_SECRET" }}
client_credentials = true
access_token_ttl = "10m"
consent = "explicit"

[[app]]
slug = "spa"
name = "Single page"
public = true
redirect_uris = ["{CALLBACK}"]
webfinger = true

[[app]]
slug = "uptime"
name = "Uptime"
proxy = {{ external_url = "https://uptime.example.com" }}
"#
    )
}

async fn apply_is_idempotent_and_a_dry_run_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latch.toml");
    std::fs::write(&file, declaration()).unwrap();
    let before = event_count(&app).await;

    let dry = succeeded(apply(&app, &file, &["--dry-run"]).await, "dry run");
    assert!(dry.contains("Would make 7 change(s):") && dry.contains("Dry run: nothing was changed."), "{dry}");
    for line in ["+ group staff", "+ person ada <ada@example.com> in staff", "~ person bob: disabled", "+ app uptime"] {
        assert!(dry.contains(line), "{line} in {dry}");
    }
    assert_eq!(json(&app, &["user", "list", "--json"]).await, serde_json::json!([]));
    assert_eq!(json(&app, &["app", "list", "--json"]).await, serde_json::json!([]));
    assert_eq!(event_count(&app).await, before, "a dry run records nothing");

    let made = succeeded(apply(&app, &file, &[]).await, "apply");
    assert!(made.contains("Making 7 change(s):") && made.contains("Done."), "{made}");
    let password = made
        .lines()
        .find_map(|line| line.strip_prefix("Password of ada (shown once): "))
        .unwrap_or_else(|| panic!("ada's password in {made}"));
    assert_eq!(Browser::new().sign_in(&app.base, "ada", password).await.status(), StatusCode::SEE_OTHER);
    let users = json(&app, &["user", "list", "--json"]).await;
    assert_eq!(users[0]["name"], "Ada Lovelace");
    assert_eq!(users[1]["disabled"], true, "{users}");
    let apps = json(&app, &["app", "list", "--json"]).await;
    assert!(secret_works(&app, &client_id(&apps, "wiki"), ENV_SECRET).await, "the secret from the environment");
    let wiki = json(&app, &["app", "show", "wiki", "--json"]).await;
    assert_eq!(
        (wiki["options"]["access_token_ttl"].as_i64(), wiki["groups"].clone()),
        (Some(600), serde_json::json!(["staff"]))
    );
    let events = event_count(&app).await;
    assert_eq!(events, before + 7, "one audit event per change");

    let again = succeeded(apply(&app, &file, &[]).await, "second apply");
    assert_eq!(again.trim(), format!("No changes: the database already matches {}.", file.display()));
    assert_eq!(event_count(&app).await, events, "a second run records nothing");

    let changed = declaration()
        .replace("ada@example.com", "ada@new.example.com")
        .replace("\"10m\"", "\"15m\"")
        .replace("name = \"Wiki\"", "name = \"Team wiki\"");
    std::fs::write(&file, changed).unwrap();
    let made = succeeded(apply(&app, &file, &[]).await, "changed file");
    assert!(made.contains("Making 2 change(s):"), "{made}");
    assert!(made.contains("~ person ada: email") && made.contains("~ app wiki: name, access_token_ttl"), "{made}");
    assert_eq!(json(&app, &["user", "list", "--json"]).await[0]["email"], "ada@new.example.com");
    let wiki = json(&app, &["app", "show", "wiki", "--json"]).await;
    assert_eq!((wiki["name"].as_str(), wiki["options"]["access_token_ttl"].as_i64()), (Some("Team wiki"), Some(900)));
}

async fn prune_alone_removes_what_the_file_does_not_mention(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "old"]).await;
    app.add_user("carol", PASSWORD, &["old"]).await;
    app.add_app("legacy", &[CALLBACK], &["--group", "old"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latch.toml");
    std::fs::write(
        &file,
        "[[group]]\nname = \"staff\"\n\n[[person]]\nusername = \"ada\"\nemail = \"ada@example.com\"\n",
    )
    .unwrap();

    let made = succeeded(apply(&app, &file, &[]).await, "apply");
    assert!(made.contains("Making 2 change(s):"), "nothing unmentioned is touched: {made}");
    assert_eq!(Browser::new().sign_in(&app.base, "carol", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let events = event_count(&app).await;

    let dry = succeeded(apply(&app, &file, &["--prune", "--dry-run"]).await, "prune dry run");
    assert!(dry.contains("Would make 3 change(s):"), "{dry}");
    for line in ["- app legacy", "~ person carol: disabled", "- group old"] {
        assert!(dry.contains(line), "{line} in {dry}");
    }
    assert_eq!(event_count(&app).await, events, "the dry run changed nothing");

    let before_prune = change_kinds(&app).await;
    succeeded(apply(&app, &file, &["--prune"]).await, "prune");
    let mut made = change_kinds(&app).await;
    for kind in before_prune {
        let at = made.iter().position(|made| *made == kind).expect("earlier events stay");
        made.remove(at);
    }
    assert_eq!(made, ["app_removed", "group_removed", "user_disabled"], "one event per change, each by cli:<user>");
    let apps = json(&app, &["app", "list", "--json"]).await;
    assert_eq!(apps, serde_json::json!([]));
    let groups = json(&app, &["group", "list", "--json"]).await;
    let staff = serde_json::json!({"name": "staff", "members": []});
    assert_eq!(groups, serde_json::json!([{"name": "latch-admins", "members": []}, staff]), "the built-in group stays");
    assert_eq!(Browser::new().sign_in(&app.base, "carol", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    let again = succeeded(apply(&app, &file, &["--prune"]).await, "prune again");
    assert!(again.starts_with("No changes"), "{again}");
}

/// Everything `app add` can set, on each kind of app, plus groups, a
/// disabled person and a person's memberships. Returns the confidential
/// app's secret.
async fn build_varied_state(app: &TestApp) -> String {
    app.admin(&["group", "add", "staff"]).await;
    app.admin(&["group", "add", "family"]).await;
    app.add_user("ada", PASSWORD, &["staff", "family"]).await;
    app.add_user("bob", PASSWORD, &[]).await;
    app.admin(&["user", "disable", "bob"]).await;
    let options = [
        "--group",
        "staff",
        "--code-ttl",
        "30s",
        "--access-token-ttl",
        "10m",
        "--refresh-token-ttl",
        "30d",
        "--consent",
        "explicit",
        "--signing-alg",
        "ES256",
        "--client-credentials",
        "--post-logout-redirect-uri",
        "https://grafana.example.com/bye",
        "--refresh-token-reuse-grace",
        "0",
        "--backchannel-logout-uri",
        "https://grafana.example.com/logout",
        "--device-code",
        "--device-code-ttl",
        "15m",
        "--webfinger",
        "--require-mfa",
    ];
    let grafana = app.add_app("grafana", &[CALLBACK, "https://grafana.example.com/cb"], &options).await;
    app.add_app("spa", &[CALLBACK], &["--public", "--signing-alg", "EdDSA"]).await;
    let proxy =
        ["app", "add", "uptime", "--name", "Uptime Kuma", "--proxy", "--external-url", "https://uptime.example.com"];
    let proxy_options = ["--cookie-domain", "example.com", "--group", "family", "--require-mfa=false"];
    app.admin(&[&proxy[..], &proxy_options].concat()).await;
    grafana.client_secret.expect("a confidential app")
}

async fn export_then_apply_on_an_empty_database_reproduces_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let secret = build_varied_state(&app).await;
    let exported = app.admin(&["export"]).await;
    assert!(!exported.contains(&secret), "no secrets: {exported}");
    for expected in [
        "disabled = true",
        "webfinger = true",
        "require_mfa = true",
        "require_mfa = false",
        "cookie_domain = \"example.com\"",
        "signing_alg = \"EdDSA\"",
    ] {
        assert!(exported.contains(expected), "{expected} in {exported}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latch.toml");
    std::fs::write(&file, &exported).unwrap();
    let Some(empty) = fresh_database(backend, dir.path()).await else { return };
    let path = file.display().to_string();
    let made = succeeded(run_latch(&empty, &app.base, &["apply", &path], None).await, "apply on an empty database");
    assert!(made.contains("Client secret of grafana written to"), "{made}");
    let secret_file = dir.path().join("secrets/grafana.client_secret");
    let mode = std::fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated secret is for its owner alone");

    let reproduced = succeeded(run_latch(&empty, &app.base, &["export"], None).await, "export again");
    assert_eq!(reproduced, exported, "the round trip keeps everything, client ids and disabled people included");
    let again = succeeded(run_latch(&empty, &app.base, &["apply", &path], None).await, "apply again");
    assert!(again.starts_with("No changes"), "{again}");
    // On the first database, the same file changes nothing either: the
    // secret file now exists but holds another secret than the app's, and
    // says so.
    let same = succeeded(run_latch(&app.database_url, &app.base, &["apply", &path, "--dry-run"], None).await, "dry");
    assert_eq!(
        same.lines().filter(|line| line.starts_with("  ")).collect::<Vec<_>>(),
        ["  ~ app grafana: client secret from file ".to_owned() + &secret_file.display().to_string()]
    );
    if backend == Backend::Postgres {
        drop_postgres_database(&empty);
    }
}

async fn secrets_come_from_the_environment_a_file_or_a_generated_file(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let file_secret = "file-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
    std::fs::write(dir.path().join("filed.secret"), format!("{file_secret}\n")).unwrap();
    let entry = |slug: &str, secret: &str| {
        format!(
            "[[app]]\nslug = \"{slug}\"\nname = \"{slug}\"\nredirect_uris = [\"{CALLBACK}\"]\n\
             client_credentials = true\nclient_secret = {secret}\n\n"
        )
    };
    let text = [
        entry("from-env", "{ env = \"ENV_SECRET\" }"),
        entry("from-file", "{ file = \"filed.secret\" }"),
        entry("generated", "{ generate = \"secrets/generated\" }"),
    ]
    .concat();
    let file = dir.path().join("latch.toml");
    std::fs::write(&file, &text).unwrap();
    let made = succeeded(apply(&app, &file, &[]).await, "apply");
    assert!(!made.contains(ENV_SECRET) && !made.contains(file_secret), "supplied secrets are not printed: {made}");
    let generated_path = dir.path().join("secrets/generated");
    let generated = std::fs::read_to_string(&generated_path).unwrap().trim_end().to_owned();
    assert_eq!(std::fs::metadata(&generated_path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("secrets")).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(!made.contains(&generated), "the generated secret is in its file only");
    let apps = json(&app, &["app", "list", "--json"]).await;
    assert!(secret_works(&app, &client_id(&apps, "from-env"), ENV_SECRET).await);
    assert!(secret_works(&app, &client_id(&apps, "from-file"), file_secret).await);
    assert!(secret_works(&app, &client_id(&apps, "generated"), &generated).await);
    assert!(!secret_works(&app, &client_id(&apps, "from-file"), ENV_SECRET).await, "each app its own secret");

    // A new value in the environment replaces the secret; the old one stops working.
    let path = file.display().to_string();
    let new_secret = "rotated-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
    let env = [("ENV_SECRET", new_secret)];
    let output = run_latch_with_env(&app.database_url, &app.base, &["apply", &path], None, &env).await;
    let made = succeeded(output, "apply with a new secret");
    assert!(made.contains("~ app from-env: client secret from environment variable ENV_SECRET"), "{made}");
    assert!(secret_works(&app, &client_id(&apps, "from-env"), new_secret).await);
    assert!(!secret_works(&app, &client_id(&apps, "from-env"), ENV_SECRET).await);

    // An unset variable or a short secret is refused before anything changes.
    let unset = run_latch(&app.database_url, &app.base, &["apply", &path], None).await;
    let error = String::from_utf8_lossy(&unset.stderr).into_owned();
    assert!(
        !unset.status.success()
            && error.contains("latch.toml:2: app from-env: client_secret: environment variable ENV_SECRET is not set"),
        "{error}"
    );
    std::fs::write(dir.path().join("filed.secret"), "short\n").unwrap();
    let short = apply(&app, &file, &[]).await;
    let error = String::from_utf8_lossy(&short.stderr).into_owned();
    assert!(
        !short.status.success() && error.contains("latch.toml:9: app from-file: client_secret from file"),
        "{error}"
    );
    assert!(secret_works(&app, &client_id(&apps, "from-file"), file_secret).await, "unchanged");
}

/// The one line on stderr of a refused `apply`, after checking that it
/// changed nothing.
async fn refusal(app: &TestApp, dir: &Path, text: &str) -> String {
    let file = dir.join("latch.toml");
    std::fs::write(&file, text).unwrap();
    let output = apply(app, &file, &[]).await;
    assert!(!output.status.success(), "{text} should be refused: {}", stdout(&output));
    assert_eq!(json(app, &["user", "list", "--json"]).await, serde_json::json!([]), "nothing changed");
    let groups = json(app, &["group", "list", "--json"]).await;
    assert_eq!(groups, serde_json::json!([{"name": "latch-admins", "members": []}]), "nothing changed");
    let stderr = String::from_utf8_lossy(&output.stderr).trim_end().to_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
        .strip_prefix(&format!("error: {}:", file.display()))
        .unwrap_or_else(|| panic!("names the file: {stderr}"))
        .to_owned()
}

async fn bad_files_are_refused_with_their_line_and_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let group = "[[group]]\nname = \"staff\"\n\n";
    let cases = [
        ("[[group]]\nname = \"staff\"\nmembers = [\"ada\"]\n".to_owned(), "3:1: unknown field `members`"),
        (format!("{group}[[persons]]\nusername = \"ada\"\n"), "4:3: unknown field `persons`"),
        (
            format!("{group}[[person]]\nusername = \"ada\"\nemail = \"ada@example.com\"\ngroups = [\"staf\"]\n"),
            "5: person ada: group \"staf\" is not declared",
        ),
        (
            format!("{group}[[person]]\nusername = \"ada\"\nemail = \"not an address\"\n"),
            "5: person ada: invalid email address",
        ),
        (
            format!("{group}[[app]]\nslug = \"web\"\nname = \"Web\"\npublic = true\nredirect_uris = [\"/relative\"]\n"),
            "5: app web: malformed redirect URI \"/relative\"",
        ),
        (
            format!("{group}[[app]]\nslug = \"web\"\nname = \"Web\"\npublic = \"yes\"\n"),
            "7:10: invalid type: string \"yes\", expected a boolean",
        ),
        (
            format!(
                "{group}[[app]]\nslug = \"web\"\nname = \"Web\"\npublic = true\n\n[[app]]\nslug = \"web\"\nname = \"Again\"\npublic = true\n"
            ),
            "10: app web: app \"web\" is declared twice",
        ),
        (format!("{group}[[person]]\nusername = \"ada\"\n"), "4:1: missing field `email`"),
        (format!("{group}name = \"stray\n"), "4:14: invalid basic string"),
    ];
    for (text, expected) in cases {
        let line = refusal(&app, dir.path(), &text).await;
        assert!(line.starts_with(expected), "{expected:?} vs {line:?} for\n{text}");
    }
    let output = run_latch(&app.database_url, &app.base, &["apply", "/nonexistent/latch.toml"], None).await;
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read /nonexistent/latch.toml"));
}

/// `app show --json` without what differs between two registrations.
async fn shown_without_credentials(app: &TestApp, slug: &str) -> serde_json::Value {
    let mut shown = json(app, &["app", "show", slug, "--json"]).await;
    let object = shown.as_object_mut().expect("object");
    for key in ["slug", "client_id", "client_secret", "id", "created_at"] {
        object.remove(key);
    }
    // The per-app endpoint URLs name the slug.
    serde_json::from_str(&shown.to_string().replace(&format!("/{slug}/"), "/<slug>/")).unwrap()
}

async fn a_preset_entry_registers_as_app_add_preset_and_its_keys_override(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latch.toml");
    let declared = "[[app]]\nslug = \"graf\"\nname = \"Grafana\"\npreset = \"grafana\"\n\
                    url = \"https://grafana.example.com\"\nclient_secret = { env = \"ENV_SECRET\" }\n\n\
                    [[app]]\nslug = \"kuma\"\nname = \"Uptime Kuma\"\npreset = \"uptime-kuma\"\n\
                    url = \"https://kuma.example.com\"\n";
    std::fs::write(&file, declared).unwrap();
    succeeded(apply(&app, &file, &[]).await, "apply");
    for (slug, preset, url) in
        [("graf", "grafana", "https://grafana.example.com"), ("kuma", "uptime-kuma", "https://kuma.example.com")]
    {
        let cli = format!("{slug}-cli");
        // One proxy app per address: the CLI's copy gets another host.
        let cli_url = url.replace("example.com", "example.org");
        app.admin(&["app", "add", &cli, "--preset", preset, "--url", &cli_url, "--json"]).await;
        let by_cli = shown_without_credentials(&app, &cli).await.to_string().replace(&cli_url, url);
        assert_eq!(shown_without_credentials(&app, slug).await.to_string(), by_cli, "{slug}");
    }
    let again = succeeded(apply(&app, &file, &[]).await, "second apply");
    assert!(again.contains("No changes"), "{again}");
    std::fs::write(&file, declared.replace("client_secret", "access_token_ttl = \"7m\"\nclient_secret")).unwrap();
    let dry = succeeded(apply(&app, &file, &["--dry-run"]).await, "dry run");
    assert!(dry.contains("access_token_ttl"), "{dry}");
    succeeded(apply(&app, &file, &[]).await, "override");
    let shown = json(&app, &["app", "show", "graf", "--json"]).await;
    assert_eq!(shown["options"]["access_token_ttl"], 420, "{shown}");
    let unknown = "\n[[app]]\nslug = \"x\"\nname = \"X\"\npreset = \"nope\"\nurl = \"https://x.example.com\"\n";
    std::fs::write(&file, unknown).unwrap();
    let output = apply(&app, &file, &[]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains(":3: app x: no preset named \"nope\""), "{stderr}");
}

on_every_backend!(
    apply_is_idempotent_and_a_dry_run_changes_nothing,
    prune_alone_removes_what_the_file_does_not_mention,
    export_then_apply_on_an_empty_database_reproduces_it,
    secrets_come_from_the_environment_a_file_or_a_generated_file,
    bad_files_are_refused_with_their_line_and_change_nothing,
    a_preset_entry_registers_as_app_add_preset_and_its_keys_override,
);
