//! Fuzzing with property tests: every parser that takes untrusted input
//! gets thousands of random and adversarial inputs, must never panic, and
//! must keep its promise (round trips, no open redirect, no forged token).
//!
//! - authorization request and token request parameters (form/query
//!   decoding into `Params`), redirect URI explanations, `next` targets;
//! - `Authorization: Basic` (client authentication);
//! - cookies;
//! - JWS as presented in `id_token_hint` (and access tokens): random and
//!   mutated tokens never verify;
//! - `Authorization: Bearer` and every endpoint's input over real HTTP
//!   (that parser is private to the web layer): no 5xx, no dropped connection.
//!
//! The HTTP property runs against SQLite and against PostgreSQL.
//!
//! Each property runs 2,000 cases (the HTTP one 300), which takes seconds.
//! To search longer, raise the count for every property at once, e.g.
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latch::crypto::jws;
use latch::crypto::keys::{SigningAlg, SigningKey};
use latch::login::safe_next;
use latch::oidc::client_auth::parse_basic;
use latch::oidc::params::{ParamError, Params, decode_pairs, has_control_character, shown_name};
use latch::oidc::redirect_uri::explain_mismatch;
use latch::web::cookies;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest::test_runner::TestCaseError;

use common::Backend;

/// The integration tests' harness, for its databases (SQLite, or a fresh
/// PostgreSQL database per run).
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "integration/common.rs"]
mod common;
use serde_json::{Value, json};

/// `PROPTEST_CASES` if set, else `default`; no regression files written.
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|raw| raw.parse().ok()).unwrap_or(default);
    Config { cases, failure_persistence: None, ..Config::default() }
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

/// Text an attacker would try: arbitrary Unicode, printable ASCII, and
/// runs of the characters parsers care about.
fn hostile_text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,48}",
        proptest::collection::vec(
            prop::sample::select(vec![
                "%",
                "%2",
                "%25",
                "%00",
                "%0A",
                "%E2%80%AE",
                "%FF",
                "&",
                "=",
                "+",
                ";",
                ":",
                "/",
                "//",
                "\\",
                "?",
                "#",
                "\"",
                "'",
                "<",
                ">",
                " ",
                "\t",
                "\n",
                "\r",
                "\u{0}",
                "\u{202e}",
                "\u{feff}",
                "é",
                "𝔞",
                ".",
                "..",
                "a",
                "Z",
                "0",
                "-",
                "_",
                "~",
            ]),
            0..24,
        )
        .prop_map(|parts| parts.concat()),
    ]
    .boxed()
}

/// Names of parameters the endpoints read, and some they don't.
fn param_name() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "nonce",
            "prompt",
            "max_age",
            "login_hint",
            "id_token_hint",
            "code_challenge",
            "code_challenge_method",
            "response_mode",
            "grant_type",
            "code",
            "code_verifier",
            "refresh_token",
            "client_secret",
            "token",
            "token_type_hint",
            "access_token",
            "post_logout_redirect_uri",
            "next",
            "username",
            "password",
            "csrf_token",
            "latch_consent",
            "request",
            "",
        ])
        .prop_map(str::to_owned),
        hostile_text(),
    ]
    .boxed()
}

fn pairs() -> BoxedStrategy<Vec<(String, String)>> {
    proptest::collection::vec((param_name(), hostile_text()), 0..12).boxed()
}

/// URL-ish strings: mostly valid absolute URLs near each other, so that
/// every branch of a comparison is reached.
fn url_like() -> BoxedStrategy<String> {
    let scheme = prop::sample::select(vec!["https", "http", "HTTPS", "app", "javascript", "file", ""]);
    let host = prop::sample::select(vec![
        "app.example.com",
        "APP.example.com",
        "app.example.com.",
        "xn--e1afmkfd.example",
        "bücher.example",
        "127.0.0.1",
        "[::1]",
        "user:pw@app.example.com",
        "",
    ]);
    let port = prop::option::of(prop::sample::select(vec!["443", "80", "8443", "0", "65535", "99999", ""]));
    let path = proptest::collection::vec("[a-zA-Z0-9%._~-]{0,8}", 0..4)
        .prop_map(|parts| parts.iter().map(|part| format!("/{part}")).collect::<String>());
    let query = prop::option::of("[a-z0-9=&%]{0,12}");
    let fragment = prop::option::of("[a-z0-9]{0,6}");
    (scheme, host, port, path, query, fragment)
        .prop_map(|(scheme, host, port, path, query, fragment)| {
            let mut url = format!("{scheme}://{host}");
            if let Some(port) = port {
                url.push(':');
                url.push_str(port);
            }
            url.push_str(&path);
            if let Some(query) = query {
                url.push('?');
                url.push_str(&query);
            }
            if let Some(fragment) = fragment {
                url.push('#');
                url.push_str(&fragment);
            }
            url
        })
        .boxed()
}

