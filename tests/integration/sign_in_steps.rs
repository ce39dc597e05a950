//! Sign-in in steps (issue 13): the username first, then the password on a
//! page of its own, the sign-in under way kept in the store for a few
//! minutes; the session records how and when the person signed in, and ID
//! tokens say so (`amr`, RFC 8176; `auth_time`), from the code grant and
//! from refresh. Throttling and CSRF hold in the two-step form as in the
//! one-page form, and the first step tells nobody which accounts exist.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, Scope, TokenResponse};
use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::common::{
    Backend, Browser, Options, PASSWORD, TestApp, absolute, alert_text, hidden_input, http, location, query_param,
    set_cookies,
};
use crate::on_every_backend;
use crate::relying_party::{Rp, server};

const PENDING_TTL: i64 = latch::login::flow::PENDING_TTL;

/// The first form (`/login?next=…`) as `browser` gets it.
async fn login_page(browser: &Browser, app: &TestApp, next: &str) -> String {
    let url = url::Url::parse_with_params(&app.url("/login"), [("next", next)]).expect("login URL");
    let page = browser.client.get(url).send().await.expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.expect("login page")
}

/// Posts the first form of `html` with a username and no password.
async fn identify_on(browser: &Browser, app: &TestApp, html: &str, username: &str) -> reqwest::Response {
    let csrf = hidden_input(html, "csrf_token").expect("csrf_token in the first form");
    let next = hidden_input(html, "next").expect("next in the first form");
    let form = [("csrf_token", csrf.as_str()), ("next", next.as_str()), ("username", username)];
    browser.client.post(app.url("/login")).form(&form).send().await.expect("identify")
}

/// Opens the first form with `next` and identifies as `username`: the
/// password step's page.
async fn identify(browser: &Browser, app: &TestApp, username: &str, next: &str) -> String {
    let html = login_page(browser, app, next).await;
    let response = identify_on(browser, app, &html, username).await;
    assert_eq!(response.status(), StatusCode::OK, "identifying as {username}");
    assert!(signin_cookie(&response).is_some_and(|cookie| !cookie.contains("Max-Age=0")), "a sign-in cookie");
    let page = response.text().await.expect("password step");
    assert_eq!(hidden_input(&page, "step").as_deref(), Some("password"), "{page}");
    page
}

/// Posts the password step of `html`.
async fn prove(browser: &Browser, app: &TestApp, html: &str, password: &str) -> reqwest::Response {
    browser.client.post(app.url("/login")).form(&step_form(html, password)).send().await.expect("password step")
}

fn step_form(html: &str, password: &str) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = ["csrf_token", "next", "step"]
        .into_iter()
        .map(|name| (name.to_owned(), hidden_input(html, name).unwrap_or_else(|| panic!("{name} in {html}"))))
        .collect();
    form.push(("password".into(), password.into()));
    form
}

fn cookie_named(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(response).into_iter().find(|cookie| cookie.starts_with(&format!("{name}=")))
}

fn signin_cookie(response: &reqwest::Response) -> Option<String> {
    cookie_named(response, "latch_signin")
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    cookie_named(response, "latch_session")
}

/// A `Set-Cookie` value's value.
fn value(set_cookie: &str) -> &str {
    set_cookie.split(';').next().and_then(|pair| pair.split_once('=')).map_or("", |(_, value)| value)
}

