//! Hostile text (issue 11, items 8 and 9), on SQLite and on PostgreSQL:
//!
//! - a NUL byte (or another control character) in any parameter, form
//!   field, path segment or Basic credential is refused at the parsing edge,
//!   in the endpoint's own format, the same way on both backends: RFC 6749
//!   §5.2 JSON at token, revocation and introspection, a bearer error at
//!   userinfo, an HTML page at the authorization, end-session, login and
//!   forward-auth endpoints, JSON 404 at discovery and JWKS; never a 500
//!   (PostgreSQL refuses NUL in text) and never accepted (SQLite stores it);
//! - `latch` refuses such a password with a clear error;
//! - text a visitor or an operator chose is shown escaped and bounded by
//!   `latch events`, `latch user list`, `latch app list`, `latch group list`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Backend, Browser, TestApp, hidden_input, location, poll_until};
use crate::on_every_backend;

const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "https://grafana.example.com/login/generic_oauth";

/// The format an endpoint answers bad input in.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// RFC 6749 §5.2: this status, JSON with this `error`.
    OAuthJson(StatusCode, &'static str),
    /// RFC 6750 §3.1: 400 with a `WWW-Authenticate: Bearer … invalid_request`.
    Bearer,
    /// An HTML page with this status, never a redirect.
    Page(StatusCode),
    /// JSON 404.
    NotFoundJson,
}

/// One endpoint and a request it would accept; each case spoils one part.
struct Endpoint {
    method: &'static str,
    path: String,
    params: Vec<(String, String)>,
    expect: Expect,
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

async fn send(
    browser: &Browser,
    base: &str,
    method: &str,
    path: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let url = format!("{base}{path}");
    let request = match method {
        "GET" => browser.client.get(url).query(params),
        _ => browser.client.post(url).form(params),
    };
    request.send().await.expect("request")
}

/// Checks `response` is in the `expect`ed format; `what` names the case.
async fn assert_refused(response: reqwest::Response, expect: Expect, what: &str) {
    let status = response.status();
    let content_type = crate::common::header(&response, "content-type").unwrap_or_default();
    let challenge = crate::common::header(&response, "www-authenticate").unwrap_or_default();
    let redirect = location(&response);
    let body = response.text().await.unwrap_or_default();
    assert!(!status.is_server_error(), "{what}: {status} {body}");
    match expect {
        Expect::OAuthJson(expected, error) => {
            assert_eq!(status, expected, "{what}: {body}");
            let json: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{what}: not JSON: {body}"));
            assert_eq!(json["error"], error, "{what}: {json}");
            crate::common::assert_rfc6749_text(&json["error_description"]);
        }
        Expect::Bearer => {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
            assert!(challenge.starts_with("Bearer") && challenge.contains("invalid_request"), "{what}: {challenge}");
        }
        Expect::Page(expected) => {
            assert_eq!(status, expected, "{what}: {body}");
            assert_eq!(redirect, None, "{what}: an error page never redirects");
            assert!(content_type.starts_with("text/html"), "{what}: {content_type} {body}");
        }
        Expect::NotFoundJson => {
            assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
            assert!(content_type.starts_with("application/json"), "{what}: {content_type} {body}");
        }
    }
}

/// Every endpoint × every parameter carrying a NUL (at the end, at the
/// start, alone), plus a NUL in a parameter's name, a line break and an
/// escape character: refused in the endpoint's format, never a 500, never
/// a code or a session.
async fn nul_bytes_are_refused_in_each_endpoints_format(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let client = app.add_app("grafana", &[CALLBACK], &[]).await;
    app.admin(&["app", "add", "wiki", "--name", "Wiki", "--proxy", "--external-url", "https://wiki.example.com"]).await;
    let (client_id, secret) = (client.client_id.as_str(), client.client_secret.as_deref().expect("secret"));
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app.base, "ada", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let login_page = browser.client.get(app.url("/login")).send().await.expect("login").text().await.expect("page");
    let csrf = hidden_input(&login_page, "csrf_token").expect("csrf_token");

    let oauth = |path: &str, extra: &[(&str, &str)]| {
        let mut params = pairs(extra);
        params.extend(pairs(&[("client_id", client_id), ("client_secret", secret)]));
        Endpoint {
            method: "POST",
            path: path.to_owned(),
            params,
            expect: Expect::OAuthJson(StatusCode::BAD_REQUEST, "invalid_request"),
        }
    };
    let authorize = pairs(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile"),
        ("state", "s"),
        ("nonce", "n"),
        ("login_hint", "ada"),
        ("max_age", "300"),
    ]);
    let end_session = pairs(&[("client_id", client_id), ("post_logout_redirect_uri", CALLBACK), ("state", "s")]);
    let page = |method, path: &str, params: Vec<(String, String)>| Endpoint {
        method,
        path: path.to_owned(),
        params,
        expect: Expect::Page(StatusCode::BAD_REQUEST),
    };
    let endpoints = [
        oauth(
            "/application/o/token/",
            &[("grant_type", "authorization_code"), ("code", "abc"), ("redirect_uri", CALLBACK)],
        ),
        oauth(
            "/application/o/token/",
            &[("grant_type", "refresh_token"), ("refresh_token", "abc"), ("scope", "openid")],
        ),
        oauth("/application/o/revoke/", &[("token", "abc"), ("token_type_hint", "refresh_token")]),
        oauth("/application/o/introspect/", &[("token", "abc"), ("token_type_hint", "access_token")]),
        Endpoint {
            method: "POST",
            path: "/application/o/userinfo/".into(),
            params: pairs(&[("access_token", "abc")]),
            expect: Expect::Bearer,
        },
        page("GET", "/application/o/authorize/", authorize.clone()),
        page("POST", "/application/o/authorize/", authorize),
        page("GET", "/application/o/grafana/end-session/", end_session.clone()),
        page("POST", "/application/o/grafana/end-session/", end_session),
        page("GET", "/login", pairs(&[("next", "/"), ("login_hint", "ada")])),
        page("POST", "/login", pairs(&[("csrf_token", &csrf), ("next", "/"), ("username", "ada"), ("password", "x")])),
        page("GET", "/outpost.goauthentik.io/start", pairs(&[("rd", "https://wiki.example.com/")])),
        page("GET", "/outpost.goauthentik.io/sso", pairs(&[("rd", "https://wiki.example.com/"), ("state", "s")])),
        page("GET", "/outpost.goauthentik.io/callback", pairs(&[("code", "abc")])),
    ];
    let mut cases = 0;
    for endpoint in &endpoints {
        let spoiled = |index: usize, value: String| {
            let mut params = endpoint.params.clone();
            params[index].1 = value;
            params
        };
        let mut variants = Vec::new();
        for (index, (name, value)) in endpoint.params.iter().enumerate() {
            variants.push((format!("NUL after {name}"), spoiled(index, format!("{value}\0"))));
            variants.push((format!("NUL before {name}"), spoiled(index, format!("\0{value}"))));
            variants.push((format!("{name} a NUL alone"), spoiled(index, "\0".into())));
        }
        let mut named = endpoint.params.clone();
        named[0].0.push('\0');
        variants.push(("a NUL in a name".into(), named));
        let last = endpoint.params.len() - 1;
        variants.push(("a line break".into(), spoiled(last, format!("{}\nx", endpoint.params[last].1))));
        variants.push(("an escape".into(), spoiled(last, format!("{}\u{1b}[2J", endpoint.params[last].1))));
        for (what, params) in variants {
            let response = send(&browser, &app.base, endpoint.method, &endpoint.path, &params).await;
            let what = format!("{} {} with {what}", endpoint.method, endpoint.path);
            assert_refused(response, endpoint.expect, &what).await;
            cases += 1;
        }
    }