// ---------------------------------------------------------------------------
// Request parameters: authorization requests, token requests, forms.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2000))]

    /// Any encoded form or query decodes back to exactly its pairs;
    /// `Params` keeps every value (empty counts as absent) or names a
    /// parameter that really was repeated or holds a control character.
    #[test]
    fn encoded_parameters_round_trip_through_params(pairs in pairs()) {
        let encoded = serde_urlencoded::to_string(&pairs).expect("encode");
        let decoded = decode_pairs(encoded.as_bytes()).expect("an encoded form of text decodes");
        prop_assert_eq!(&decoded, &pairs);
        match Params::from_pairs(decoded) {
            Ok(params) => {
                for (name, value) in &pairs {
                    prop_assert_eq!(params.get(name), Some(value.as_str()).filter(|value| !value.is_empty()));
                }
                let sorted = params.sorted_pairs();
                prop_assert!(sorted.windows(2).all(|pair| pair[0] <= pair[1]));
                prop_assert_eq!(sorted.len(), pairs.len());
            }
            Err(ParamError::Repeated(repeated)) => {
                let times = |sent: &String| pairs.iter().filter(|(name, _)| name == sent).count();
                let really = pairs.iter().any(|(name, _)| shown_name(name) == repeated && times(name) >= 2);
                prop_assert!(really, "{} was not repeated", repeated);
            }
            Err(ParamError::NotUtf8) => prop_assert!(false, "text decoded as non-UTF-8"),
            Err(ParamError::ControlCharacter(name)) => {
                let refused = pairs.iter().any(|(sent, value)| {
                    shown_name(sent) == name && (has_control_character("", sent) || has_control_character(sent, value))
                });
                prop_assert!(refused, "{} carries no control character", name);
            }
        }
    }

    /// Raw bytes as a query string or form body (what a client may send to
    /// the authorization, token, revocation, introspection, end-session
    /// and login endpoints) decode with Latch's decoder into pairs that
    /// survive encoding and decoding again, or are refused as not UTF-8
    /// only when a percent-decoded name or value really is not.
    #[test]
    fn raw_forms_and_queries_decode_or_name_the_cause(
        raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            hostile_text().prop_map(String::into_bytes),
            pairs().prop_map(|pairs| {
                pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&").into_bytes()
            }),
        ]
    ) {
        let text = |part: &[u8]| percent_encoding::percent_decode(part).decode_utf8().is_ok();
        let all_text = raw.split(|byte| *byte == b'&').all(|pair| pair.splitn(2, |byte| *byte == b'=').all(text));
        match decode_pairs(&raw) {
            Ok(pairs) => {
                prop_assert!(all_text, "undecodable bytes were accepted");
                let encoded = serde_urlencoded::to_string(&pairs).expect("encode");
                prop_assert_eq!(decode_pairs(encoded.as_bytes()), Ok(pairs));
            }
            Err(ParamError::NotUtf8) => prop_assert!(!all_text, "text refused as not UTF-8"),
            Err(other) => prop_assert!(false, "decoding refused with {}", other),
        }
    }

    /// Explaining a redirect URI mismatch never panics, whatever was sent
    /// or registered, and always quotes what was sent.
    #[test]
    fn redirect_uri_explanations_never_panic(
        sent in prop_oneof![url_like(), hostile_text()],
        registered in proptest::collection::vec(prop_oneof![3 => url_like(), 1 => hostile_text()], 0..4),
    ) {
        let message = explain_mismatch(&sent, &registered);
        prop_assert!(message.contains(&format!("{sent:?}")), "{}", message);
        if registered.is_empty() {
            prop_assert!(message.contains("no registered redirect URI"), "{}", message);
        }
    }

    /// A near miss (one character changed in a registered URI) is explained
    /// by the part that differs.
    #[test]
    fn near_miss_redirect_uris_name_a_part(
        registered in url_like(),
        at in any::<prop::sample::Index>(),
        c in any::<char>(),
    ) {
        let mut chars: Vec<char> = registered.chars().collect();
        prop_assume!(!chars.is_empty());
        let index = at.index(chars.len());
        chars[index] = if chars[index] == c { '\u{1F600}' } else { c };
        let sent: String = chars.into_iter().collect();
        let message = explain_mismatch(&sent, std::slice::from_ref(&registered));
        prop_assert!(message.contains(&format!("{sent:?}")), "{}", message);
        prop_assert!(message.contains(" differs ") || message.contains("not an absolute URL"), "{}", message);
    }

    /// `next` after sign-in is this server's path or `/`: resolved the way
    /// a browser resolves a `Location`, it never leaves the origin.
    #[test]
    fn next_never_leaves_the_origin(
        next in prop_oneof![
            hostile_text(),
            (prop::sample::select(vec![
                "/", "//", "/\\", "\\", "\\\\", "/%2F", "/%5C", "/./", "/../", "/.//", "/..//", "http:", "https://",
                "https:/", "javascript:", "data:", " /", "\t/", "/\t/", "/\n/", "\u{3000}/", "/\u{3000}/", "／",
            ]), hostile_text()).prop_map(|(head, tail)| format!("{head}{tail}")),
        ]
    ) {
        let chosen = safe_next(Some(&next));
        prop_assert!(chosen == "/" || chosen == next);
        let page = url::Url::parse("https://sso.example.com/login").expect("base");
        let target = page.join(chosen).expect("a path resolves");
        prop_assert_eq!(target.scheme(), "https");
        prop_assert_eq!(target.host_str(), Some("sso.example.com"), "{:?} leads to {}", next, target);
        prop_assert_eq!(target.port(), None);
    }

    /// Client credentials, form-urlencoded as RFC 6749 §2.3.1 says, come
    /// back exactly, unless one holds a control character (then the header
    /// is refused as malformed); any other header is refused or parsed
    /// without panic.
    #[test]
    fn basic_credentials_round_trip(id in hostile_text(), secret in hostile_text()) {
        let encode = |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let header = format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(&id), encode(&secret))));
        let parsed = parse_basic(&header).map_err(|error| error.description.clone());
        if has_control_character("", &id) || has_control_character("", &secret) {
            let refused = "the Basic credentials are not form-urlencoded, or carry a control character";
            prop_assert_eq!(parsed, Err(refused.into()));
        } else {
            prop_assert_eq!(parsed, Ok((id, secret)));
        }
    }

    #[test]
    fn any_authorization_header_parses_without_panic(
        header in prop_oneof![
            hostile_text(),
            hostile_text().prop_map(|text| format!("Basic {text}")),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| format!("Basic {}", STANDARD.encode(bytes))),
            (hostile_text(), hostile_text())
                .prop_map(|(id, secret)| format!("basic {}", STANDARD.encode(format!("{id}:{secret}")))),
        ]
    ) {
        if let Ok((id, secret)) = parse_basic(&header) {
            // Whatever decodes is text the store can be asked about.
            prop_assert!(id.len() + secret.len() <= header.len() * 3);
        }
    }

    /// Cookies: our cookie is found among any others, in any header;
    /// garbage headers never panic.
    #[test]
    fn cookies_are_found_among_others(
        token in "[A-Za-z0-9_-]{1,64}",
        others in proptest::collection::vec(("x[a-z0-9_]{0,8}", "[!#-+\\--:<-\\[\\]-~]{0,16}"), 0..6),
        position in any::<prop::sample::Index>(),
        split in any::<prop::sample::Index>(),
    ) {
        let mut pairs: Vec<String> = others.iter().map(|(name, value)| format!("{name}={value}")).collect();
        pairs.insert(position.index(pairs.len() + 1), format!("{}={token}", cookies::SESSION));
        // Browsers send one header; proxies and HTTP/2 may split it in several.
        let cut = split.index(pairs.len() + 1);
        let mut headers = HeaderMap::new();
        for part in [&pairs[..cut], &pairs[cut..]] {
            if !part.is_empty() {
                headers.append(COOKIE, HeaderValue::from_str(&part.join("; ")).expect("cookie header"));
            }
        }
        prop_assert_eq!(cookies::read(&headers, cookies::SESSION), Some(token));
        prop_assert_eq!(cookies::read(&headers, cookies::CSRF), None);
    }

    #[test]
    fn any_cookie_header_reads_without_panic(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..3),
    ) {
        let mut headers = HeaderMap::new();
        for value in values {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.append(COOKIE, value);
            }
        }
        // Every cookie read is a whole one, and the first of its name wins.
        let sent = cookies::pairs(&headers);
        for (name, value) in &sent {
            prop_assert!(!name.contains(';') && !value.contains(';') && !name.contains('='));
            let first = sent.iter().find(|(other, _)| other == name).map(|(_, value)| *value);
            let read = cookies::read(&headers, name);
            prop_assert_eq!(read.as_deref(), first);
        }
    }
}

