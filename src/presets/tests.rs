use super::*;

/// The apps issue 16 names: each must have a preset.
const REQUIRED: [&str; 23] = [
    "grafana",
    "open-webui",
    "forgejo",
    "kavita",
    "karakeep",
    "uptime-kuma",
    "prometheus",
    "gitea",
    "nextcloud",
    "immich",
    "vaultwarden",
    "proxmox",
    "portainer",
    "jellyfin",
    "audiobookshelf",
    "paperless-ngx",
    "outline",
    "jupyterhub",
    "home-assistant",
    "argo-cd",
    "minio",
    "oauth2-proxy",
    "mod-auth-openidc",
];

/// Every placeholder of `kind` set to a value that shows where it went.
fn sample(kind: Kind) -> Placeholders {
    let mut values = Placeholders::default();
    for name in Placeholders::names(kind) {
        values.set(name, format!("<{name}>"));
    }
    values
}

#[test]
fn every_embedded_preset_parses_and_its_templates_expand() {
    let presets = all().unwrap_or_else(|error| panic!("{error}"));
    for name in REQUIRED {
        assert!(presets.iter().any(|preset| preset.name == name), "no preset {name}");
    }
    for preset in &presets {
        let values = sample(preset.kind.value);
        for template in preset.templates() {
            let expanded = expand(template, &values).unwrap_or_else(|error| panic!("{}: {error}", preset.name));
            assert!(!expanded.contains("{{"), "{}: {expanded}", preset.name);
        }
        assert_eq!(preset.oidc.is_some(), preset.kind.value == Kind::Oidc, "{}", preset.name);
        assert!(!preset.settings.is_empty(), "{} prints no settings", preset.name);
    }
}

#[test]
fn every_file_in_presets_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("presets/")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let embedded: Vec<String> = known_names().iter().map(|name| format!("{name}.toml")).collect();
    assert_eq!(files, embedded);
}

#[test]
fn an_unknown_preset_name_lists_the_known_ones() {
    let error = find("grafanna").unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("no preset named \"grafanna\"; known presets: argo-cd, audiobookshelf,"), "{text}");
    for name in REQUIRED {
        assert!(text.contains(name), "{text}");
    }
    assert_eq!(find("grafana").map(|preset| preset.title), Ok("Grafana".to_owned()));
}

/// A small valid preset; each test breaks one rule in it.
const MINIMAL: &str = r#"
title = "App"
configured_in = "environment variables"
[kind]
value = "oidc"
source = "https://example.com/docs"
[oidc.redirect_uris]
value = ["{{url}}/callback"]
source = "https://example.com/docs"
[oidc.client_type]
value = "confidential"
source = "https://example.com/docs"
[oidc.signing_alg]
value = "RS256"
source = "https://example.com/docs"
[oidc.scopes]
value = ["openid", "email"]
source = "https://example.com/docs"
[oidc.id_token_claims]
value = ["email"]
source = "https://example.com/docs"
[oidc.pkce]
value = false
source = "https://example.com/docs"
[oidc.refresh_tokens]
value = false
source = "https://example.com/docs"
[[settings]]
name = "CLIENT_ID"
value = "{{client_id}}"
source = "https://example.com/docs"
"#;

fn refusal(text: &str) -> String {
    match parse("app", text) {
        Err(PresetError::Invalid { name, reason }) => {
            assert_eq!(name, "app");
            reason
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_rules_of_a_preset_file_are_enforced() {
    let preset = parse("app", MINIMAL).expect("the minimal preset is valid");
    assert_eq!(preset.name, "app");
    let cases = [
        ("{{client_id}}", "{{client_idd}}", "unknown placeholder {{client_idd}}"),
        ("{{client_id}}", "{{outpost_url}}", "unknown placeholder {{outpost_url}}"),
        ("{{client_id}}", "{{client_id", "unclosed {{"),
        ("value = [\"email\"]", "value = [\"groups\"]", "claim \"groups\" is not released by the scopes"),
        ("value = [\"email\"]", "value = [\"shoe_size\"]", "Latch has no claim \"shoe_size\""),
        ("[\"openid\", \"email\"]", "[\"email\"]", "must include openid"),
        ("[\"openid\", \"email\"]", "[\"openid\", \"email\", \"phone\"]", "be ones Latch knows"),
        ("\"RS256\"", "\"HS256\"", "signing algorithm HS256 is not supported"),
        (
            "value = \"confidential\"\nsource = \"https://example.com/docs\"",
            "value = \"public\"\nsource = \"https://example.com/docs\"",
            "a public client must send PKCE",
        ),
        (
            "source = \"https://example.com/docs\"\n[oidc.refresh_tokens]\nvalue = false",
            "source = \"https://example.com/docs\"\n[oidc.refresh_tokens]\nvalue = true",
            "refresh tokens need the offline_access scope",
        ),
        ("value = [\"{{url}}/callback\"]", "value = []", "at least one redirect URI"),
        ("value = \"oidc\"", "value = \"proxy\"", "a proxy preset has no [oidc] table"),
        ("title = \"App\"", "title = \"App\"\ncolour = \"red\"", "unknown field `colour`"),
    ];
    for (from, to, expected) in cases {
        let broken = MINIMAL.replacen(from, to, 1);
        assert_ne!(broken, MINIMAL, "{from}");
        let reason = refusal(&broken);
        assert!(reason.contains(expected), "{expected:?} not in {reason:?}");
    }
    let unsourced = MINIMAL.replacen("source = \"https://example.com/docs\"", "source = \"the docs\"", 1);
    assert!(refusal(&unsourced).contains("is not a link"));
}

#[test]
fn templates_fill_in_values_and_leave_json_braces_alone() {
    let mut values = Placeholders::default();
    values.set("client_id", "abc").set("url", "https://a.example");
    let json = r#"{"apps": [{"client_id": "{{client_id}}", "settings": {"url": "{{url}}/x"}}]}"#;
    assert_eq!(
        expand(json, &values).unwrap(),
        r#"{"apps": [{"client_id": "abc", "settings": {"url": "https://a.example/x"}}]}"#
    );
    assert_eq!(expand("{{nope}}", &values).unwrap_err(), "unknown placeholder {{nope}} in \"{{nope}}\"");
}

#[test]
fn base_urls_are_absolute_http_without_query() {
    let url = BaseUrl::parse("https://Hub.example.com:8443/jupyter/").unwrap();
    assert_eq!(url.as_str(), "https://hub.example.com:8443/jupyter");
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.authority(), "hub.example.com:8443");
    assert_eq!(url.path(), "/jupyter");
    assert_eq!(url.origin(), "https://hub.example.com:8443");
    assert_eq!(BaseUrl::parse("http://127.0.0.1:8080").unwrap().as_str(), "http://127.0.0.1:8080");
    assert_eq!(BaseUrl::parse("http://127.0.0.1:8080").unwrap().path(), "");
    for bad in [
        "grafana.example.com",
        "ftp://a.example",
        "https://a.example/?x=1",
        "https://a.example/#f",
        "https://u:p@a.example",
    ] {
        let error = BaseUrl::parse(bad).unwrap_err().to_string();
        assert!(error.starts_with(&format!("invalid --url {bad:?}")), "{error}");
    }
}
