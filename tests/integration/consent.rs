//! Consent: apps registered with `--consent explicit` show a page listing
//! what the app will receive, once per user and app until the scope grows;
//! `prompt=consent` always asks. The answer is a CSRF-protected form POST
//! back to the authorization endpoint.

use reqwest::StatusCode;
use sqlx::Connection;

use crate::common::{Backend, Browser, query_param};
use crate::on_every_backend;
use crate::relying_party::{Landing, Rp, header, hidden_inputs, open, server, sign_in_on, token_ok};

fn with(mut params: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    params.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
    params
}

/// The scopes a consent page lists, in order.
fn listed_scopes(html: &str) -> Vec<String> {
    let marker = "<li data-scope=\"";
    html.split(marker).skip(1).map(|rest| rest[..rest.find('"').expect("end of data-scope")].to_owned()).collect()
}

/// Opens `params` in `browser` (signing in as `username` if asked) and
/// returns the consent page it must land on.
async fn consent_page(rp: &Rp, browser: &Browser, params: &[(String, String)], username: &str) -> String {
    let landing = match open(browser, &rp.base, &rp.authorize_url(params)).await {
        Landing::Login(html) => sign_in_on(browser, &rp.base, &html, username).await,
        landing => landing,
    };
    match landing {
        Landing::Consent(html) => html,
        other => panic!("expected the consent page, got {other:?}"),
    }
}

/// Posts the consent form of `html` with `latch_consent=<decision>`, after
/// `tamper` has changed its fields.
async fn answer(
    rp: &Rp,
    browser: &Browser,
    html: &str,
    decision: &str,
    tamper: impl FnOnce(&mut Vec<(String, String)>),
) -> reqwest::Response {
    assert!(html.contains("action=\"/application/o/authorize/\""), "the form posts back to authorize: {html}");
    let mut fields = hidden_inputs(html);
    tamper(&mut fields);
    fields.push(("latch_consent".into(), decision.into()));
    let url = format!("{}/application/o/authorize/", rp.base);
    browser.client.post(url).form(&fields).send().await.expect("consent POST")
}

/// The code of an answer that must redirect to the app.
fn code_of(rp: &Rp, response: &reqwest::Response, state: &str) -> String {
    let status = response.status();
    assert!(
        status == StatusCode::SEE_OTHER || status == StatusCode::FOUND,
        "after a form POST: 303 or 302 (never 307, which would re-post the form), got {status}"
    );
    let callback = rp.callback(&crate::common::location(response).expect("Location"));
    assert_eq!(query_param(&callback, "state").as_deref(), Some(state));
    query_param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"))
}

async fn explicit_consent_is_asked_once_until_the_scope_grows(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let browser = Browser::new();
    let params = rp.request("openid email", "c1");

    let html = consent_page(&rp, &browser, &params, "ada").await;
    assert_eq!(listed_scopes(&html), vec!["openid", "email"], "the page lists what the app will receive");
    assert!(html.contains("web"), "the page names the app");
    // Not answered yet: a silent request cannot go through.
    let silent = with(rp.request("openid email", "quiet"), &[("prompt", "none")]);
    rp.assert_error(&rp.authorize_once(&browser, &silent).await, "consent_required", "quiet");

    let response = answer(&rp, &browser, &html, "allow", |_| {}).await;
    let tokens = token_ok(rp.redeem(&code_of(&rp, &response, "c1")).await).await;
    assert!(tokens["scope"].as_str().unwrap().contains("email"), "{tokens}");

    // Asked once: the same scope, or less, goes straight through.
    rp.silent_code(&browser, &rp.request("openid email", "c2")).await;
    rp.silent_code(&browser, &rp.request("openid", "c3")).await;
    rp.silent_code(&browser, &silent).await;

    // A wider scope asks again, listing it.
    let wider = rp.request("openid email profile", "c4");
    let html = consent_page(&rp, &browser, &wider, "ada").await;
    assert_eq!(listed_scopes(&html), vec!["openid", "profile", "email"]);
    code_of(&rp, &answer(&rp, &browser, &html, "allow", |_| {}).await, "c4");
    rp.silent_code(&browser, &rp.request("openid email profile", "c5")).await;

    // prompt=consent asks every time.
    let again = with(rp.request("openid", "c6"), &[("prompt", "consent")]);
    let html = consent_page(&rp, &browser, &again, "ada").await;
    code_of(&rp, &answer(&rp, &browser, &html, "allow", |_| {}).await, "c6");

    // Consent is per person: grace is asked for herself.
    consent_page(&rp, &Browser::new(), &rp.request("openid email", "g"), "grace").await;
}

