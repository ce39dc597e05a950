//! Passkeys in a real browser: headless Chromium with a WebDriver virtual
//! authenticator (W3C WebAuthn §11, "Virtual Authenticators": a CTAP2
//! platform authenticator that keeps resident keys and verifies its user),
//! driven over chromedriver's HTTP API. A person enrols a passkey on
//! `/account/security`, signs out, and signs in to an app with the passkey
//! alone (no username typed), then with password and passkey.
//!
//! Latch's `public_url` is `http://localhost:<port>`: WebAuthn needs a
//! domain, and browsers treat localhost as a secure origin. Screenshots of
//! the sign-in page and the security page are kept in
//! `CARGO_TARGET_TMPDIR` (`passkey-login.png`, `passkey-security.png`).

use std::path::Path;

use serde_json::{Value, json};

use crate::browser::{Browser, Chromedriver, Mode, RelyingParty, browser_binaries};
use crate::common::{Backend, Options, PASSWORD, TestApp};

/// Adds a virtual authenticator to the session, holding `credentials` (as
/// the WebDriver API lists them); its id.
async fn virtual_authenticator(browser: &Browser, credentials: &[Value]) -> String {
    let options = json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    });
    let added = browser.post("/webauthn/authenticator", options).await.expect("a virtual authenticator");
    let id = added.as_str().expect("authenticator id").to_owned();
    for credential in credentials {
        let path = format!("/webauthn/authenticator/{id}/credential");
        browser.post(&path, credential.clone()).await.expect("a credential added");
    }
    id
}

/// The credentials the virtual authenticator holds.
async fn credentials(browser: &Browser, authenticator: &str) -> Vec<Value> {
    let held = browser.get(&format!("/webauthn/authenticator/{authenticator}/credentials")).await;
    held.expect("credentials").as_array().cloned().unwrap_or_default()
}

/// Saves a screenshot as `CARGO_TARGET_TMPDIR/<name>`.
async fn screenshot(browser: &Browser, name: &str) {
    let shot = browser.get("/screenshot").await.expect("screenshot");
    let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, shot.as_str().expect("base64"))
        .expect("PNG");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Waits for the app's greeting; the `amr` the ID token carried.
async fn greeted(browser: &Browser, rp: &RelyingParty) -> String {
    browser
        .wait_for("the app's greeting", |url, source| {
            url.starts_with(&rp.url("/callback")) && (source.contains("Hello") || source.contains("failed"))
        })
        .await;
    assert_eq!(browser.find("h1").await.text(browser).await, "Hello ada", "{}", browser.snapshot().await);
    browser.find("#amr").await.text(browser).await
}

/// Allows the app on Latch's consent page, if Latch asks.
async fn allow_if_asked(browser: &Browser, latch: &TestApp, rp: &RelyingParty) {
    let source = browser
        .wait_for("the consent page or the app", |url, source| {
            (url.starts_with(&latch.public_url) && source.contains("latch_consent")) || url.starts_with(&rp.url("/"))
        })
        .await;
    if source.contains("latch_consent") {
        browser.find("button[name=latch_consent][value=allow]").await.click(browser).await;
    }
}

