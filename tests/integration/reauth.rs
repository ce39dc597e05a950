//! A sign-in that `prompt=login` or `max_age` demands counts once, for the
//! request that demanded it, in the session it created (OIDC Core
//! §3.1.2.1): what Latch adds to the repeated request cannot be collected
//! without signing in, carried to another browser, replayed, or kept.

use reqwest::StatusCode;

use crate::common::{Backend, Browser, absolute, hidden_input, location};
use crate::on_every_backend;
use crate::relying_party::{Landing, PASSWORD, Rp, open, server};

fn with(mut params: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    params.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
    params
}

/// Opens `url`, which must land on the login page; returns where its form
/// sends the browser after signing in (absolute).
async fn login_next(browser: &Browser, base: &str, url: &str) -> String {
    let landing = open(browser, base, url).await;
    let Landing::Login(html) = landing else { panic!("expected the login page, got {landing:?}") };
    absolute(base, &hidden_input(&html, "next").expect("next"))
}

/// Signs in on the page `url` lands on, without following the redirect
/// that comes after: returns that redirect's target (absolute).
async fn sign_in_stopping_after(browser: &Browser, base: &str, url: &str, username: &str) -> String {
    let landing = open(browser, base, url).await;
    let Landing::Login(html) = landing else { panic!("expected the login page, got {landing:?}") };
    let response = browser.submit_login(base, "", &html, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in as {username}");
    absolute(base, &location(&response).expect("Location"))
}

fn is_code(landing: &Landing) -> bool {
    matches!(landing, Landing::App(url) if url.query_pairs().any(|(name, _)| name == "code"))
}

/// The repeated request Latch hands out to a browser without a session
/// does not let another, signed-in browser skip the password.
async fn a_mark_collected_without_signing_in_skips_nothing(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    for demand in [("prompt", "login"), ("max_age", "0")] {
        let params = with(rp.request("openid", "step-up"), &[demand]);
        // The attacker, signed in nowhere, collects the repeated request…
        let collected = login_next(&Browser::new(), &app.base, &rp.authorize_url(&params)).await;
        // …the person signs in afterwards…
        let victim = Browser::new();
        rp.code(&victim, &rp.request("openid", "one"), "ada").await;
        // …and the collected request, opened in the person's browser, still asks.
        let landing = open(&victim, &app.base, &collected).await;
        assert!(landing.is_login(), "{demand:?}: a collected request skipped the password: {landing:?}");
    }
}

/// The sign-in a request demanded answers that request once, and only in
/// the browser (session) that signed in.
async fn a_reauthentication_answers_once_in_its_own_session(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let first = Browser::new();
    rp.code(&first, &rp.request("openid", "one"), "ada").await;
    let params = with(rp.request("openid", "step-up"), &[("prompt", "login")]);
    let repeated = sign_in_stopping_after(&first, &app.base, &rp.authorize_url(&params), "ada").await;

    // Another browser of the same person, signed in later, gains nothing.
    let second = Browser::new();
    rp.code(&second, &rp.request("openid", "two"), "ada").await;
    let landing = open(&second, &app.base, &repeated).await;
    assert!(landing.is_login(), "another session used the re-authentication: {landing:?}");

    // The browser that signed in gets its code, once.
    let landing = open(&first, &app.base, &repeated).await;
    assert!(is_code(&landing), "the re-authentication must answer the request: {landing:?}");
    let landing = open(&first, &app.base, &repeated).await;
    assert!(landing.is_login(), "a re-authentication answers one request only: {landing:?}");
}

/// `max_age=0` asks every time, even within the second of the last sign-in,
/// and the sign-in it asks for then answers it.
async fn max_age_0_always_asks_again(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    rp.code(&browser, &rp.request("openid", "one"), "ada").await;

    let silent = with(rp.request("openid", "quiet"), &[("max_age", "0"), ("prompt", "none")]);
    rp.assert_error(&rp.authorize_once(&browser, &silent).await, "login_required", "quiet");
    let params = with(rp.request("openid", "again"), &[("max_age", "0")]);
    let repeated = sign_in_stopping_after(&browser, &app.base, &rp.authorize_url(&params), "ada").await;
    let landing = open(&browser, &app.base, &repeated).await;
    assert!(is_code(&landing), "the demanded sign-in answers max_age=0: {landing:?}");
}

/// With an app that asks for consent, the demanded sign-in carries over to
/// the consent form, and that form answers once.
async fn a_reauthentication_carries_over_to_the_consent_form_once(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let browser = Browser::new();
    let params = with(rp.request("openid", "s"), &[("prompt", "login")]);
    let repeated = sign_in_stopping_after(&browser, &app.base, &rp.authorize_url(&params), "ada").await;
    let Landing::Consent(html) = open(&browser, &app.base, &repeated).await else {
        panic!("after signing in, the consent page");
    };
    let mut form = crate::relying_party::hidden_inputs(&html);
    form.push(("latch_consent".into(), "allow".into()));
    let authorize = app.url("/application/o/authorize/");
    let answer = browser.client.post(&authorize).form(&form).send().await.unwrap();
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let target = url::Url::parse(&location(&answer).expect("Location")).expect("absolute");
    assert!(target.query_pairs().any(|(name, _)| name == "code"), "consent answers with a code: {target}");

    let again = browser.client.post(&authorize).form(&form).send().await.unwrap();
    let target = absolute(&app.base, &location(&again).unwrap_or_default());
    assert!(target.starts_with(&app.url("/login")), "the form answers once, then asks again: {target}");
}

/// The store keeps a sign-in's mark for minutes, not forever, and only for
/// the session it was made in; the clock is passed in.
async fn a_reauthentication_mark_expires(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let store = latch::store::Store::connect(&app.database_url).await.expect("store");
    let user_id = store.user_credentials("ada").await.expect("lookup").expect("ada").id;
    let now = latch::clock::now();
    for session in ["session-a", "session-b"] {
        let record = latch::store::NewSessionRecord {
            id_hash: session,
            user_id: &user_id,
            auth_time: now,
            amr: "pwd",
            expires_at: now + 3600,
            replaces: None,
        };
        assert!(store.create_session(record, None, now).await.expect("session"));
    }
    store.mark_reauthentication("session-a", "mark", now + 300).await.expect("mark");
    assert!(!store.take_reauth_mark("session-b", "mark", now).await.unwrap(), "another session");
    assert!(!store.take_reauth_mark("session-a", "mark", now + 300).await.unwrap(), "expired");
    store.mark_reauthentication("session-a", "mark", now + 300).await.expect("mark");
    assert!(store.take_reauth_mark("session-a", "mark", now + 299).await.unwrap(), "fresh");
    assert!(!store.take_reauth_mark("session-a", "mark", now + 299).await.unwrap(), "used");
    store.close().await;
}

on_every_backend!(
    a_mark_collected_without_signing_in_skips_nothing,
    a_reauthentication_answers_once_in_its_own_session,
    max_age_0_always_asks_again,
    a_reauthentication_carries_over_to_the_consent_form_once,
    a_reauthentication_mark_expires,
);