// ---------------------------------------------------------------------------
// JWS (id_token_hint, access tokens).
// ---------------------------------------------------------------------------

/// One key of each algorithm, and a token each signed.
fn keys() -> &'static [(SigningKey, String)] {
    static KEYS: OnceLock<Vec<(SigningKey, String)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        SigningAlg::ALL
            .iter()
            .map(|&alg| {
                let (key, _) = SigningKey::generate(alg).expect("generate");
                let claims = json!({"iss": "https://sso.example.com/application/o/grafana/", "sub": "ada",
                                    "aud": "client", "exp": 4_000_000_000_u64});
                let token = jws::sign(&key, "JWT", &claims).expect("sign");
                (key, token)
            })
            .collect()
    })
}

fn verify(token: &str) -> Result<Value, jws::JwsError> {
    jws::verify(token, jws::ID_TOKEN_TYP, |kid| keys().iter().map(|(key, _)| key).find(|key| key.kid() == kid))
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, char),
    Insert(prop::sample::Index, char),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
    Append(String),
    /// The header re-encoded with another `alg` (algorithm confusion).
    Alg(String),
    /// Other claims under the same signature.
    Claims(String),
    /// The signature of another key's token.
    Signature(prop::sample::Index),
    /// Two parts swapped.
    Swap(usize, usize),
}