/// Signs out of Latch through the app's end-session page, confirmed.
async fn sign_out(browser: &Browser, latch: &TestApp) {
    browser.goto(&format!("{}/application/o/rp/end-session/", latch.public_url)).await;
    browser.find("button[name=latch_logout]").await.click(browser).await;
    browser.wait_for("the signed-out page", |_, source| source.contains("signed out")).await;
    let cookies = browser.cookies().await;
    assert!(!cookies.iter().any(|cookie| cookie["name"] == "latch_session"), "signed out: {cookies:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_on_the_security_page_then_sign_in_with_the_passkey_alone_and_after_a_password() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let options = Options { localhost_public_url: true, ..Options::default() };
    let Some(latch) = TestApp::spawn_with(Backend::Sqlite, options).await else { return };
    latch.add_user("ada", PASSWORD, &[]).await;
    let rp = RelyingParty::start(&latch, Mode::Query).await;
    let driver = Chromedriver::start(&chromedriver);
    let browser = driver.session(&chromium).await;
    let authenticator = virtual_authenticator(&browser, &[]).await;
    browser.post("/window/rect", json!({"width": 1000, "height": 1000})).await.expect("window size");

    // Enrol: sign in with the password, add a passkey on the security page.
    browser.goto(&format!("{}/login?next=/account/security", latch.public_url)).await;
    browser.find("#passkey-sign-in").await;
    let shown = browser.find("#passkey-error").await.text(&browser).await;
    assert_eq!(shown, "", "no error on a fresh sign-in page: {}", browser.snapshot().await);
    screenshot(&browser, "passkey-login.png").await;
    browser.find("#username").await.send_keys(&browser, "ada").await;
    browser.find("#password").await.send_keys(&browser, PASSWORD).await;
    browser.find("form[action='/login'] button[type=submit]").await.click(&browser).await;
    browser.wait_for("the security page", |url, _| url.ends_with("/account/security")).await;
    browser.find("#passkey-add input[name=name]").await.send_keys(&browser, "Virtual key").await;
    browser.find("#passkey-add button").await.click(&browser).await;
    let source = browser.wait_for("the new passkey listed", |_, source| source.contains("Virtual key</")).await;
    assert!(source.contains("Never used") || source.contains("never"), "{}", browser.snapshot().await);
    let held = credentials(&browser, &authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "a discoverable credential: {held:?}");
    screenshot(&browser, "passkey-security.png").await;
    sign_out(&browser, &latch).await;

    // The passkey alone, by autofill (conditional mediation): the virtual
    // authenticator answers the page's pending request by itself, as a
    // person picking the passkey suggested in the username field does.
    browser.goto(&rp.url("/")).await;
    allow_if_asked(&browser, &latch, &rp).await;
    assert_eq!(greeted(&browser, &rp).await, "hwk user mfa", "a verified device-bound key");
    browser.goto(&rp.url("/logout")).await;
    browser.wait_for("the app's /bye page", |url, _| url.starts_with(&rp.url("/bye"))).await;

    // The passkey alone, by the button: the page loads with no
    // authenticator (its autofill request waits), then one with the passkey
    // appears and the button cancels the autofill request for its own.
    let held = credentials(&browser, &authenticator).await;
    browser.command(reqwest::Method::DELETE, &format!("/webauthn/authenticator/{authenticator}"), None).await.ok();
    browser.goto(&rp.url("/")).await;
    browser.wait_for("the sign-in page", |url, _| url.starts_with(&format!("{}/login?", latch.public_url))).await;
    browser.find("#passkey-sign-in").await;
    let authenticator = virtual_authenticator(&browser, &held).await;
    browser.find("#passkey-sign-in").await.click(&browser).await;
    allow_if_asked(&browser, &latch, &rp).await;
    assert_eq!(greeted(&browser, &rp).await, "hwk user mfa");
    browser.goto(&rp.url("/logout")).await;
    browser.wait_for("the app's /bye page", |url, _| url.starts_with(&rp.url("/bye"))).await;
    assert_eq!(credentials(&browser, &authenticator).await.len(), 1);

    // Password, then the passkey as the second step (again with no
    // authenticator while the sign-in page's autofill request waits).
    let held = credentials(&browser, &authenticator).await;
    browser.command(reqwest::Method::DELETE, &format!("/webauthn/authenticator/{authenticator}"), None).await.ok();
    browser.goto(&rp.url("/")).await;
    browser.wait_for("the sign-in page", |url, _| url.starts_with(&format!("{}/login?", latch.public_url))).await;
    browser.find("#username").await.send_keys(&browser, "ada").await;
    browser.find("#password").await.send_keys(&browser, PASSWORD).await;
    browser.find("form[action='/login'] button[type=submit]").await.click(&browser).await;
    browser.find("#passkey-second-factor").await;
    virtual_authenticator(&browser, &held).await;
    browser.find("#passkey-second-factor").await.click(&browser).await;
    allow_if_asked(&browser, &latch, &rp).await;
    assert_eq!(greeted(&browser, &rp).await, "pwd hwk user mfa");
    assert_eq!(rp.sign_ins(), 3);

    let refused: Vec<String> =
        browser.console().await.into_iter().filter(|line| line.contains("Content Security Policy")).collect();
    assert!(refused.is_empty(), "the browser refused something: {refused:#?}");
    browser.quit().await;
}
