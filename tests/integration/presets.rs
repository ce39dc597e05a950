//! `latch app presets` and `latch app add --preset`: every embedded preset
//! registers the app its file describes — the redirect URIs from `--url`,
//! the client type, the signing algorithm — and a sign-in with the scopes
//! and PKCE the preset states yields an ID token with the claims it says
//! the app reads, and a refresh token exactly when it says the app keeps
//! one. The sign-ins through the real apps are in `preset_apps`.

use serde_json::Value;

use crate::common::{AppCredentials, Backend, Browser, TestApp, jwt_part, token_ok};
use crate::on_every_backend;
use crate::relying_party::{PASSWORD, random_verifier, server};

/// `app presets --json`.
async fn presets(app: &TestApp) -> Vec<Value> {
    serde_json::from_str(&app.admin(&["app", "presets", "--json"]).await).expect("app presets --json prints JSON")
}

/// `app add <slug> --preset <preset> --url <url> --json`.
pub async fn add_from_preset(app: &TestApp, slug: &str, preset: &str, url: &str) -> Value {
    let args = ["app", "add", slug, "--preset", preset, "--url", url, "--json"];
    serde_json::from_str(&app.admin(&args).await).expect("app add --json prints JSON")
}

/// A preset's template with `{{url}}` filled in.
fn with_url(template: &Value, url: &str) -> String {
    template.as_str().expect("template").replace("{{url}}", url)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(|item| item.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Signs `ada` in to the app as the preset says the app does and returns
/// the token response.
async fn sign_in_as_preset(
    app: &TestApp,
    browser: &Browser,
    credentials: &AppCredentials,
    needs: &Value,
    redirect_uri: &str,
) -> Value {
    let scope = strings(&needs["scopes"]["value"]).join(" ");
    let verifier = random_verifier();
    let challenge = {
        use base64::Engine;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    };
    let pkce = needs["pkce"]["value"] == true;
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", credentials.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", scope.as_str()),
        ("state", "s"),
        ("nonce", "n"),
    ];
    if pkce {
        params.extend([("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")]);
    }
    let code = browser.code(app, &params, "ada", PASSWORD).await;
    token_ok(app.redeem(credentials, &code, redirect_uri, pkce.then_some(verifier.as_str())).await).await
}

async fn every_preset_registers_what_its_file_states(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let presets = presets(&app).await;
    assert!(presets.len() >= 23, "{} presets", presets.len());
    let browser = Browser::new();
    for preset in &presets {
        let name = preset["name"].as_str().expect("name");
        let url = format!("https://{name}.example.com");
        let added = add_from_preset(&app, name, name, &url).await;
        assert_eq!(added["preset"], name);
        let settings = added["settings"].as_object().unwrap_or_else(|| panic!("{name}: no settings: {added}"));
        assert!(!settings.is_empty(), "{name}");
        for value in settings.values().chain(added["notes"].as_array().into_iter().flatten()) {
            assert!(!value.as_str().unwrap_or_default().contains("{{"), "{name}: unfilled placeholder in {value}");
        }
        let Some(needs) = preset.get("oidc").filter(|needs| !needs.is_null()) else {
            assert_eq!(preset["kind"]["value"], "proxy");
            assert_eq!(added["external_url"], url, "{name}");
            continue;
        };
        let credentials: AppCredentials = serde_json::from_value(added.clone()).expect("credentials");
        assert!(
            settings.values().any(|value| value.as_str().unwrap_or_default().contains(&credentials.client_id)),
            "{name}: the settings do not carry the client id: {added}"
        );
        let show: Value = serde_json::from_str(&app.admin(&["app", "show", name, "--json"]).await).expect("JSON");
        let mut expected: Vec<String> =
            needs["redirect_uris"]["value"].as_array().expect("uris").iter().map(|t| with_url(t, &url)).collect();
        expected
            .extend(needs["mobile_redirect_uris"]["value"].as_array().into_iter().flatten().map(|t| with_url(t, &url)));
        assert_eq!(strings(&show["redirect_uris"]), expected, "{name}");
        assert_eq!(show["options"]["signing_alg"], needs["signing_alg"]["value"], "{name}");
        assert_eq!(show["public"], needs["client_type"]["value"] == "public", "{name}");

        let tokens = sign_in_as_preset(&app, &browser, &credentials, needs, &expected[0]).await;
        let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("{name}: no ID token: {tokens}"));
        assert_eq!(jwt_part(id_token, 0)["alg"], needs["signing_alg"]["value"], "{name}");
        let claims = jwt_part(id_token, 1);
        assert_eq!(claims["aud"], credentials.client_id.as_str(), "{name}");
        for claim in strings(&needs["id_token_claims"]["value"]) {
            assert!(!claims[&claim].is_null(), "{name} reads {claim} from the ID token, which lacks it: {claims}");
        }
        if claims.get("email_verified").is_some() {
            assert_eq!(claims["email_verified"], true, "{name}");
        }
        let refresh = tokens.get("refresh_token").is_some_and(|token| token.is_string());
        assert_eq!(refresh, needs["refresh_tokens"]["value"] == true, "{name}: refresh token {refresh}: {tokens}");
    }
}