fn mutation() -> BoxedStrategy<Mutation> {
    let base64_char = prop_oneof![
        prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/".chars().collect::<Vec<_>>()
        ),
        any::<char>(),
    ];
    prop_oneof![
        (any::<prop::sample::Index>(), base64_char.clone()).prop_map(|(at, c)| Mutation::Replace(at, c)),
        (any::<prop::sample::Index>(), base64_char).prop_map(|(at, c)| Mutation::Insert(at, c)),
        any::<prop::sample::Index>().prop_map(Mutation::Delete),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        prop_oneof![Just(".".to_owned()), Just("=".to_owned()), hostile_text()].prop_map(Mutation::Append),
        prop_oneof![
            prop::sample::select(vec!["none", "None", "HS256", "RS256", "ES256", "EdDSA", "PS256", "RS512", ""])
                .prop_map(str::to_owned),
            hostile_text(),
        ]
        .prop_map(Mutation::Alg),
        prop_oneof![Just(r#"{"sub":"admin"}"#.to_owned()), Just("{}".to_owned()), hostile_text()]
            .prop_map(Mutation::Claims),
        any::<prop::sample::Index>().prop_map(Mutation::Signature),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
    .boxed()
}

fn mutate(token: &str, mutation: &Mutation) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    match mutation {
        Mutation::Replace(at, c) => {
            let index = at.index(token.len());
            format!("{}{c}{}", &token[..index], &token[index + 1..])
        }
        Mutation::Insert(at, c) => {
            let index = at.index(token.len() + 1);
            format!("{}{c}{}", &token[..index], &token[index..])
        }
        Mutation::Delete(at) => {
            let index = at.index(token.len());
            format!("{}{}", &token[..index], &token[index + 1..])
        }
        Mutation::Truncate(at) => token[..at.index(token.len())].to_owned(),
        Mutation::Append(tail) => format!("{token}{tail}"),
        Mutation::Alg(alg) => {
            let header = URL_SAFE_NO_PAD.decode(parts[0]).ok();
            let header: Value = header.and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default();
            let header = json!({"alg": alg, "typ": "JWT", "kid": header["kid"]});
            let rest = parts.get(1..).unwrap_or_default().join(".");
            format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
        }
        Mutation::Claims(claims) => {
            let mut parts = parts;
            let encoded = URL_SAFE_NO_PAD.encode(claims);
            match parts.get_mut(1) {
                Some(part) => *part = &encoded,
                None => parts.push(&encoded),
            }
            parts.join(".")
        }
        Mutation::Signature(other) => {
            let others = keys();
            let donor = others[other.index(others.len())].1.rsplit('.').next().unwrap_or_default();
            let mut parts = parts;
            if let Some(last) = parts.last_mut() {
                *last = donor;
            }
            parts.join(".")
        }
        Mutation::Swap(a, b) => {
            let mut parts = parts;
            let count = parts.len();
            parts.swap(a % count, b % count);
            parts.join(".")
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// A token Latch signed, changed in any way, never verifies (and the
    /// unchanged one does, so the property can fail).
    #[test]
    fn mutated_tokens_never_verify(which in 0..3usize, mutation in mutation()) {
        let (_, token) = &keys()[which];
        prop_assert!(verify(token).is_ok(), "the unchanged token must verify");
        let mutated = mutate(token, &mutation);
        // Some mutations change nothing (a character replaced by itself).
        if mutated != *token {
            prop_assert!(verify(&mutated).is_err(), "{:?} verified: {}", mutation, mutated);
        }
    }

    /// Random tokens, shaped like a JWS or not, with a real `kid` or not,
    /// never verify and never panic.
    #[test]
    fn random_tokens_never_verify(
        token in prop_oneof![
            hostile_text(),
            (
                prop_oneof![
                    prop::sample::select(vec!["none", "HS256", "RS256", "ES256", "EdDSA"]).prop_map(str::to_owned),
                    hostile_text(),
                ],
                prop_oneof![
                    (0..3usize).prop_map(|which| Value::from(keys()[which].0.kid())),
                    hostile_text().prop_map(Value::from),
                    Just(Value::Null),
                    Just(json!(["array"])),
                    Just(json!(7)),
                ],
                hostile_text(),
                proptest::collection::vec(any::<u8>(), 0..300),
            ).prop_map(|(alg, kid, claims, signature)| {
                let header = json!({"alg": alg, "kid": kid});
                format!(
                    "{}.{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims),
                    URL_SAFE_NO_PAD.encode(signature)
                )
            }),
            proptest::collection::vec("[A-Za-z0-9_-]{0,40}", 0..6).prop_map(|parts| parts.join(".")),
        ]
    ) {
        prop_assert!(verify(&token).is_err(), "verified: {}", token);
    }
}

// ---------------------------------------------------------------------------
// Over HTTP: Bearer headers and every endpoint's input.
// ---------------------------------------------------------------------------

const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "https://app.example.com/oauth2/callback";

/// A server with a user, an app, and genuine tokens to mutate. A
/// PostgreSQL database is dropped with it.
struct Target {
    runtime: tokio::runtime::Runtime,
    held: Held,
    backend: Backend,
    database_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            common::drop_postgres_database(&self.database_url);
        }
    }
}

/// What the fuzzer holds: where the server is, and genuine credentials.
struct Held {
    base: String,
    client_id: String,
    client_secret: String,
    session: String,
    access_token: String,
    refresh_token: String,
    id_token: String,
}

/// The SQLite target, shared by every case of the property.
fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| Target::start(Backend::Sqlite).expect("SQLite is always available"))
}

