//! Authorization request options: `prompt` (none, login), `max_age`,
//! `id_token_hint`, `login_hint`, unknown scopes and the `claims`
//! parameter; and the codes of the answers. Every authorization response
//! carries `iss` equal to the discovered issuer (checked by `Rp::callback`
//! on each one).

use reqwest::StatusCode;

use crate::common::{Backend, Browser, absolute, query_param};
use crate::on_every_backend;
use crate::relying_party::{Landing, Rp, attribute, jwt, open, server, sign_in_on, string, token_ok};

/// 128 characters ending in the unreserved punctuation `-._~`.
fn long_state() -> String {
    let state = format!("{}-._~", "s".repeat(124));
    assert_eq!(state.len(), 128);
    state
}

fn with(mut params: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    params.extend(extra.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())));
    params
}

/// The claims of the ID token the code buys.
async fn id_claims(rp: &Rp, code: &str) -> serde_json::Value {
    let tokens = token_ok(rp.redeem(code).await).await;
    jwt(string(&tokens, "id_token"), 1)
}

fn auth_time(claims: &serde_json::Value) -> i64 {
    claims["auth_time"].as_i64().unwrap_or_else(|| panic!("auth_time missing: {claims}"))
}

/// The code of a sign-in page answered with the password.
async fn code_after_sign_in(rp: &Rp, browser: &Browser, landing: Landing, username: &str) -> String {
    let Landing::Login(html) = landing else { panic!("expected the password to be asked, got {landing:?}") };
    let Landing::App(callback) = sign_in_on(browser, &rp.base, &html, username).await else {
        panic!("after signing in the browser goes back to the app");
    };
    query_param(&rp.callback(callback.as_str()), "code").expect("code")
}

async fn prompt_none_without_a_session_is_login_required(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let state = long_state();
    let params = with(rp.request("openid", &state), &[("prompt", "none")]);
    let response = rp.authorize_once(&Browser::new(), &params).await;
    rp.assert_error(&response, "login_required", &state);

    // none cannot be combined with anything else.
    let params = with(rp.request("openid", &state), &[("prompt", "none login")]);
    rp.assert_error(&rp.authorize_once(&Browser::new(), &params).await, "invalid_request", &state);
}

async fn prompt_none_with_a_session_answers_without_a_page(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let first = id_claims(&rp, &rp.code(&browser, &rp.request("openid", "one"), "ada").await).await;

    let params = with(rp.request("openid profile", "two"), &[("prompt", "none"), ("nonce", "n-2")]);
    let second = id_claims(&rp, &rp.silent_code(&browser, &params).await).await;
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(auth_time(&second), auth_time(&first), "no new sign-in happened");
    assert_eq!(second["nonce"], "n-2");
}

async fn prompt_login_asks_for_the_password_again(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let first = id_claims(&rp, &rp.code(&browser, &rp.request("openid", "one"), "ada").await).await;
    app.clock.advance(1);

    let params = with(rp.request("openid", "two"), &[("prompt", "login")]);
    let landing = open(&browser, &app.base, &rp.authorize_url(&params)).await;
    let Landing::Login(html) = &landing else { panic!("prompt=login must show the login page: {landing:?}") };
    // Skipping the form and going straight back does not count as signing in.
    let next = crate::common::hidden_input(html, "next").expect("next");
    let skipped = open(&browser, &app.base, &absolute(&app.base, &next)).await;
    assert!(skipped.is_login(), "the request still needs a sign-in: {skipped:?}");

    let second = id_claims(&rp, &code_after_sign_in(&rp, &browser, landing, "ada").await).await;
    assert_eq!(second["sub"], first["sub"]);
    assert!(auth_time(&second) > auth_time(&first), "auth_time must move: {first} then {second}");
}

async fn max_age_1_after_2_seconds_asks_for_the_password(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let first = id_claims(&rp, &rp.code(&browser, &rp.request("openid", "one"), "ada").await).await;
    app.clock.advance(2);

    // A silent request cannot satisfy max_age with an old session.
    let silent = with(rp.request("openid", "quiet"), &[("max_age", "1"), ("prompt", "none")]);
    rp.assert_error(&rp.authorize_once(&browser, &silent).await, "login_required", "quiet");

    let params = with(rp.request("openid", "two"), &[("max_age", "1")]);
    let landing = open(&browser, &app.base, &rp.authorize_url(&params)).await;
    let second = id_claims(&rp, &code_after_sign_in(&rp, &browser, landing, "ada").await).await;
    assert!(auth_time(&second) > auth_time(&first), "a re-authentication: {first} then {second}");
}

async fn max_age_10000_keeps_the_session(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let params = with(rp.request("openid", "one"), &[("max_age", "10000")]);
    let first = id_claims(&rp, &rp.code(&browser, &params, "ada").await).await;

    let params = with(rp.request("openid", "two"), &[("max_age", "10000")]);
    let second = id_claims(&rp, &rp.silent_code(&browser, &params).await).await;
    assert_eq!(auth_time(&second), auth_time(&first), "{first} then {second}");
}

async fn id_token_hint_with_prompt_none_answers_silently(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let tokens = token_ok(rp.redeem(&rp.code(&browser, &rp.request("openid", "one"), "ada").await).await).await;
    let first = jwt(string(&tokens, "id_token"), 1);

    let hint = string(&tokens, "id_token");
    let params = with(rp.request("openid", "two"), &[("prompt", "none"), ("id_token_hint", hint)]);
    let second = id_claims(&rp, &rp.silent_code(&browser, &params).await).await;
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(auth_time(&second), auth_time(&first));
}