async fn identify_first_then_the_password_signs_in(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let browser = Browser::new();
    let next = "/application/o/authorize/?client_id=x";
    let html = login_page(&browser, &app, next).await;
    let response = identify_on(&browser, &app, &html, "ada").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(session_cookie(&response), None, "naming oneself signs nobody in");
    let cookie = signin_cookie(&response).expect("the sign-in under way has a cookie");
    let attributes: Vec<String> = cookie.split(';').map(|part| part.trim().to_ascii_lowercase()).collect();
    for attribute in ["httponly", "samesite=lax", "path=/", &format!("max-age={PENDING_TTL}")] {
        assert!(attributes.iter().any(|present| present == attribute), "{attribute} in {cookie}");
    }
    let page = response.text().await.unwrap();
    assert!(page.contains("Signing in as <strong>ada</strong>"), "{page}");
    assert!(!page.contains("name=\"username\""), "the username is not asked again: {page}");
    assert_eq!(hidden_input(&page, "next").as_deref(), Some(next));

    let response = prove(&browser, &app, &page, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response).as_deref(), Some(next));
    assert!(session_cookie(&response).is_some(), "signed in");
    assert!(signin_cookie(&response).is_some_and(|cookie| cookie.contains("Max-Age=0")), "the sign-in cookie goes");
    assert_eq!(browser.client.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK, "signed in");
}

/// Posts the password step of `html` with a password that must be refused
/// (401, no session, the same step asked again); returns the message.
async fn refused(browser: &Browser, app: &TestApp, html: &str, password: &str) -> String {
    let response = prove(browser, app, html, password).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{password}");
    assert_eq!(session_cookie(&response), None);
    let page = response.text().await.unwrap();
    assert_eq!(hidden_input(&page, "step").as_deref(), Some("password"), "the step is asked again: {page}");
    alert_text(&page).expect("a message")
}

/// Naming an unknown account gets the very page a real one gets, and its
/// password step fails exactly like a wrong password.
async fn identify_reveals_nothing_about_accounts(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let browser = Browser::new();
    let known = identify(&browser, &app, "ada", "/").await;
    let unknown = identify(&browser, &app, "nobody", "/").await;
    assert_eq!(unknown.replace("nobody", "ada"), known, "the page must not tell which accounts exist");

    let wrong_password = refused(&browser, &app, &known, "not the password").await;
    let unknown_user = refused(&browser, &app, &unknown, "not the password").await;
    assert_eq!(wrong_password, unknown_user);
    assert_eq!(wrong_password, "Invalid username or password.");
}

/// A sign-in under way lasts `PENDING_TTL` seconds: a step posted later
/// starts over on the first form, saying why and keeping `next`, and a
/// finished sign-in cannot be finished again.
async fn a_pending_sign_in_expires_and_restarts_cleanly(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let (early, late) = (Browser::new(), Browser::new());
    let next = "/application/o/authorize/?client_id=x";
    let early_page = identify(&early, &app, "ada", next).await;
    let late_page = identify(&late, &app, "ada", next).await;

    // A few seconds' margin: the wall clock ticks on under the moved one.
    app.clock.advance(PENDING_TTL - 5);
    let response = prove(&early, &app, &early_page, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "in time");

    app.clock.advance(6);
    let response = prove(&late, &app, &late_page, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(session_cookie(&response), None, "an expired sign-in signs nobody in");
    assert!(signin_cookie(&response).is_some_and(|cookie| cookie.contains("Max-Age=0")), "its cookie goes");
    let page = response.text().await.unwrap();
    let message = alert_text(&page).expect("a message");
    assert!(message.contains("expired") && message.contains("start again"), "{message}");
    assert!(page.contains("name=\"username\""), "the first form again: {page}");
    assert_eq!(hidden_input(&page, "next").as_deref(), Some(next), "toward the same place");
    let page = identify_on(&late, &app, &page, "ada").await.text().await.unwrap();
    assert_eq!(prove(&late, &app, &page, PASSWORD).await.status(), StatusCode::SEE_OTHER, "started again");

    // With its cookies in hand: a step without the sign-in cookie, and a
    // finished sign-in posted again, start over too.
    let client = http();
    let page = client.get(app.url("/login")).send().await.unwrap();
    let csrf = format!("latch_csrf={}", value(&cookie_named(&page, "latch_csrf").expect("CSRF cookie")));
    let html = page.text().await.unwrap();
    let csrf_token = hidden_input(&html, "csrf_token").expect("csrf_token");
    let form = [("csrf_token", csrf_token.as_str()), ("next", "/"), ("username", "ada")];
    let identified = client.post(app.url("/login")).header(COOKIE, &csrf).form(&form).send().await.unwrap();
    let cookies = format!("{csrf}; latch_signin={}", value(&signin_cookie(&identified).expect("sign-in cookie")));
    let form = step_form(&identified.text().await.unwrap(), PASSWORD);
    let without = client.post(app.url("/login")).header(COOKIE, &csrf).form(&form).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::BAD_REQUEST, "no sign-in under way");
    let post = || client.post(app.url("/login")).header(COOKIE, &cookies).form(&form).send();
    assert_eq!(post().await.unwrap().status(), StatusCode::SEE_OTHER);
    let replay = post().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "a finished sign-in is over");
    assert_eq!(session_cookie(&replay), None);
}