impl Target {
    /// `None` when PostgreSQL is unreachable outside CI.
    fn start(backend: Backend) -> Option<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = runtime.block_on(common::fresh_database(backend, dir.path()))?;
        let held = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            let latch = |args: &[&str], stdin: Option<&str>| {
                use std::io::Write;
                let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latch"))
                    .args(args)
                    .env("LATCH_DATABASE_URL", &database_url)
                    .env("LATCH_PUBLIC_URL", &base)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("latch");
                child.stdin.take().expect("stdin").write_all(stdin.unwrap_or_default().as_bytes()).expect("stdin");
                let output = child.wait_with_output().expect("latch");
                assert!(output.status.success(), "latch {args:?}: {}", String::from_utf8_lossy(&output.stderr));
                String::from_utf8_lossy(&output.stdout).into_owned()
            };
            latch(&["user", "add", "ada", "--email", "ada@example.com", "--password-stdin"], Some(PASSWORD));
            let app: Value = serde_json::from_str(&latch(
                &["app", "add", "grafana", "--name", "Grafana", "--redirect-uri", CALLBACK, "--json"],
                None,
            ))
            .expect("app add --json");
            latch(
                &["app", "add", "wiki", "--name", "Wiki", "--proxy", "--external-url", "https://wiki.example.com"],
                None,
            );
            let config = latch::config::ConfigArgs {
                public_url: Some(base.clone()),
                database_url: Some(database_url.clone()),
                data_dir: Some(dir.path().display().to_string()),
                ..Default::default()
            }
            .load()
            .expect("config");
            let server = latch::server::Server::with_listener(&config, listener).await.expect("server");
            tokio::spawn(async move { server.run(std::future::pending()).await.expect("server runs") });

            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let page = browser.get(format!("{base}/login")).send().await.expect("login").text().await.expect("page");
            let marker = "name=\"csrf_token\" value=\"";
            let start = page.find(marker).expect("csrf_token") + marker.len();
            let csrf = &page[start..start + page[start..].find('"').expect("end")];
            let signed_in = browser
                .post(format!("{base}/login"))
                .form(&[("csrf_token", csrf), ("next", "/"), ("username", "ada"), ("password", PASSWORD)])
                .send()
                .await
                .expect("sign in");
            let session = signed_in
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(|cookie| cookie.strip_prefix("latch_session="))
                .and_then(|rest| rest.split(';').next())
                .expect("session cookie")
                .to_owned();
            let client_id = app["client_id"].as_str().expect("client_id").to_owned();
            let client_secret = app["client_secret"].as_str().expect("client_secret").to_owned();
            let authorize = url::Url::parse_with_params(
                &format!("{base}/application/o/authorize/"),
                [
                    ("response_type", "code"),
                    ("client_id", &client_id),
                    ("redirect_uri", CALLBACK),
                    ("scope", "openid profile offline_access"),
                ],
            )
            .expect("url");
            let redirect = browser.get(authorize).send().await.expect("authorize");
            let location = redirect.headers().get("location").and_then(|v| v.to_str().ok()).expect("location");
            let code = url::Url::parse(location)
                .expect("callback")
                .query_pairs()
                .find(|(name, _)| name == "code")
                .expect("code")
                .1
                .into_owned();
            let tokens: Value = reqwest::Client::new()
                .post(format!("{base}/application/o/token/"))
                .basic_auth(&client_id, Some(&client_secret))
                .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)])
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("tokens");
            let field = |name: &str| tokens[name].as_str().unwrap_or_else(|| panic!("no {name}: {tokens}")).to_owned();
            Held {
                base,
                client_id,
                client_secret,
                session,
                access_token: field("access_token"),
                refresh_token: field("refresh_token"),
                id_token: field("id_token"),
            }
        });
        Some(Target { runtime, held, backend, database_url, _dir: dir })
    }
}