on_every_backend!(every_preset_registers_what_its_file_states);

async fn preset_errors_are_clear_and_write_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let refused = |output: std::process::Output| {
        assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let unknown =
        refused(app.latch(&["app", "add", "g", "--preset", "grafanna", "--url", "https://g.example.com"], None).await);
    assert!(unknown.contains("no preset named \"grafanna\"; known presets: argo-cd, audiobookshelf,"), "{unknown}");
    assert!(unknown.contains("uptime-kuma"), "{unknown}");
    let bad_url =
        refused(app.latch(&["app", "add", "g", "--preset", "grafana", "--url", "grafana.example.com"], None).await);
    assert!(bad_url.contains("invalid --url \"grafana.example.com\""), "{bad_url}");
    let proxy_path = refused(
        app.latch(&["app", "add", "u", "--preset", "uptime-kuma", "--url", "https://u.example.com/kuma"], None).await,
    );
    assert!(proxy_path.contains("must be just scheme, host and optional port"), "{proxy_path}");
    let conflict = refused(
        app.latch(
            &[
                "app",
                "add",
                "g",
                "--preset",
                "grafana",
                "--url",
                "https://g.example.com",
                "--redirect-uri",
                "https://x/cb",
            ],
            None,
        )
        .await,
    );
    assert!(conflict.contains("--redirect-uri") && conflict.contains("--preset"), "{conflict}");
    let no_url = refused(app.latch(&["app", "add", "g", "--preset", "grafana"], None).await);
    assert!(no_url.contains("--url"), "{no_url}");
    let options = refused(
        app.latch(
            &["app", "add", "g", "--preset", "grafana", "--url", "https://g.example.com", "--code-ttl", "30s"],
            None,
        )
        .await,
    );
    assert!(options.contains("--preset sets the app's options itself"), "{options}");
    assert_eq!(app.admin(&["app", "list", "--json"]).await.trim(), "[]", "a refused command registers nothing");

    add_from_preset(&app, "g", "grafana", "https://g.example.com").await;
    let again =
        refused(app.latch(&["app", "add", "g", "--preset", "grafana", "--url", "https://g.example.com"], None).await);
    assert!(again.contains("app \"g\" already exists"), "{again}");
}

on_every_backend!(preset_errors_are_clear_and_write_nothing);

/// The text `app add --preset` prints: the credentials, then each setting
/// with its real value, then what to do by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_add_with_a_preset_prints_what_to_paste() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else { return };
    let listing = app.admin(&["app", "presets"]).await;
    assert!(listing.contains("karakeep") && listing.contains("{{url}}/api/auth/callback/custom"), "{listing}");
    assert!(listing.lines().any(|line| line.starts_with("uptime-kuma") && line.contains("proxy")), "{listing}");

    let text =
        app.admin(&["app", "add", "grafana", "--preset", "grafana", "--url", "https://grafana.example.com/"]).await;
    let show: Value = serde_json::from_str(&app.admin(&["app", "show", "grafana", "--json"]).await).expect("JSON");
    let client_id = show["client_id"].as_str().expect("client id");
    assert_eq!(show["name"], "Grafana", "the preset's title is the default name");
    assert_eq!(strings(&show["redirect_uris"]), ["https://grafana.example.com/login/generic_oauth"]);
    assert!(text.contains(&format!("client_id:     {client_id}")), "{text}");
    assert!(text.contains("Settings for the app (environment variables"), "{text}");
    let line = |name: &str| text.lines().find(|line| line.trim_start().starts_with(name)).map(str::to_owned);
    let id_line = line("GF_AUTH_GENERIC_OAUTH_CLIENT_ID ").unwrap_or_else(|| panic!("{text}"));
    assert!(id_line.ends_with(client_id), "{id_line}");
    let root = line("GF_SERVER_ROOT_URL ").unwrap_or_else(|| panic!("{text}"));
    assert!(root.ends_with(" https://grafana.example.com"), "{root}");
    assert!(text.contains("By hand:\n  - "), "{text}");

    let unknown_group = app
        .latch(
            &["app", "add", "o", "--preset", "open-webui", "--url", "https://o.example.com", "--group", "nobody"],
            None,
        )
        .await;
    assert!(!unknown_group.status.success());
    assert!(String::from_utf8_lossy(&unknown_group.stderr).contains("no group named \"nobody\""));
}
