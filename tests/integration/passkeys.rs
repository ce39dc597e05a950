//! Passkeys over HTTP (issue 14), with a software authenticator of the
//! webauthn-rs family (`webauthn-authenticator-rs`'s `SoftPasskey`): a
//! signed-in person registers one; then, with no username typed, it signs
//! them in to an app, whose ID token says how (`amr`); a ceremony begun on
//! one instance finishes on another; wrong, foreign and replayed answers
//! are refused and sign no one in.

use reqwest::StatusCode;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use crate::common::{Backend, Browser, Options, PASSWORD, TestApp, absolute, hidden_input, location, set_cookies};
use crate::on_every_backend;
use crate::relying_party::{Rp, jwt};

/// A passkey authenticator in software. `SoftPasskey` makes the key pair,
/// signs, counts and reports user verification; it keeps no user handles,
/// so this wrapper does what a resident-key authenticator does for a
/// request that names no credential (W3C WebAuthn §6.3.3): it answers with
/// the credential it holds and returns the user handle stored with it
/// (returned beside the signature, not signed).
pub struct Authenticator {
    token: SoftPasskey,
    /// `(credential id, user handle)` of each passkey it made.
    held: Vec<(Vec<u8>, Vec<u8>)>,
    origin: url::Url,
}

impl Authenticator {
    /// An authenticator for pages of `origin` that verifies its user.
    pub fn new(origin: &str) -> Self {
        // `true`: it reports user verification (a PIN it does not ask for).
        Self { token: SoftPasskey::new(true), held: Vec::new(), origin: url::Url::parse(origin).expect("origin") }
    }

    pub fn register(&mut self, options: CreationChallengeResponse) -> RegisterPublicKeyCredential {
        let handle = options.public_key.user.id.clone();
        let credential = self.token.do_registration(self.origin.clone(), options).expect("the authenticator registers");
        self.held.push((credential.raw_id.clone(), handle));
        credential
    }

    pub fn sign(&mut self, mut options: RequestChallengeResponse) -> PublicKeyCredential {
        let discoverable = options.public_key.allow_credentials.is_empty();
        if discoverable {
            let held = self.held.iter().map(|(id, _)| AllowCredentials {
                type_: "public-key".into(),
                id: id.clone(),
                transports: None,
            });
            options.public_key.allow_credentials = held.collect();
        }
        let mut credential =
            self.token.do_authentication(self.origin.clone(), options).expect("the authenticator signs");
        if discoverable {
            let handle = self.held.iter().find(|(id, _)| *id == credential.raw_id).map(|(_, handle)| handle.clone());
            credential.response.user_handle = handle;
        }
        credential
    }
}

/// A server whose `public_url` is `http://localhost:<port>` (passkeys need
/// a domain), with the user `ada`.
async fn server(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn_with(backend, Options { localhost_public_url: true, ..Options::default() }).await?;
    app.add_user("ada", PASSWORD, &[]).await;
    Some(app)
}

/// POSTs JSON to `path` on `app`; the status and the JSON answer.
async fn post(browser: &Browser, app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = browser.client.post(app.url(path)).json(body).send().await.expect("passkey request");
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let answer = response.text().await.expect("body");
    assert!(content_type.is_some_and(|kind| kind.starts_with("application/json")), "{path}: not JSON: {answer}");
    (status, serde_json::from_str(&answer).unwrap_or_else(|error| panic!("{path}: {error}: {answer}")))
}

/// The CSRF token of the sign-in page as `browser` gets it (bound to its
/// session when it has one), and the page's `next`.
async fn page_fields(browser: &Browser, app: &TestApp, url: &str) -> (String, String) {
    let page = browser.visit(&app.base, url).await;
    assert_eq!(page.status(), StatusCode::OK, "{url}");
    let html = page.text().await.expect("page");
    assert!(html.contains("id=\"passkey-sign-in\""), "the sign-in page offers a passkey: {html}");
    assert!(html.contains("autocomplete=\"username webauthn\""), "and passkey autofill: {html}");
    (hidden_input(&html, "csrf_token").expect("csrf_token"), hidden_input(&html, "next").expect("next"))
}

