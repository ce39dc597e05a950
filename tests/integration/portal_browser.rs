//! The people-facing pages in a real browser (headless Chromium over
//! WebDriver, as in `browser`): the first-run link makes the first
//! administrator; a person invited from the command line accepts in a
//! second browser, signs in to an app through OpenID Connect, and is signed
//! out there from their portal in the first browser.
//!
//! Screenshots of the portal (wide and 360 px, light and dark) and of the
//! link pages are written to `$LATCH_SCREENSHOTS` when set (README's
//! pictures: `docs/screenshots.sh`), else to `CARGO_TARGET_TMPDIR`.

use std::path::PathBuf;

use base64::Engine;
use serde_json::{Value, json};

use crate::browser::{Browser, Chromedriver, Mode, RelyingParty, browser_binaries, consent_page};
use crate::common::{Backend, PASSWORD, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_invite_oidc_and_signing_out_from_the_portal() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let Some(latch) = TestApp::spawn(Backend::Sqlite).await else { return };
    let setup = latch.setup_url.clone().expect("a fresh database prints a setup link");

    // First run: the administrator, in the first browser.
    let first_driver = Chromedriver::start(&chromedriver);
    let first = first_driver.session(&chromium).await;
    first.goto(&setup).await;
    first.wait_for("the setup page", |_, source| source.contains("Create the first administrator")).await;
    shoot(&first, "setup", false).await;
    first.find("#username").await.send_keys(&first, "root").await;
    first.find("#email").await.send_keys(&first, "root@example.com").await;
    first.find("#name").await.send_keys(&first, "Ada Admin").await;
    first.find("#password").await.send_keys(&first, PASSWORD).await;
    first.find("#password_again").await.send_keys(&first, PASSWORD).await;
    first.find("button[type=submit]").await.click(&first).await;
    first
        .wait_for("the administrator's portal", |url, source| {
            url == latch.url("/account") && source.contains("Hello, Ada Admin")
        })
        .await;

    // An app, and a person invited from the command line.
    let rp = RelyingParty::start(&latch, Mode::Query).await;
    latch.admin(&["app", "update", "rp", "--launch-url", &rp.url("/")]).await;
    latch
        .add_app("grafana", &["https://grafana.example.com/cb"], &["--launch-url", "https://grafana.example.com/"])
        .await;
    let invited =
        latch.admin(&["user", "invite", "bob", "--email", "bob@example.com", "--name", "Bob Builder", "--json"]).await;
    let invite: Value = serde_json::from_str(&invited).expect("JSON");
    let invite = invite["url"].as_str().expect("url").to_owned();

    // The invitee, in a second browser: a password, then their portal.
    let second_driver = Chromedriver::start(&chromedriver);
    let second = second_driver.session(&chromium).await;
    second.goto(&invite).await;
    second.wait_for("the invitation", |_, source| source.contains("Choose a password for your new account")).await;
    shoot(&second, "invite", false).await;
    second.find("#password").await.send_keys(&second, "bob's own password").await;
    second.find("#password_again").await.send_keys(&second, "bob's own password").await;
    second.find("button[type=submit]").await.click(&second).await;
    second
        .wait_for("Bob's portal", |url, source| url == latch.url("/account") && source.contains("Hello, Bob Builder"))
        .await;
    let apps: Vec<String> = texts(&second, ".app-name").await;
    assert_eq!(apps, ["grafana", "Tiny RP"], "{}", second.snapshot().await);

    // Into the app from the launcher: signed in already, Latch asks consent only.
    second.find(&format!("a.app[href=\"{}\"]", rp.url("/"))).await.click(&second).await;
    consent_page(&second, &latch).await;
    second.find("button[name=latch_consent][value=allow]").await.click(&second).await;
    second.wait_for("the app's greeting", |_, source| source.contains("Hello bob")).await;

    // Bob in the first browser too; from there, he signs the second one out.
    first.find("header form.sign-out button").await.click(&first).await;
    first.wait_for("the sign-in page", |url, _| url.starts_with(&latch.url("/login"))).await;
    first.find("#username").await.send_keys(&first, "bob").await;
    first.find("#password").await.send_keys(&first, "bob's own password").await;
    first.find("button[type=submit]").await.click(&first).await;
    first.wait_for("Bob's portal", |_, source| source.contains("Hello, Bob Builder")).await;
    screenshots(&first, "portal").await;
    first.find("a[href=\"/account/sessions\"]").await.click(&first).await;
    first.wait_for("Bob's sessions", |_, source| source.contains("Where you're signed in")).await;
    let sessions = first.find_all("li.session").await;
    assert_eq!(sessions.len(), 2, "{}", first.snapshot().await);
    screenshots(&first, "sessions").await;
    first.find("li.session:not(:has(.badge)) button").await.click(&first).await;
    first.wait_for("the notice", |_, source| source.contains("The session was signed out.")).await;
    assert_eq!(first.find_all("li.session").await.len(), 1);

    second.goto(&latch.url("/account")).await;
    second.wait_for("the sign-in page", |url, _| url.starts_with(&latch.url("/login?"))).await;
    second.goto(&rp.url("/")).await;
    second.wait_for("Latch asking to sign in again", |url, _| url.starts_with(&latch.url("/login?"))).await;

    for browser in [&first, &second] {
        let refused: Vec<String> =
            browser.console().await.into_iter().filter(|line| line.contains("Content Security Policy")).collect();
        assert!(refused.is_empty(), "the browser refused something: {refused:#?}");
        browser.quit().await;
    }
}

/// The text of each element matching `css`.
async fn texts(browser: &Browser, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in browser.find_all(css).await {
        texts.push(element.text(browser).await);
    }
    texts
}

/// The page shown, wide and 360 px wide, light and dark, as `<name>….png`.
async fn screenshots(browser: &Browser, name: &str) {
    for (suffix, width, dark) in
        [("", 1100, false), ("-dark", 1100, true), ("-narrow", 360, false), ("-narrow-dark", 360, true)]
    {
        browser.post("/window/rect", json!({"width": width, "height": 900})).await.expect("window size");
        shoot(browser, &format!("{name}{suffix}"), dark).await;
    }
    browser.post("/window/rect", json!({"width": 1100, "height": 900})).await.expect("window size");
    emulate_dark(browser, false).await;
}

async fn emulate_dark(browser: &Browser, dark: bool) {
    let scheme = if dark { "dark" } else { "light" };
    let features = json!([{"name": "prefers-color-scheme", "value": scheme}]);
    let command = json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": features}});
    browser.post("/goog/cdp/execute", command).await.expect("emulate the colour scheme");
}

/// Saves a full-page screenshot as `<name>.png`.
async fn shoot(browser: &Browser, name: &str, dark: bool) {
    emulate_dark(browser, dark).await;
    let command = json!({"cmd": "Page.captureScreenshot", "params": {"format": "png", "captureBeyondViewport": true}});
    let shot = browser.post("/goog/cdp/execute", command).await.expect("screenshot");
    let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("data")).expect("PNG");
    let dir =
        std::env::var_os("LATCH_SCREENSHOTS").map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}
