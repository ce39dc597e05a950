//! The token endpoint when the request is wrong: RFC 6749 §5.2 JSON errors,
//! `Cache-Control: no-store`, and codes bound to their client, redirect URI,
//! PKCE challenge, lifetime and single use.

use openidconnect::{PkceCodeChallenge, PkceCodeVerifier};
use reqwest::StatusCode;

use crate::common::{
    AppCredentials, Backend, Browser, CALLBACK, Options, PASSWORD, TestApp, code_request, header, http, jwt_part,
    token_error, token_ok,
};
use crate::on_every_backend;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const OTHER_VERIFIER: &str = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8";

fn challenge(verifier: &str) -> String {
    PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.into())).as_str().to_owned()
}

/// A server with user `ada` (signed in on `browser`) and app `web`.
struct Setup {
    app: TestApp,
    credentials: AppCredentials,
    browser: Browser,
}

impl Setup {
    async fn new(backend: Backend, extra: &[&str]) -> Option<Self> {
        Self::with(backend, Options::default(), extra).await
    }

    async fn with(backend: Backend, options: Options, extra: &[&str]) -> Option<Self> {
        let app = TestApp::spawn_with(backend, options).await?;
        app.add_user("ada", PASSWORD, &[]).await;
        let credentials = app.add_app("web", &[CALLBACK], extra).await;
        Some(Self { app, credentials, browser: Browser::new() })
    }

    /// A code for app `web`, `CALLBACK`, with `extra` parameters.
    async fn code(&self, extra: &[(&str, &str)]) -> String {
        let mut params = code_request(&self.credentials.client_id, CALLBACK, "s");
        params.extend_from_slice(extra);
        self.browser.code(&self.app, &params, "ada", PASSWORD).await
    }

    fn secret(&self) -> &str {
        self.credentials.client_secret.as_deref().expect("confidential client")
    }

    fn code_form<'a>(&self, code: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)]
    }
}

async fn wrong_client_secret_is_401_invalid_client(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let code = setup.code(&[]).await;
    let client_id = setup.credentials.client_id.as_str();

    // client_secret_basic: 401 with a Basic challenge.
    let response = setup.app.token(Some((client_id, "not-the-secret")), &setup.code_form(&code)).await;
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(challenge.to_ascii_lowercase().starts_with("basic"), "WWW-Authenticate: {challenge:?}");
    token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let response = setup.app.token(Some(("no-such-client", setup.secret())), &setup.code_form(&code)).await;
    token_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;

    // client_secret_post: 401 invalid_client, for a wrong secret or none at all.
    for secret in [Some("not-the-secret"), None] {
        let mut form = setup.code_form(&code);
        form.push(("client_id", client_id));
        form.extend(secret.map(|secret| ("client_secret", secret)));
        token_error(setup.app.token(None, &form).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }

    // The right secret still redeems the code.
    let mut form = setup.code_form(&code);
    form.extend([("client_id", client_id), ("client_secret", setup.secret())]);
    token_ok(setup.app.token(None, &form).await).await;
}

async fn reused_code_is_invalid_grant_and_revokes_the_first_tokens(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let code = setup.code(&[]).await;
    let first = token_ok(setup.app.redeem(&setup.credentials, &code, CALLBACK, None).await).await;
    let access_token = first["access_token"].as_str().unwrap();
    assert_eq!(setup.app.userinfo(access_token).await.status(), StatusCode::OK);

    let second = setup.app.redeem(&setup.credentials, &code, CALLBACK, None).await;
    token_error(second, StatusCode::BAD_REQUEST, "invalid_grant").await;

    let response = setup.app.userinfo(access_token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "the first access token must be revoked");
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "WWW-Authenticate: {challenge:?}");
    assert!(challenge.contains("error=\"invalid_token\""), "WWW-Authenticate: {challenge:?}");
}

