//! The admin console in a real browser (headless Chromium over WebDriver,
//! as in `browser`): an administrator signs in, adds a person and an app by
//! filling in the console's forms, and that person then signs in to the app
//! through OpenID Connect; the same person gets a 403 page at `/admin`.
//! And the tour: the console's pages, light, dark and 360 px wide, each
//! checked for overflow and saved as a screenshot in
//! `CARGO_TARGET_TMPDIR/console-tour`; with `LATCH_TOUR_DIR` set, the
//! README's few are written there too (`docs/tour/screenshots.sh`).

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::browser::{Browser, Chromedriver, Mode, RelyingParty, browser_binaries};
use crate::common::{AppCredentials, Backend, PASSWORD, TestApp};
use crate::console::{ADMIN, add_admin};

/// Signs in at Latch's form, which the browser is on.
async fn sign_in(browser: &Browser, latch: &TestApp, username: &str) {
    browser.wait_for("the Latch login page", |url, _| url.starts_with(&latch.url("/login"))).await;
    browser.find("#username").await.send_keys(browser, username).await;
    browser.find("#password").await.send_keys(browser, PASSWORD).await;
    browser.find("button[type=submit]").await.click(browser).await;
}

/// Clicks the first element matching `css`.
async fn click(browser: &Browser, css: &str) {
    browser.find(css).await.click(browser).await;
}

/// Types `text` into the field `css`.
async fn type_in(browser: &Browser, css: &str, text: &str) {
    browser.find(css).await.send_keys(browser, text).await;
}

/// Nothing on the pages was refused by the Content-Security-Policy.
async fn assert_no_csp_refusals(browser: &Browser) {
    let refused: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|line| line.contains("Content Security Policy") && !line.contains("favicon"))
        .collect();
    assert!(refused.is_empty(), "the browser refused something: {refused:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_person_and_an_app_and_the_person_signs_in_to_it() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let Some(latch) = TestApp::spawn(Backend::Sqlite).await else { return };
    add_admin(&latch, ADMIN).await;
    let driver = Chromedriver::start(&chromedriver);
    let browser = driver.session(&chromium).await;

    // The console asks for a sign-in, then shows the dashboard.
    browser.goto(&latch.url("/admin")).await;
    sign_in(&browser, &latch, ADMIN).await;
    browser
        .wait_for("the dashboard", |url, source| url == latch.url("/admin") && source.contains("Sign-ins per day"))
        .await;

    // A person, from the People page's form.
    click(&browser, "nav a[href='/admin/users']").await;
    click(&browser, "a[href='/admin/users/new']").await;
    type_in(&browser, "#username", "dora").await;
    type_in(&browser, "#email", "dora@example.com").await;
    type_in(&browser, "#name", "Dora D").await;
    type_in(&browser, "#password", PASSWORD).await;
    click(&browser, "main form button[type=submit]").await;
    browser
        .wait_for("dora's page", |url, source| {
            url.ends_with("/admin/users/dora?done=created") && source.contains("Person created.")
        })
        .await;

    // An app, from the Apps page's form: the relying party's address.
    let (listener, rp_base) = RelyingParty::bind().await;
    click(&browser, "nav a[href='/admin/apps']").await;
    click(&browser, "a[href='/admin/apps/new']").await;
    type_in(&browser, "#slug", "rp").await;
    type_in(&browser, "#name", "Tiny RP").await;
    type_in(&browser, "#redirect_uris", &format!("{rp_base}/callback")).await;
    type_in(&browser, "#post_logout_redirect_uris", &format!("{rp_base}/bye")).await;
    click(&browser, "main form button[type=submit]").await;
    browser.wait_for("the new app's credentials", |_, source| source.contains("id=\"client-secret\"")).await;
    let client_id = browser.find("#client-id").await.text(&browser).await;
    let client_secret = browser.find("#client-secret").await.text(&browser).await;
    let snippet = browser.find("#snippet").await.text(&browser).await;
    assert!(snippet.contains(&format!("client_id               {client_id}")), "{snippet}");
    assert_eq!(
        snippet,
        latch.admin(&["app", "show", "rp"]).await.trim_end(),
        "the console shows what `app show` prints"
    );
    assert_no_csp_refusals(&browser).await;

    // The administrator leaves; dora opens the app and signs in through Latch.
    browser.command(reqwest::Method::DELETE, "/cookie", None).await.expect("delete cookies");
    let issuer = latch.issuer("rp");
    let credentials = AppCredentials {
        client_id,
        client_secret: Some(client_secret),
        discovery_url: format!("{issuer}.well-known/openid-configuration"),
        issuer,
    };
    let rp = RelyingParty::serve(listener, rp_base, credentials, Mode::Query).await;
    browser.goto(&rp.url("/")).await;
    sign_in(&browser, &latch, "dora").await;
    browser
        .wait_for("the app's greeting", |url, source| url.starts_with(&rp.url("/callback")) && source.contains("<h1>"))
        .await;
    assert_eq!(browser.find("h1").await.text(&browser).await, "Hello dora", "{}", browser.snapshot().await);

    // Dora is no administrator.
    browser.goto(&latch.url("/admin")).await;
    let page = browser.wait_for("the refusal", |_, source| source.contains("Administrators only")).await;
    assert!(page.contains("for members of the latch-admins group"), "{page}");
    assert_no_csp_refusals(&browser).await;
    browser.quit().await;
}