/// Signs `browser` in as ada with her password (unless it is) and begins
/// registering a passkey named `name`: the page's CSRF token, the ceremony
/// and the options for the authenticator.
async fn begin_registration(
    browser: &Browser,
    app: &TestApp,
    name: &str,
) -> (String, Value, CreationChallengeResponse) {
    if !browser_signed_in(browser, app).await {
        let signed_in = browser.sign_in(&app.base, "ada", PASSWORD).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "ada signs in with her password");
    }
    let (csrf, _) = page_fields(browser, app, &app.url("/login")).await;
    let body = json!({ "csrf_token": csrf, "name": name });
    let (status, begun) = post(browser, app, "/account/security/passkeys/options", &body).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let options: CreationChallengeResponse = serde_json::from_value(begun["options"].clone()).expect("options");
    assert_eq!(options.public_key.rp.id, "localhost", "the RP ID is public_url's host");
    (csrf, begun["ceremony"].clone(), options)
}

/// Registers a passkey named `name` for ada, begun on `app` and finished
/// on `finish_on`; the registration's answer.
async fn register(
    browser: &Browser,
    app: &TestApp,
    finish_on: &TestApp,
    authenticator: &mut Authenticator,
    name: &str,
) -> Value {
    let (csrf, ceremony, options) = begin_registration(browser, app, name).await;
    let credential = authenticator.register(options);
    let body = json!({ "csrf_token": csrf, "ceremony": ceremony, "credential": credential });
    let (status, added) = post(browser, finish_on, "/account/security/passkeys/finish", &body).await;
    assert_eq!(status, StatusCode::OK, "{added}");
    added
}

async fn browser_signed_in(browser: &Browser, app: &TestApp) -> bool {
    browser.client.get(app.url("/")).send().await.expect("home").status() == StatusCode::OK
}