/// A header value from raw bytes, when HTTP allows it at all.
fn header_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        hostile_text().prop_map(String::into_bytes),
        proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..80),
    ]
    .boxed()
}

/// A secret we hold, mutated or not, or junk.
#[derive(Debug, Clone)]
enum Credential {
    AccessToken(Option<Mutation>),
    RefreshToken(Option<Mutation>),
    IdToken(Option<Mutation>),
    ClientSecret(Option<Mutation>),
    Junk(String),
}

fn secret() -> BoxedStrategy<Credential> {
    let maybe = || prop::option::of(mutation());
    prop_oneof![
        maybe().prop_map(Credential::AccessToken),
        maybe().prop_map(Credential::RefreshToken),
        maybe().prop_map(Credential::IdToken),
        maybe().prop_map(Credential::ClientSecret),
        hostile_text().prop_map(Credential::Junk),
    ]
    .boxed()
}

impl Credential {
    fn value(&self, target: &Held) -> String {
        let (original, mutation) = match self {
            Self::AccessToken(mutation) => (&target.access_token, mutation),
            Self::RefreshToken(mutation) => (&target.refresh_token, mutation),
            Self::IdToken(mutation) => (&target.id_token, mutation),
            Self::ClientSecret(mutation) => (&target.client_secret, mutation),
            Self::Junk(text) => return text.clone(),
        };
        match mutation {
            // The refresh token and client secret are opaque: any change will do.
            Some(mutation) => {
                let dotted = if original.contains('.') { original.clone() } else { format!("{original}.x.y") };
                mutate(&dotted, mutation)
            }
            None => original.clone(),
        }
    }
}