/// The tour: each console page in three looks, saved as PNG files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_tour_screenshots() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let Some(latch) = TestApp::spawn(Backend::Sqlite).await else { return };
    add_admin(&latch, ADMIN).await;
    populate(&latch).await;
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-tour");
    std::fs::create_dir_all(&out).expect("screenshot directory");
    let readme = std::env::var_os("LATCH_TOUR_DIR").map(PathBuf::from);
    let driver = Chromedriver::start(&chromedriver);
    let browser = driver.session(&chromium).await;
    browser.goto(&latch.url("/admin")).await;
    sign_in(&browser, &latch, ADMIN).await;
    browser.wait_for("the dashboard", |_, source| source.contains("Sign-ins per day")).await;

    let pages = [
        ("dashboard", "/admin"),
        ("people", "/admin/users"),
        ("person", "/admin/users/ada"),
        ("apps", "/admin/apps"),
        ("app", "/admin/apps/grafana"),
        ("events", "/admin/events"),
        ("keys", "/admin/keys"),
    ];
    for (look, dark, width) in [("light", false, 1280), ("dark", true, 1280), ("narrow", false, 360)] {
        cdp(
            &browser,
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": if dark { "dark" } else { "light" }}]}),
        )
        .await;
        cdp(
            &browser,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}),
        )
        .await;
        for (name, path) in pages {
            browser.goto(&latch.url(path)).await;
            browser.wait_for(name, |url, _| url.starts_with(&latch.url(path))).await;
            // Nothing is wider than the screen but what scrolls on purpose.
            let overflow = browser
                .post(
                    "/execute/sync",
                    json!({"script": "return document.documentElement.scrollWidth - window.innerWidth;", "args": []}),
                )
                .await
                .expect("measure");
            assert!(
                overflow.as_i64().is_some_and(|overflow| overflow <= 0),
                "{name} ({look}) is {overflow} px too wide"
            );
            let shot =
                cdp(&browser, "Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
            let png = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                shot["data"].as_str().expect("data"),
            )
            .expect("PNG");
            let file = format!("console-{name}-{look}.png");
            if let Some(readme) = readme.as_ref().filter(|_| README_SHOTS.contains(&file.as_str())) {
                std::fs::write(readme.join(&file), &png).expect("write the README's screenshot");
            }
            std::fs::write(out.join(file), png).expect("write the screenshot");
        }
    }
    eprintln!("console screenshots: {}", out.display());
    assert_no_csp_refusals(&browser).await;
    browser.quit().await;
}

/// The screenshots the README shows (the rest stay in the target directory).
const README_SHOTS: [&str; 6] = [
    "console-dashboard-light.png",
    "console-dashboard-dark.png",
    "console-dashboard-narrow.png",
    "console-person-light.png",
    "console-app-dark.png",
    "console-people-narrow.png",
];

/// A Chrome DevTools command through chromedriver.
async fn cdp(browser: &Browser, command: &str, params: Value) -> Value {
    browser
        .post("/goog/cdp/execute", json!({"cmd": command, "params": params}))
        .await
        .unwrap_or_else(|error| panic!("{command}: {error}"))
}

/// People, groups, apps and a month of sign-ins, for the tour to show.
async fn populate(latch: &TestApp) {
    for group in ["family", "friends", "media"] {
        latch.admin(&["group", "add", group]).await;
    }
    let people = [
        ("ada", "Ada Lovelace", "family"),
        ("bob", "Bob Marley", "friends"),
        ("carol", "Carol Danvers", "friends"),
        ("dan", "Dan Brown", "media"),
        ("erin", "Erin Hunter", "family"),
    ];
    for (username, name, group) in people {
        let email = format!("{username}@example.com");
        let args = ["user", "add", username, "--email", &email, "--name", name, "--group", group, "--password-stdin"];
        assert!(latch.latch(&args, Some(PASSWORD)).await.status.success());
    }
    latch.admin(&["user", "disable", "dan"]).await;
    for (slug, name) in
        [("grafana", "Grafana"), ("forgejo", "Forgejo"), ("jellyfin", "Jellyfin"), ("open-webui", "Open WebUI")]
    {
        let uri = format!("https://{slug}.example.com/oauth/callback");
        latch
            .admin(&[
                "app",
                "add",
                slug,
                "--name",
                name,
                "--redirect-uri",
                &uri,
                "--group",
                "family",
                "--group",
                "friends",
            ])
            .await;
    }
    latch
        .admin(&[
            "app",
            "add",
            "uptime",
            "--name",
            "Uptime Kuma",
            "--proxy",
            "--external-url",
            "https://uptime.example.com",
        ])
        .await;
    // A month of sign-ins: stored as the server's audit writer would have.
    let store = latch::store::Store::connect(&latch.database_url).await.expect("store");
    let now = latch::clock::now();
    let mut events = Vec::new();
    for day in 0..30_i64 {
        let at = now - day * 86_400;
        let busy = 6 + (day * 7 % 11);
        for n in 0..busy {
            let who = people[(n as usize + day as usize) % people.len()].0;
            let actor = latch::audit::Actor { username: Some(who), ip: Some("192.0.2.7"), ..Default::default() };
            events.push(latch::audit::event("login_success", &actor, None, at - n * 60));
            let app = ["grafana", "forgejo", "jellyfin", "open-webui", "uptime"][(n as usize * 3 + day as usize) % 5];
            let kind = if app == "uptime" { "proxy_sign_in" } else { "tokens_issued" };
            let detail = (kind == "tokens_issued").then(|| "authorization_code".to_owned());
            let actor = latch::audit::Actor { username: Some(who), app: Some(app), ..Default::default() };
            events.push(latch::audit::event(kind, &actor, detail, at - n * 60 + 1));
        }
        for n in 0..(day * 5 % 4) {
            let actor = latch::audit::Actor { username: Some("admin"), ip: Some("203.0.113.9"), ..Default::default() };
            events.push(latch::audit::event("login_failure", &actor, None, at - n * 90));
        }
    }
    store.record_events(&events).await.expect("events");
    store.close().await;
}