/// Failures in the password step and in the one-page form count against
/// the same limit, and a lock refuses the right password in either, with
/// the answer a wrong password gets; the pending sign-in outlives the lock.
async fn throttling_holds_in_the_two_step_form(backend: Backend) {
    let options = Options { login_max_failures: Some("2"), login_lockout: Some("60s"), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, options).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let one_page = Browser::new().sign_in(&app.base, "ada", "guess 1").await;
    assert_eq!(one_page.status(), StatusCode::UNAUTHORIZED);
    let wrong = alert_text(&one_page.text().await.unwrap()).expect("a message");

    let browser = Browser::new();
    let page = identify(&browser, &app, "ada", "/").await;
    let guess = refused(&browser, &app, &page, "guess 2").await;
    assert_eq!(guess, wrong, "a wrong guess in the password step");
    let locked = refused(&browser, &app, &page, PASSWORD).await;
    assert_eq!(locked, wrong, "the right password in the password step, locked");
    let one_page = Browser::new().sign_in(&app.base, "ada", PASSWORD).await;
    assert_eq!(one_page.status(), StatusCode::UNAUTHORIZED, "the right password in the one-page form, locked");

    app.clock.advance(61);
    assert_eq!(prove(&browser, &app, &page, PASSWORD).await.status(), StatusCode::SEE_OTHER, "after the lock");
}

/// Each step's form carries the CSRF token made for this browser: without
/// it, with another browser's, or posted from another site, nothing moves.
async fn csrf_holds_in_the_two_step_form(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let browser = Browser::new();
    let html = login_page(&browser, &app, "/").await;
    let no_token = browser.client.post(app.url("/login")).form(&[("next", "/"), ("username", "ada")]).send();
    let no_token = no_token.await.unwrap();
    assert_eq!(no_token.status(), StatusCode::BAD_REQUEST, "identifying without the token");
    assert_eq!(signin_cookie(&no_token), None, "nothing started");

    let page = identify_on(&browser, &app, &html, "ada").await.text().await.unwrap();
    let others = hidden_input(&login_page(&Browser::new(), &app, "/").await, "csrf_token").expect("csrf_token");
    let mut form = step_form(&page, PASSWORD);
    let attempts = [
        ("without the token", form.iter().filter(|(name, _)| name != "csrf_token").cloned().collect(), None),
        ("with another browser's token", with_field(&form, "csrf_token", &others), None),
        ("from another site", form.clone(), Some("cross-site")),
        ("from a sibling host", form.clone(), Some("same-site")),
    ];
    for (what, fields, site) in attempts {
        let request = browser.client.post(app.url("/login")).form(&fields);
        let request = match site {
            Some(site) => request.header("sec-fetch-site", site),
            None => request,
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(session_cookie(&response), None, "{what}");
    }
    form.push(("unused".into(), String::new()));
    let response = browser.client.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "the form as shown");
}

fn with_field(form: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    form.iter().map(|(key, old)| (key.clone(), if key == name { value.to_owned() } else { old.clone() })).collect()
}