async fn id_token_hint_of_another_user_is_not_answered_silently(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let grace_tokens =
        token_ok(rp.redeem(&rp.code(&Browser::new(), &rp.request("openid", "g"), "grace").await).await).await;
    let grace_hint = string(&grace_tokens, "id_token");
    let browser = Browser::new();
    rp.code(&browser, &rp.request("openid", "a"), "ada").await;

    // ada's browser, an app that thinks grace is signed in.
    let params = with(rp.request("openid", "two"), &[("prompt", "none"), ("id_token_hint", grace_hint)]);
    rp.assert_error(&rp.authorize_once(&browser, &params).await, "login_required", "two");

    // Without prompt=none the person is asked to sign in, and may become grace.
    let params = with(rp.request("openid", "three"), &[("id_token_hint", grace_hint)]);
    let landing = open(&browser, &app.base, &rp.authorize_url(&params)).await;
    let claims = id_claims(&rp, &code_after_sign_in(&rp, &browser, landing, "grace").await).await;
    assert_eq!(claims["sub"], jwt(grace_hint, 1)["sub"]);
}

async fn login_hint_prefills_the_username(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    for hint in ["grace", "\"><b>x</b>&amp;"] {
        let params = with(rp.request("openid", "s"), &[("login_hint", hint)]);
        let landing = open(&Browser::new(), &app.base, &rp.authorize_url(&params)).await;
        let Landing::Login(html) = landing else { panic!("the login page: {landing:?}") };
        let start = html.find("name=\"username\"").expect("a username field");
        let tag_start = html[..start].rfind('<').expect("tag");
        let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
        assert_eq!(attribute(tag, "value").as_deref(), Some(hint), "{tag}");
        if hint.contains('<') {
            assert!(!html.contains(hint), "the hint must be escaped on the page");
        }
    }
    // And it works: signing in as the hinted user.
    let params = with(rp.request("openid", "s"), &[("login_hint", "grace")]);
    let browser = Browser::new();
    let landing = open(&browser, &app.base, &rp.authorize_url(&params)).await;
    let claims = id_claims(&rp, &code_after_sign_in(&rp, &browser, landing, "grace").await).await;
    assert!(claims["sub"].is_string(), "{claims}");
}

async fn unknown_scopes_are_ignored(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let params = rp.request("phone unknown_scope openid https://example.com/api.read email", "s");
    let code = rp.code(&Browser::new(), &params, "ada").await;
    let tokens = token_ok(rp.redeem(&code).await).await;
    let scope = string(&tokens, "scope");
    for granted in scope.split(' ') {
        assert!(["openid", "email"].contains(&granted), "only known, requested scopes are granted: {scope}");
    }
    assert!(scope.split(' ').any(|granted| granted == "email"), "{scope}");
    assert_eq!(jwt(string(&tokens, "id_token"), 1)["email"], "ada@example.com");
}

async fn claims_parameter_with_an_essential_name_succeeds(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let claims = r#"{"id_token":{"name":{"essential":true}},"userinfo":{"name":{"essential":true}}}"#;
    let params = with(rp.request("openid profile", "s"), &[("claims", claims)]);
    let code = rp.code(&Browser::new(), &params, "ada").await;
    let tokens = token_ok(rp.redeem(&code).await).await;
    assert_eq!(jwt(string(&tokens, "id_token"), 1)["name"], "Test User");
    let response = crate::relying_party::http()
        .get(rp.endpoint("userinfo_endpoint"))
        .bearer_auth(string(&tokens, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn codes_are_long_random_and_distinct(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let mut codes = vec![rp.code(&browser, &rp.request("openid", "s"), "ada").await];
    let silent = with(rp.request("openid", "s"), &[("prompt", "none")]);
    for _ in 0..4 {
        codes.push(rp.silent_code(&browser, &silent).await);
    }
    for code in &codes {
        assert!(code.len() >= 22, "at least 128 bits of base64url: {code:?}");
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{code:?}");
        let mut distinct: Vec<char> = code.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 16, "a random code uses many symbols: {code:?}");
    }
    let count = codes.len();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), count, "every code is new");
}

/// The marker Latch adds to a request it sends back after a demanded
/// sign-in must not let a request claim that sign-in happened: anyone who
/// can edit the authorization URL (an attacker at an unattended, signed-in
/// browser) would skip the password that prompt=login or max_age demand.
async fn a_request_cannot_claim_its_own_reauthentication(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    rp.code(&browser, &rp.request("openid", "one"), "ada").await;
    app.clock.advance(2);

    for demand in [("prompt", "login"), ("max_age", "1")] {
        let params = with(rp.request("openid", "step-up"), &[demand, ("latch_reauth", "0")]);
        let landing = open(&browser, &app.base, &rp.authorize_url(&params)).await;
        assert!(landing.is_login(), "{demand:?} with a forged marker must still ask for the password: {landing:?}");
    }
}

on_every_backend!(
    prompt_none_without_a_session_is_login_required,
    prompt_none_with_a_session_answers_without_a_page,
    prompt_login_asks_for_the_password_again,
    max_age_1_after_2_seconds_asks_for_the_password,
    max_age_10000_keeps_the_session,
    id_token_hint_with_prompt_none_answers_silently,
    id_token_hint_of_another_user_is_not_answered_silently,
    login_hint_prefills_the_username,
    unknown_scopes_are_ignored,
    claims_parameter_with_an_essential_name_succeeds,
    codes_are_long_random_and_distinct,
    a_request_cannot_claim_its_own_reauthentication,
);