/// One request an attacker might send.
#[derive(Debug, Clone)]
struct Request {
    endpoint: usize,
    authorization: Option<AuthorizationHeader>,
    content_type: Option<&'static str>,
    /// Form fields; values may be our secrets.
    form: Vec<(String, Field)>,
    /// Raw body bytes, used instead of the form when present.
    raw_body: Option<Vec<u8>>,
    cookie: Option<CookieHeader>,
    extra_headers: Vec<(&'static str, Vec<u8>)>,
}

#[derive(Debug, Clone)]
enum AuthorizationHeader {
    Bearer(Credential),
    Basic(Field, Credential),
    Raw(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Field {
    ClientId,
    Secret(Credential),
    Text(String),
    Callback,
}

#[derive(Debug, Clone)]
enum CookieHeader {
    Session,
    Raw(Vec<u8>),
}

const ENDPOINTS: [(&str, &str); 14] = [
    ("GET", "/application/o/userinfo/"),
    ("POST", "/application/o/userinfo/"),
    ("POST", "/application/o/token/"),
    ("POST", "/application/o/revoke/"),
    ("POST", "/application/o/introspect/"),
    ("GET", "/application/o/authorize/"),
    ("POST", "/application/o/authorize/"),
    ("GET", "/application/o/grafana/end-session/"),
    ("POST", "/application/o/grafana/end-session/"),
    ("POST", "/login"),
    ("GET", "/login"),
    ("GET", "/outpost.goauthentik.io/auth/nginx"),
    ("GET", "/outpost.goauthentik.io/start"),
    ("GET", "/outpost.goauthentik.io/callback"),
];

fn field() -> BoxedStrategy<Field> {
    prop_oneof![
        Just(Field::ClientId),
        Just(Field::Callback),
        secret().prop_map(Field::Secret),
        hostile_text().prop_map(Field::Text)
    ]
    .boxed()
}

fn request() -> BoxedStrategy<Request> {
    let authorization = prop::option::of(prop_oneof![
        secret().prop_map(AuthorizationHeader::Bearer),
        (field(), secret()).prop_map(|(id, secret)| AuthorizationHeader::Basic(id, secret)),
        header_bytes().prop_map(AuthorizationHeader::Raw),
    ]);
    let content_type = prop::option::of(prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
    ]));
    let header_name = prop::sample::select(vec![
        "x-original-url",
        "x-original-uri",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-uri",
        "x-forwarded-for",
        "host",
        "x-request-id",
        "user-agent",
        "origin",
    ]);
    (
        0..ENDPOINTS.len(),
        authorization,
        content_type,
        proptest::collection::vec((param_name(), field()), 0..8),
        prop::option::weighted(0.2, proptest::collection::vec(any::<u8>(), 0..300)),
        prop::option::of(prop_oneof![Just(CookieHeader::Session), header_bytes().prop_map(CookieHeader::Raw)]),
        proptest::collection::vec((header_name, header_bytes()), 0..3),
    )
        .prop_map(|(endpoint, authorization, content_type, form, raw_body, cookie, extra_headers)| Request {
            endpoint,
            authorization,
            content_type,
            form,
            raw_body,
            cookie,
            extra_headers,
        })
        .boxed()
}

impl Field {
    fn value(&self, target: &Held) -> String {
        match self {
            Self::ClientId => target.client_id.clone(),
            Self::Callback => CALLBACK.to_owned(),
            Self::Secret(secret) => secret.value(target),
            Self::Text(text) => text.clone(),
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Whatever arrives, every endpoint answers, and never with a 5xx: no
    /// panic, no internal error, no dropped connection.
    #[test]
    fn no_request_makes_the_server_fail(request in request()) {
        answers_without_failing(target(), &request)?;
    }
}

/// The same on PostgreSQL, which refuses text SQLite stores (a NUL byte).
#[test]
fn no_request_makes_the_server_fail_on_postgres() {
    let Some(target) = Target::start(Backend::Postgres) else { return };
    let mut runner = proptest::test_runner::TestRunner::new(config(300));
    let result = runner.run(&request(), |request| answers_without_failing(&target, &request));
    drop(target);
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// One request sent to `target`: an answer, not a 5xx, came back whole.
fn answers_without_failing(target: &Target, request: &Request) -> Result<(), TestCaseError> {
    let Target { runtime, held: target, .. } = target;
    let (method, path) = ENDPOINTS[request.endpoint];
    let form: Vec<(String, String)> =
        request.form.iter().map(|(name, value)| (name.clone(), value.value(target))).collect();
    let encoded = serde_urlencoded::to_string(&form).expect("encode");
    let url = match method {
        "GET" => format!("{}{path}?{encoded}", target.base),
        _ => format!("{}{path}", target.base),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut builder = client.request(method.parse().expect("method"), &url);
    if method == "POST" {
        builder = builder.body(request.raw_body.clone().unwrap_or_else(|| encoded.clone().into_bytes()));
    }
    if let Some(content_type) = request.content_type {
        builder = builder.header("content-type", content_type);
    }
    let authorization = match &request.authorization {
        None => None,
        Some(AuthorizationHeader::Bearer(secret)) => Some(format!("Bearer {}", secret.value(target)).into_bytes()),
        Some(AuthorizationHeader::Basic(id, secret)) => {
            let credentials = format!("{}:{}", id.value(target), secret.value(target));
            Some(format!("Basic {}", STANDARD.encode(credentials)).into_bytes())
        }
        Some(AuthorizationHeader::Raw(bytes)) => Some(bytes.clone()),
    };
    if let Some(value) = authorization.and_then(|bytes| HeaderValue::from_bytes(&bytes).ok()) {
        builder = builder.header("authorization", value);
    }
    let cookie = match &request.cookie {
        None => None,
        Some(CookieHeader::Session) => Some(format!("latch_session={}", target.session).into_bytes()),
        Some(CookieHeader::Raw(bytes)) => Some(bytes.clone()),
    };
    if let Some(value) = cookie.and_then(|bytes| HeaderValue::from_bytes(&bytes).ok()) {
        builder = builder.header("cookie", value);
    }
    for (name, value) in &request.extra_headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            builder = builder.header(*name, value);
        }
    }
    let answer = runtime.block_on(async move {
        let response = builder.send().await.map_err(|error| format!("no answer: {error:?}"))?;
        let status = response.status();
        response.bytes().await.map_err(|error| format!("{status}, then the body broke off: {error:?}"))?;
        Ok::<_, String>(status)
    });
    match answer {
        Ok(status) => prop_assert!(!status.is_server_error(), "{} {} answered {}", method, path, status),
        Err(why) => prop_assert!(false, "{} {}: {}", method, path, why),
    }
    Ok(())
}