/// ID tokens name how and when the person signed in: `amr` `["pwd"]` and
/// `auth_time` the moment of the sign-in, from the code grant and again
/// from a refresh later on, verified by the `openidconnect` crate.
async fn id_tokens_carry_amr_and_auth_time_from_code_and_refresh(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let client = rp.client().await;
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("offline_access".into()))
        .url();
    let browser = Browser::new();
    let login = browser.visit(&app.base, url.as_str()).await;
    assert_eq!(login.status(), StatusCode::OK, "Latch asks who is signing in");
    let html = login.text().await.unwrap();
    let page = identify_on(&browser, &app, &html, "ada").await.text().await.unwrap();
    let before = app.clock.now();
    let signed_in = prove(&browser, &app, &page, PASSWORD).await;
    let after = app.clock.now();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let back = browser.visit(&app.base, &absolute(&app.base, &location(&signed_in).expect("Location"))).await;
    let callback = rp.callback(&location(&back).expect("a redirect to the app"));
    let code = query_param(&callback, "code").expect("code");

    app.clock.advance(30);
    let http = http();
    let tokens = client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http).await.unwrap();
    let claims = tokens.id_token().expect("ID token").claims(&client.id_token_verifier(), &nonce).unwrap();
    let methods = |amr: Option<&Vec<openidconnect::AuthenticationMethodReference>>| {
        amr.map(|amr| amr.iter().map(|method| method.as_str().to_owned()).collect::<Vec<_>>())
    };
    assert_eq!(methods(claims.auth_method_refs()), Some(vec!["pwd".to_owned()]), "amr from the code grant");
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!((before..=after).contains(&auth_time), "auth_time {auth_time} is the sign-in, in {before}..={after}");
    assert!(claims.issue_time().timestamp() >= before + 30, "iat is the exchange");

    app.clock.advance(30);
    let refresh_token = tokens.refresh_token().expect("offline_access gives a refresh token");
    let refreshed = client.exchange_refresh_token(refresh_token).unwrap().request_async(&http).await.unwrap();
    let no_nonce = |_: Option<&Nonce>| Ok(());
    let claims = refreshed.id_token().expect("ID token").claims(&client.id_token_verifier(), no_nonce).unwrap();
    assert_eq!(methods(claims.auth_method_refs()), Some(vec!["pwd".to_owned()]), "amr from refresh");
    assert_eq!(claims.auth_time().map(|time| time.timestamp()), Some(auth_time), "a refresh is not a sign-in");
    let discovery = http.get(app.url("/application/o/web/.well-known/openid-configuration")).send().await.unwrap();
    let discovery: serde_json::Value = discovery.json().await.unwrap();
    assert!(discovery["claims_supported"].as_array().unwrap().contains(&"amr".into()), "{discovery}");
}

/// Username-only posts are bounded per client address: past the bound the
/// first form comes back refused, whether the account exists or not, and
/// no sign-in is stored, until the lockout is over.
async fn identify_is_bounded_per_address(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let browser = Browser::new();
    let html = login_page(&browser, &app, "/").await;
    for _ in 0..latch::login::flow::IDENTIFIES_PER_ADDRESS {
        assert_eq!(identify_on(&browser, &app, &html, "nobody").await.status(), StatusCode::OK);
    }
    for username in ["ada", "nobody"] {
        let response = identify_on(&browser, &app, &html, username).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "past the bound, as {username}");
        assert_eq!(signin_cookie(&response), None, "no sign-in is started");
        let page = response.text().await.unwrap();
        assert_eq!(alert_text(&page).as_deref(), Some("Invalid username or password."), "{page}");
    }
    app.clock.advance(PENDING_TTL + 1);
    identify(&browser, &app, "ada", "/").await;
}

on_every_backend!(
    identify_first_then_the_password_signs_in,
    identify_is_bounded_per_address,
    identify_reveals_nothing_about_accounts,
    a_pending_sign_in_expires_and_restarts_cleanly,
    throttling_holds_in_the_two_step_form,
    csrf_holds_in_the_two_step_form,
    id_tokens_carry_amr_and_auth_time_from_code_and_refresh,
);