    // Where no parameter is: path segments and Basic credentials.
    let slugged = [
        ("GET", "/application/o/grafana%00/.well-known/openid-configuration", Expect::NotFoundJson),
        ("GET", "/application/o/%00/jwks/", Expect::NotFoundJson),
        ("GET", "/application/o/grafana%00/end-session/", Expect::Page(StatusCode::BAD_REQUEST)),
        ("POST", "/application/o/grafana%00/end-session/", Expect::Page(StatusCode::BAD_REQUEST)),
    ];
    for (method, path, expect) in slugged {
        let response = send(&browser, &app.base, method, path, &[]).await;
        assert_refused(response, expect, &format!("{method} {path}")).await;
        cases += 1;
    }
    for (id, password) in
        [(format!("{client_id}%00"), secret.to_owned()), (client_id.to_owned(), format!("{secret}\0"))]
    {
        for path in ["/application/o/token/", "/application/o/revoke/", "/application/o/introspect/"] {
            let response = reqwest::Client::new()
                .post(app.url(path))
                .basic_auth(&id, Some(&password))
                .form(&[("grant_type", "client_credentials"), ("token", "abc")])
                .send()
                .await
                .expect("request");
            let expect = Expect::OAuthJson(StatusCode::UNAUTHORIZED, "invalid_client");
            assert_refused(response, expect, &format!("Basic credentials with a NUL at {path}")).await;
            cases += 1;
        }
    }
    assert!(cases > 150, "{cases} cases");
}