async fn denied_consent_is_access_denied(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let browser = Browser::new();
    let params = rp.request("openid email", "d1");
    let html = consent_page(&rp, &browser, &params, "ada").await;

    let response = answer(&rp, &browser, &html, "deny", |_| {}).await;
    rp.assert_error(&response, "access_denied", "d1");

    // A refusal is not remembered as consent.
    consent_page(&rp, &browser, &rp.request("openid email", "d2"), "ada").await;
}

async fn consent_without_the_csrf_token_is_refused(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let browser = Browser::new();
    let params = rp.request("openid email", "x1");
    let html = consent_page(&rp, &browser, &params, "ada").await;

    let without = answer(&rp, &browser, &html, "allow", |fields| fields.retain(|(name, _)| name != "csrf_token")).await;
    assert_eq!(without.status(), StatusCode::BAD_REQUEST);
    assert!(header(&without, "location").is_none(), "a refused consent redirects nowhere");

    let forged = answer(&rp, &browser, &html, "allow", |fields| {
        for (name, value) in fields.iter_mut() {
            if name == "csrf_token" {
                *value = "A".repeat(43);
            }
        }
    })
    .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(header(&forged, "location").is_none());

    // Consent cannot be given by a link either.
    let mut by_link = hidden_inputs(&html);
    by_link.retain(|(name, _)| name != "csrf_token");
    by_link.push(("latch_consent".into(), "allow".into()));
    let response = browser.client.get(rp.authorize_url(&by_link)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(header(&response, "location").is_none());

    // Nothing was recorded: the next request still asks.
    consent_page(&rp, &browser, &rp.request("openid email", "x2"), "ada").await;
}

async fn prompt_consent_asks_even_on_an_implicit_app(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    // Implicit consent (the default): no page.
    rp.code(&browser, &rp.request("openid", "i1"), "ada").await;

    let params = with(rp.request("openid profile", "i2"), &[("prompt", "consent")]);
    let response = rp.authorize_once(&browser, &params).await;
    assert_eq!(response.status(), StatusCode::OK, "the consent page, at once");
    assert_eq!(header(&response, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(header(&response, "referrer-policy").as_deref(), Some("no-referrer"));
    assert!(header(&response, "access-control-allow-origin").is_none(), "no CORS on authorization pages");
    let csp = header(&response, "content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = response.text().await.unwrap();
    assert_eq!(listed_scopes(&html), vec!["openid", "profile"]);
    let response = answer(&rp, &browser, &html, "allow", |_| {}).await;
    token_ok(rp.redeem(&code_of(&rp, &response, "i2")).await).await;
}

/// The page says in words what each scope hands over, `groups` included.
async fn consent_page_says_what_each_scope_releases(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let browser = Browser::new();
    let html = consent_page(&rp, &browser, &rp.request("openid email groups offline_access", "w"), "ada").await;
    assert_eq!(listed_scopes(&html), vec!["openid", "email", "groups", "offline_access"]);
    for words in ["Your account identifier", "Your email address", "The groups you belong to", "while you are away"] {
        assert!(html.contains(words), "{words:?} missing: {html}");
    }
    let response = answer(&rp, &browser, &html, "allow", |_| {}).await;
    let tokens = token_ok(rp.redeem(&code_of(&rp, &response, "w")).await).await;
    assert_eq!(tokens["scope"], "openid email groups offline_access", "{tokens}");
}

/// A consent setting Latch never writes (a hand edit, a newer version's
/// value) is reported as the server's fault, never read as some default
/// that would skip the consent page.
async fn an_unknown_stored_consent_setting_is_a_server_error(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    sqlx::any::install_default_drivers();
    let mut database = sqlx::AnyConnection::connect(&app.database_url).await.expect("database");
    sqlx::query("UPDATE apps SET consent = 'sometimes' WHERE slug = 'web'")
        .execute(&mut database)
        .await
        .expect("update");
    let secret = rp.credentials.client_secret.as_deref().expect("confidential");
    let response = app.token(Some((&rp.credentials.client_id, secret)), &[("grant_type", "client_credentials")]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"], "server_error", "{body}");
}

on_every_backend!(
    consent_page_says_what_each_scope_releases,
    explicit_consent_is_asked_once_until_the_scope_grows,
    denied_consent_is_access_denied,
    consent_without_the_csrf_token_is_refused,
    prompt_consent_asks_even_on_an_implicit_app,
    an_unknown_stored_consent_setting_is_a_server_error
);