/// A passwordless sign-in begun on `app` at `url` (an authorization
/// request or the sign-in page), the authenticator's answer, and the body
/// that finishes it.
async fn begin_sign_in(
    browser: &Browser,
    app: &TestApp,
    url: &str,
) -> (String, String, RequestChallengeResponse, Value) {
    let (csrf, next) = page_fields(browser, app, url).await;
    let (status, begun) = post(browser, app, "/login/passkey/options", &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let options: RequestChallengeResponse = serde_json::from_value(begun["options"].clone()).expect("options");
    assert!(options.public_key.allow_credentials.is_empty(), "no one is named: discoverable credentials");
    (csrf, next, options, begun["ceremony"].clone())
}

fn finish_body(csrf: &str, ceremony: &Value, next: &str, credential: &PublicKeyCredential) -> Value {
    json!({ "csrf_token": csrf, "ceremony": ceremony, "next": next, "credential": credential })
}

/// Registration, then a sign-in to an app with the passkey alone: the ID
/// token says a device-bound key (`hwk`) whose holder was verified (`user`)
/// signed in, which is multi-factor (`mfa`); the passkey's last use is
/// the sign-in page's script is served under a CSP that allows it.
async fn a_passkey_registers_and_signs_in_alone_to_an_app(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let mut authenticator = Authenticator::new(&app.public_url);
    let added = register(&Browser::new(), &app, &app, &mut authenticator, "  my laptop ").await;
    assert_eq!(added["name"], "my laptop", "{added}");

    let browser = Browser::new();
    let params = rp.request("openid profile", "state-1");
    let (csrf, next, options, ceremony) = begin_sign_in(&browser, &app, &rp.authorize_url(&params)).await;
    let credential = authenticator.sign(options);
    let (status, done) =
        post(&browser, &app, "/login/passkey/finish", &finish_body(&csrf, &ceremony, &next, &credential)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let redirect = done["redirect"].as_str().expect("where to go");
    let back = browser.visit(&app.base, &absolute(&app.base, redirect)).await;
    let callback = rp.callback(&location(&back).expect("a redirect to the app"));
    let code = crate::common::query_param(&callback, "code").expect("code");
    let tokens = crate::common::token_ok(rp.redeem(&code).await).await;
    let claims = jwt(tokens["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]), "{claims}");
    assert_eq!(claims["preferred_username"], "ada", "{claims}");

    let script = browser.client.get(app.url("/static/passkey.js")).send().await.expect("script");
    assert_eq!(script.status(), StatusCode::OK);
    assert!(crate::common::header(&script, "content-type").is_some_and(|kind| kind.starts_with("text/javascript")));
    let login = browser.client.get(app.url("/login")).send().await.expect("login page");
    let csp = crate::common::header(&login, "content-security-policy").expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline'; script"), "{csp}");
}

/// Both ceremonies finish on another instance than the one that began
/// them: the state is in the store.
async fn ceremonies_finish_on_another_instance(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let other = app.another_instance().await;
    let mut authenticator = Authenticator::new(&app.public_url);
    register(&Browser::new(), &app, &other, &mut authenticator, "key").await;

    let browser = Browser::new();
    let (csrf, next, options, ceremony) = begin_sign_in(&browser, &other, &other.url("/login?next=/account")).await;
    let credential = authenticator.sign(options);
    let (status, done) =
        post(&browser, &app, "/login/passkey/finish", &finish_body(&csrf, &ceremony, &next, &credential)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["redirect"], "/account");
    assert!(browser_signed_in(&browser, &other).await, "the session holds on either instance");
}

/// Refused, with no session: a tampered signature, a passkey Latch does
/// not know, an answer posted twice, an old answer to a new challenge, an
/// unknown ceremony, and a request without the page's CSRF token.
async fn wrong_and_replayed_answers_are_refused(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let mut authenticator = Authenticator::new(&app.public_url);
    let owner = Browser::new();
    register(&owner, &app, &app, &mut authenticator, "key").await;
    let browser = Browser::new();
    let url = app.url("/login");
    let refused = async |body: &Value, status: StatusCode, error: &str| {
        let response = browser.client.post(app.url("/login/passkey/finish")).json(body).send().await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert!(set_cookies(&response).iter().all(|cookie| !cookie.starts_with("latch_session")), "no session");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(answer["error"], error, "{answer}");
        assert!(answer["error_description"].as_str().is_some_and(|text| !text.is_empty()), "{answer}");
    };

    let (csrf, next, options, ceremony) = begin_sign_in(&browser, &app, &url).await;
    let mut tampered = authenticator.sign(options);
    tampered.response.signature[8] ^= 0x01;
    refused(&finish_body(&csrf, &ceremony, &next, &tampered), StatusCode::UNAUTHORIZED, "access_denied").await;

    // A passkey made for ada whose registration was never finished.
    let mut stranger = Authenticator::new(&app.public_url);
    let (_, _, options) = begin_registration(&owner, &app, "abandoned").await;
    stranger.register(options);
    let (csrf, next, options, ceremony) = begin_sign_in(&browser, &app, &url).await;
    let unknown = stranger.sign(options);
    refused(&finish_body(&csrf, &ceremony, &next, &unknown), StatusCode::UNAUTHORIZED, "access_denied").await;

    let (csrf, next, options, ceremony) = begin_sign_in(&browser, &app, &url).await;
    let answer = authenticator.sign(options);
    let body = finish_body(&csrf, &ceremony, &next, &answer);
    let (status, done) = post(&browser, &app, "/login/passkey/finish", &body).await;
    assert_eq!(status, StatusCode::OK, "the genuine answer signs in: {done}");
    let replayer = Browser::new();
    let (csrf, next, _, _) = begin_sign_in(&replayer, &app, &url).await;
    let replay = finish_body(&csrf, &ceremony, &next, &answer);
    let response = replayer.client.post(app.url("/login/passkey/finish")).json(&replay).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "the same answer twice");
    let (_, _, _, fresh) = begin_sign_in(&replayer, &app, &url).await;
    let replay = finish_body(&csrf, &fresh, &next, &answer);
    let response = replayer.client.post(app.url("/login/passkey/finish")).json(&replay).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "an old answer to a new challenge");
    assert!(!browser_signed_in(&replayer, &app).await, "no replay signed anyone in");

    let (csrf, next, options, _) = begin_sign_in(&browser, &app, &url).await;
    let answer = authenticator.sign(options);
    refused(&finish_body(&csrf, &json!("no-such-ceremony"), &next, &answer), StatusCode::BAD_REQUEST, "expired").await;
    let (_, next, options, ceremony) = begin_sign_in(&browser, &app, &url).await;
    let answer = authenticator.sign(options);
    refused(&finish_body("forged", &ceremony, &next, &answer), StatusCode::BAD_REQUEST, "expired").await;
    refused(&json!({"csrf_token": csrf}), StatusCode::BAD_REQUEST, "invalid_request").await;
}

/// After the password, a person who holds a passkey is asked for a second
/// factor, and the passkey answers it: `pwd hwk user mfa`. A password
/// session cannot add a passkey once the person holds one.
async fn a_passkey_is_the_second_factor_after_the_password(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let mut authenticator = Authenticator::new(&app.public_url);
    register(&Browser::new(), &app, &app, &mut authenticator, "key").await;

    let browser = Browser::new();
    let page = browser.visit(&app.base, &rp.authorize_url(&rp.request("openid", "state-2"))).await;
    let html = page.text().await.expect("login page");
    let second = browser.submit_login(&app.base, "", &html, "ada", PASSWORD).await;
    assert_eq!(second.status(), StatusCode::OK, "the password is not enough");
    let html = second.text().await.expect("second-factor page");
    assert!(html.contains("id=\"passkey-second-factor\""), "a passkey is offered: {html}");
    let (csrf, next) = (hidden_input(&html, "csrf_token").unwrap(), hidden_input(&html, "next").unwrap());
    let body = json!({ "csrf_token": csrf, "name": "sneaky" });
    let (status, refused) = post(&browser, &app, "/account/security/passkeys/options", &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not signed in yet: {refused}");

    let (status, begun) =
        post(&browser, &app, "/login/passkey/second-factor/options", &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, StatusCode::OK, "{begun}");
    let options: RequestChallengeResponse = serde_json::from_value(begun["options"].clone()).expect("options");
    assert_eq!(options.public_key.allow_credentials.len(), 1, "ada's passkey is named");
    let credential = authenticator.sign(options);
    let body = finish_body(&csrf, &begun["ceremony"], &next, &credential);
    let (status, done) = post(&browser, &app, "/login/passkey/second-factor/finish", &body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let back = browser.visit(&app.base, &absolute(&app.base, done["redirect"].as_str().expect("redirect"))).await;
    let callback = rp.callback(&location(&back).expect("a redirect to the app"));
    let code = crate::common::query_param(&callback, "code").expect("code");
    let tokens = crate::common::token_ok(rp.redeem(&code).await).await;
    let claims = jwt(tokens["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "user", "mfa"]), "{claims}");

    let listed = app.admin(&["user", "mfa", "list", "ada", "--json"]).await;
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    assert_eq!(listed[0]["kind"], "passkey", "{listed}");
    assert_eq!(listed[0]["name"], "key", "{listed}");
    assert!(listed[0]["last_used"].is_number(), "the sign-in is recorded: {listed}");
    app.admin(&["user", "mfa", "reset", "ada"]).await;
    assert_eq!(app.admin(&["user", "mfa", "list", "ada", "--json"]).await.trim(), "[]", "reset removes passkeys");
}

on_every_backend!(
    a_passkey_is_the_second_factor_after_the_password,
    a_passkey_registers_and_signs_in_alone_to_an_app,
    ceremonies_finish_on_another_instance,
    wrong_and_replayed_answers_are_refused,
);