on_every_backend!(nul_bytes_are_refused_in_each_endpoints_format);

/// `latch user add` and `latch user passwd` refuse a password with a NUL
/// (or another control character) read from standard input with a clear
/// error, and create nothing.
async fn the_cli_refuses_control_characters_in_a_password(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    for password in ["long enough\0password", "long enough\u{1b}password"] {
        let args = ["user", "add", "bob", "--email", "bob@example.com", "--password-stdin"];
        let output = app.latch(&args, Some(password)).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{password:?} was accepted");
        assert!(stderr.contains("must not contain control characters"), "{stderr}");
    }
    assert!(!app.admin(&["user", "list"]).await.contains("bob"), "no user was created");
    app.add_user("bob", PASSWORD, &[]).await;
    let output = app.latch(&["user", "passwd", "bob", "--password-stdin"], Some("long enough\0password")).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("must not contain control characters"));
}

on_every_backend!(the_cli_refuses_control_characters_in_a_password);

/// Whether a line of `latch` output is inert: no control character (but
/// its own end) and no bidirectional override.
fn inert(text: &str) -> bool {
    !text
        .chars()
        .any(|c| (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

/// Failed sign-ins under hostile usernames and a huge user agent: `latch
/// events` prints one inert line per event (no forged line, no escape
/// sequence), and the recorded username and user agent are cut to 256
/// characters, in the JSON too.
async fn events_show_hostile_sign_ins_escaped_and_bounded(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let forged = "mallory\n2026-01-01T00:00:00Z  login_success        admin";
    let hostile = ["eve\u{202e}nimda", forged, "esc\u{1b}[2J\u{1b}]0;owned\u{7}", &"x".repeat(5000)];
    let agent = format!("agent {}", "y".repeat(5000));
    for username in hostile {
        let browser = Browser::new();
        let page = browser.client.get(app.url("/login")).send().await.expect("login").text().await.expect("page");
        let csrf = hidden_input(&page, "csrf_token").expect("csrf_token");
        let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", username), ("password", "guess")];
        let response =
            browser.client.post(app.url("/login")).header("user-agent", &agent).form(&form).send().await.expect("post");
        assert!(!response.status().is_server_error(), "{username:?}: {}", response.status());
    }
    let events = wait_for_events(&app, 2).await;
    for event in &events {
        for field in ["username", "user_agent", "detail", "app", "ip"] {
            let length = event[field].as_str().map_or(0, |text| text.chars().count());
            assert!(length <= 256, "{field} of {length} characters recorded: {event}");
        }
    }
    assert!(events.iter().any(|event| event["user_agent"].as_str().is_some_and(|agent| agent.starts_with("agent y"))));

    let text = app.admin(&["events", "--limit", "100"]).await;
    assert!(inert(&text), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events.len() + 1, "one header and one line per event: {text}");
    assert!(!lines.iter().any(|line| line.starts_with("2026-01-01T00:00:00Z")), "a forged line: {text}");
    assert!(lines.iter().all(|line| line.chars().count() < 400), "{text}");
}

on_every_backend!(events_show_hostile_sign_ins_escaped_and_bounded);

/// The stored events, once at least `count` of them are in (the server
/// writes them in batches).
async fn wait_for_events(app: &TestApp, count: usize) -> Vec<Value> {
    let recorded = poll_until(std::time::Duration::from_secs(5), async || {
        let json = app.admin(&["events", "--json", "--limit", "100"]).await;
        let events: Vec<Value> = serde_json::from_str(&json).expect("events --json is JSON");
        (events.len() >= count).then_some(events)
    });
    recorded.await.unwrap_or_else(|| panic!("fewer than {count} events were recorded"))
}

/// Names an operator typed (display names may hold any printable Unicode,
/// including a right-to-left override) are shown escaped by every listing.
async fn listings_show_names_escaped(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let name = "Grafana\u{202e}nimda";
    app.admin(&["app", "add", "grafana", "--name", name, "--redirect-uri", CALLBACK]).await;
    let email = "ada@example.com";
    app.admin(&["user", "add", "ada", "--email", email, "--name", name]).await;
    app.admin(&["group", "add", "ops\u{202e}"]).await;
    for listing in [["app", "list"], ["user", "list"], ["group", "list"], ["app", "show"]] {
        let mut args = listing.to_vec();
        if listing[1] == "show" {
            args.push("grafana");
        }
        let text = app.admin(&args).await;
        assert!(inert(&text), "latch {args:?}: {text:?}");
    }
    let text = app.admin(&["app", "list"]).await;
    assert!(text.contains("Grafana\\u{202e}nimda"), "{text}");
}

on_every_backend!(listings_show_names_escaped);