async fn expired_code_is_invalid_grant(backend: Backend) {
    let options = Options { code_ttl: Some("1s"), ..Default::default() };
    let Some(setup) = Setup::with(backend, options, &[]).await else { return };
    let code = setup.code(&[]).await;
    setup.app.clock.advance(2);
    let response = setup.app.redeem(&setup.credentials, &code, CALLBACK, None).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn code_of_another_client_or_never_issued_is_invalid_grant(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let other = setup.app.add_app("other", &[CALLBACK], &[]).await;
    let code = setup.code(&[]).await;
    let response = setup.app.redeem(&other, &code, CALLBACK, None).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // The attempt did not spend the code: its own client still redeems it.
    let tokens = token_ok(setup.app.redeem(&setup.credentials, &code, CALLBACK, None).await).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["aud"], setup.credentials.client_id.as_str());

    let never_issued = "bm90LWEtY29kZS1hdC1hbGwtbm90LWEtY29kZS1hdC1h";
    let response = setup.app.redeem(&setup.credentials, never_issued, CALLBACK, None).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn redirect_uri_differing_from_the_authorization_request_is_invalid_grant(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let second = "https://app.example.com/other-callback";
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("web", &[CALLBACK, second], &[]).await;
    let browser = Browser::new();
    let params = code_request(&credentials.client_id, CALLBACK, "s");
    let control = browser.code(&app, &params, "ada", PASSWORD).await;
    token_ok(app.redeem(&credentials, &control, CALLBACK, None).await).await;

    let code = browser.code(&app, &params, "ada", PASSWORD).await;
    let response = app.redeem(&credentials, &code, second, None).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let response = app.redeem(&credentials, &code, &format!("{CALLBACK}/"), None).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

/// PKCE binds a code to its verifier, in both directions (RFC 7636 §4.6,
/// RFC 9700 §2.1.1 downgrade defence). Each refusal gets a fresh code; a
/// control redemption shows the same request otherwise succeeds.
async fn pkce_verifier_must_match_the_challenge(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let challenge = challenge(VERIFIER);
    let pkce = [("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")];
    let redeem = |code: String, verifier: Option<&'static str>| {
        let setup = &setup;
        async move { setup.app.redeem(&setup.credentials, &code, CALLBACK, verifier).await }
    };

    token_ok(redeem(setup.code(&pkce).await, Some(VERIFIER)).await).await;
    let wrong = redeem(setup.code(&pkce).await, Some(OTHER_VERIFIER)).await;
    token_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let missing = redeem(setup.code(&pkce).await, None).await;
    token_error(missing, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A verifier for a code requested without a challenge: a downgrade.
    token_ok(redeem(setup.code(&[]).await, None).await).await;
    let unexpected = redeem(setup.code(&[]).await, Some(VERIFIER)).await;
    token_error(unexpected, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A public client: the wrong verifier is invalid_grant; none at all is
    // refused too (as a missing parameter or an unproven code).
    let public = setup.app.add_app("spa", &[CALLBACK], &["--public"]).await;
    let mut params = code_request(&public.client_id, CALLBACK, "s");
    params.extend(pkce);
    let public_code = || async { setup.browser.code(&setup.app, &params, "ada", PASSWORD).await };
    token_ok(setup.app.redeem(&public, &public_code().await, CALLBACK, Some(VERIFIER)).await).await;
    let response = setup.app.redeem(&public, &public_code().await, CALLBACK, Some(OTHER_VERIFIER)).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let response = setup.app.redeem(&public, &public_code().await, CALLBACK, None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"] == "invalid_grant" || body["error"] == "invalid_request", "{body}");
}

async fn unsupported_grant_types_are_refused(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let basic = Some((setup.credentials.client_id.as_str(), setup.secret()));
    let password = [("grant_type", "password"), ("username", "ada"), ("password", PASSWORD), ("scope", "openid")];
    token_error(setup.app.token(basic, &password).await, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let unknown = [("grant_type", "urn:example:params:oauth:grant-type:unknown")];
    let response = setup.app.token(basic, &unknown).await;
    token_error(response, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;

    let response = setup.app.token(basic, &[("code", "x"), ("redirect_uri", CALLBACK)]).await;
    token_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn post_raw(setup: &Setup, body: String) -> reqwest::Response {
    http()
        .post(setup.app.url("/application/o/token/"))
        .basic_auth(&setup.credentials.client_id, setup.credentials.client_secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// RFC 6749 §3.2: parameters must not be repeated. The description names
/// the parameter, yet never carries `"` or `\` (checked by `token_error`).
async fn repeated_parameter_is_invalid_request(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let code = setup.code(&[]).await;
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ])
    .unwrap();
    token_error(post_raw(&setup, body).await, StatusCode::BAD_REQUEST, "invalid_request").await;

    for name in [r#"a"b"#, r"a\b", "a\u{e9}b"] {
        let pairs = [("grant_type", "authorization_code"), (name, "1"), (name, "2"), ("redirect_uri", CALLBACK)];
        let body = serde_urlencoded::to_string(pairs).unwrap();
        token_error(post_raw(&setup, body).await, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

async fn oversized_request_bodies_are_413(backend: Backend) {
    let Some(setup) = Setup::new(backend, &[]).await else { return };
    let padding = "a".repeat(100 * 1024);
    let body = format!("grant_type=authorization_code&code=x&redirect_uri=x&padding={padding}");
    assert_eq!(post_raw(&setup, body.clone()).await.status(), StatusCode::PAYLOAD_TOO_LARGE, "token endpoint");
    for path in ["/application/o/userinfo/", "/application/o/authorize/", "/login"] {
        let response = http()
            .post(setup.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {path}: {error}"));
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "POST {path}");
    }
}

on_every_backend!(
    wrong_client_secret_is_401_invalid_client,
    reused_code_is_invalid_grant_and_revokes_the_first_tokens,
    expired_code_is_invalid_grant,
    code_of_another_client_or_never_issued_is_invalid_grant,
    redirect_uri_differing_from_the_authorization_request_is_invalid_grant,
    pkce_verifier_must_match_the_challenge,
    unsupported_grant_types_are_refused,
    repeated_parameter_is_invalid_request,
    oversized_request_bodies_are_413,
);
