//! Strong sign-in (issue 14), TOTP and recovery codes: after the password a
//! person with a second factor is asked for a code on a page of its own;
//! ID tokens then say so (`amr` `pwd otp mfa`, verified by the
//! `openidconnect` crate). A code is accepted once, wrong codes are
//! throttled per person (and the password does not reset the count), and
//! the state of a sign-in lives in the store, so another instance finishes
//! it. The clock is moved to reach the next TOTP window, never slept.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, TokenResponse};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    Backend, Browser, Options, PASSWORD, TestApp, absolute, alert_text, hidden_input, http, location, query_param,
};
use crate::forward_auth::second_instance;
use crate::on_every_backend;
use crate::relying_party::{Client, Rp, server};

/// `latch user mfa totp <username> --json`: the base32 secret of the URI.
pub async fn enrol_totp(app: &TestApp, username: &str) -> String {
    let printed: Value = serde_json::from_str(&app.admin(&["user", "mfa", "totp", username, "--json"]).await)
        .expect("user mfa totp --json prints JSON");
    let uri = url::Url::parse(printed["otpauth_uri"].as_str().expect("otpauth_uri")).expect("an otpauth URI");
    assert_eq!((uri.scheme(), uri.host_str()), ("otpauth", Some("totp")), "{uri}");
    assert_eq!(uri.path(), format!("/Latch:{username}"), "{uri}");
    for (name, value) in [("issuer", "Latch"), ("algorithm", "SHA1"), ("digits", "6"), ("period", "30")] {
        assert_eq!(query_param(&uri, name).as_deref(), Some(value), "{uri}");
    }
    query_param(&uri, "secret").expect("secret")
}

/// The code an authenticator app shows for `secret` at `now` (RFC 6238).
pub fn totp_code(secret: &str, now: i64) -> String {
    latch::crypto::totp::code_at_step(secret, latch::crypto::totp::step_at(now)).expect("a base32 secret")
}

/// Posts the sign-in form of the page `url` leads to (following Latch's
/// redirects) with the username and password: the answer to that post.
async fn password_step(browser: &Browser, base: &str, url: &str, username: &str) -> reqwest::Response {
    let page = browser.visit(base, url).await;
    assert_eq!(page.status(), StatusCode::OK, "Latch shows the sign-in form");
    let html = page.text().await.unwrap();
    browser.submit_login(base, "", &html, username, PASSWORD).await
}

/// The second-factor page (200, step `second_factor`, a `code` field) of
/// `response`.
async fn second_factor_page(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK, "the second-factor step is asked");
    let html = response.text().await.unwrap();
    assert_eq!(hidden_input(&html, "step").as_deref(), Some("second_factor"), "{html}");
    assert!(html.contains("name=\"code\""), "one field named code: {html}");
    assert!(!html.contains("<script"), "no script needed: {html}");
    html
}

/// Posts `code` on the second-factor page `html`, to `base`.
async fn post_code(browser: &Browser, base: &str, html: &str, code: &str) -> reqwest::Response {
    let mut form: Vec<(String, String)> = ["csrf_token", "next", "step"]
        .into_iter()
        .map(|name| (name.to_owned(), hidden_input(html, name).unwrap_or_else(|| panic!("{name} in {html}"))))
        .collect();
    form.push(("code".into(), code.into()));
    browser.client.post(format!("{base}/login")).form(&form).send().await.expect("code step")
}

/// A refused code: 401, the same step again, and its message.
async fn refused_code(browser: &Browser, base: &str, html: &str, code: &str) -> String {
    let response = post_code(browser, base, html, code).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{code} must be refused");
    let page = response.text().await.unwrap();
    assert_eq!(hidden_input(&page, "step").as_deref(), Some("second_factor"), "the step is asked again");
    alert_text(&page).expect("a message")
}

/// The `amr` values of an ID token, verified by `openidconnect`.
fn amr_of(client: &Client, tokens: &openidconnect::core::CoreTokenResponse, nonce: &Nonce) -> Vec<String> {
    let claims = tokens.id_token().expect("ID token").claims(&client.id_token_verifier(), nonce).unwrap();
    let methods = claims.auth_method_refs().expect("amr");
    methods.iter().map(|method| method.as_str().to_owned()).collect()
}

/// Follows a successful code step to the app: the authorization code.
async fn code_after(browser: &Browser, rp: &Rp, response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    let back = browser.visit(&rp.base, &absolute(&rp.base, &location(&response).expect("Location"))).await;
    let callback = rp.callback(&location(&back).expect("a redirect to the app"));
    query_param(&callback, "code").expect("code")
}

/// Password, then the TOTP code, then tokens: `amr` is `pwd otp mfa`.
async fn password_then_totp_gives_tokens_with_mfa(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let secret = enrol_totp(&app, "ada").await;
    let client = rp.client().await;
    let (url, _, nonce) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let browser = Browser::new();
    let answered = password_step(&browser, &app.base, url.as_str(), "ada").await;
    assert!(
        !crate::common::set_cookies(&answered).iter().any(|cookie| cookie.starts_with("latch_session=")),
        "the password alone signs nobody in"
    );
    let html = second_factor_page(answered).await;
    assert!(html.contains("Signing in as <strong>ada</strong>"), "{html}");
    let code =
        code_after(&browser, &rp, post_code(&browser, &app.base, &html, &totp_code(&secret, app.clock.now())).await)
            .await;
    let tokens = client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http()).await.unwrap();
    assert_eq!(amr_of(&client, &tokens, &nonce), ["pwd", "otp", "mfa"]);
    let metrics = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"latch_second_factor_checks_total{method="otp",outcome="success"} 1"#), "{metrics}");

    // grace has no second factor: the password alone, as before.
    let (url, _, nonce) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let other = Browser::new();
    let code = code_after(&other, &rp, password_step(&other, &app.base, url.as_str(), "grace").await).await;
    let tokens = client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http()).await.unwrap();
    assert_eq!(amr_of(&client, &tokens, &nonce), ["pwd"]);
}

/// A code is accepted once: the same code in another browser, within its
/// window, is refused; the next window's code works.
async fn a_code_is_accepted_once(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let secret = enrol_totp(&app, "ada").await;
    let (first, second) = (Browser::new(), Browser::new());
    let first_page = second_factor_page(password_step(&first, &app.base, &app.url("/login"), "ada").await).await;
    let second_page = second_factor_page(password_step(&second, &app.base, &app.url("/login"), "ada").await).await;
    let code = totp_code(&secret, app.clock.now());
    assert_eq!(post_code(&first, &app.base, &first_page, &code).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(refused_code(&second, &app.base, &second_page, &code).await, "Invalid or already used code.");
    app.clock.advance(latch::crypto::totp::STEP_SECONDS);
    let next = totp_code(&secret, app.clock.now());
    assert_ne!(next, code);
    assert_eq!(post_code(&second, &app.base, &second_page, &next).await.status(), StatusCode::SEE_OTHER, "next window");
}

/// Wrong codes count per person: past the limit even the right code is
/// refused, and signing in with the password again does not reset the
/// count; after the lockout the right code works.
async fn wrong_codes_are_throttled_and_the_password_does_not_reset_them(backend: Backend) {
    let options = Options { login_max_failures: Some("3"), login_lockout: Some("120s"), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, options).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let secret = enrol_totp(&app, "ada").await;
    let browser = Browser::new();
    let page = second_factor_page(password_step(&browser, &app.base, &app.url("/login"), "ada").await).await;
    let right = totp_code(&secret, app.clock.now());
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    for _ in 0..3 {
        refused_code(&browser, &app.base, &page, &wrong).await;
    }
    let message = refused_code(&browser, &app.base, &page, &right).await;
    assert_eq!(message, "Invalid or already used code.", "locked, told as a wrong code");
    // The password again (it is right, and it succeeds): still locked.
    let again = Browser::new();
    let page = second_factor_page(password_step(&again, &app.base, &app.url("/login"), "ada").await).await;
    refused_code(&again, &app.base, &page, &right).await;
    app.clock.advance(121);
    let page = second_factor_page(password_step(&again, &app.base, &app.url("/login"), "ada").await).await;
    let code = totp_code(&secret, app.clock.now());
    assert_eq!(post_code(&again, &app.base, &page, &code).await.status(), StatusCode::SEE_OTHER, "after the lockout");

    // Locked again, `latch user unlock` lifts it.
    app.clock.advance(latch::crypto::totp::STEP_SECONDS);
    let page = second_factor_page(password_step(&again, &app.base, &app.url("/login"), "ada").await).await;
    let right = totp_code(&secret, app.clock.now());
    for _ in 0..3 {
        refused_code(&again, &app.base, &page, &wrong).await;
    }
    refused_code(&again, &app.base, &page, &right).await;
    app.admin(&["user", "unlock", "ada"]).await;
    assert_eq!(post_code(&again, &app.base, &page, &right).await.status(), StatusCode::SEE_OTHER, "unlocked");
}

/// Recovery codes: ten, shown once; one signs in once, the page says how
/// many remain, its use is audited; a new set replaces the old one.
async fn recovery_codes_sign_in_once_and_tell_what_remains(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    enrol_totp(&app, "ada").await;
    let printed: Value =
        serde_json::from_str(&app.admin(&["user", "mfa", "recovery-codes", "ada", "--json"]).await).unwrap();
    let codes: Vec<String> =
        printed["codes"].as_array().unwrap().iter().map(|code| code.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);

    let browser = Browser::new();
    let url = rp.authorize_url(&rp.request("openid", "s1"));
    let page = second_factor_page(password_step(&browser, &app.base, &url, "ada").await).await;
    let used = post_code(&browser, &app.base, &page, &codes[3].to_uppercase()).await;
    assert_eq!(used.status(), StatusCode::OK, "a page tells how many remain");
    let html = used.text().await.unwrap();
    assert!(html.contains("<strong>9</strong> recovery codes left"), "{html}");
    let continue_to = html.split("<a href=\"").nth(2).and_then(|rest| rest.split('"').next()).expect("a link on");
    let back = browser.visit(&app.base, &absolute(&app.base, &crate::common::unescape_html(continue_to))).await;
    let callback = rp.callback(&location(&back).expect("on to the app"));
    let tokens = crate::common::token_ok(rp.redeem(&query_param(&callback, "code").unwrap()).await).await;
    let id_token = crate::common::jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(id_token["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    let other = Browser::new();
    let page = second_factor_page(password_step(&other, &app.base, &app.url("/login"), "ada").await).await;
    refused_code(&other, &app.base, &page, &codes[3]).await;
    let events: Value = serde_json::from_str(&app.admin(&["events", "--user", "ada", "--json"]).await).unwrap();
    let kinds: Vec<&str> = events.as_array().unwrap().iter().filter_map(|event| event["kind"].as_str()).collect();
    for kind in ["recovery_code_used", "second_factor_failure", "second_factor_success", "totp_enrolled"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    app.admin(&["user", "mfa", "recovery-codes", "ada"]).await;
    let page = second_factor_page(password_step(&other, &app.base, &app.url("/login"), "ada").await).await;
    refused_code(&other, &app.base, &page, &codes[4]).await;
}

/// The admin commands: list (no secret), enrol once unless `--replace`,
/// reset (audited), after which the password alone signs in again.
async fn admin_commands_list_enrol_and_reset(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let listed: Value = serde_json::from_str(&app.admin(&["user", "mfa", "list", "ada", "--json"]).await).unwrap();
    assert_eq!(listed, serde_json::json!([]));
    let secret = enrol_totp(&app, "ada").await;
    let refused = app.latch(&["user", "mfa", "totp", "ada"], None).await;
    assert!(!refused.status.success(), "a second authenticator needs --replace");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already exists"), "{refused:?}");
    let output = app.admin(&["user", "mfa", "list", "ada", "--json"]).await;
    assert!(!output.contains(&secret), "never a secret: {output}");
    let listed: Value = serde_json::from_str(&output).unwrap();
    let factor = &listed.as_array().expect("a list")[0];
    assert_eq!((factor["kind"].as_str(), factor["last_used"].is_null()), (Some("totp"), true), "{listed}");
    assert!(factor["name"].is_string() && factor["created"].is_i64(), "{listed}");

    let browser = Browser::new();
    let page = second_factor_page(password_step(&browser, &app.base, &app.url("/login"), "ada").await).await;
    assert_eq!(
        post_code(&browser, &app.base, &page, &totp_code(&secret, app.clock.now())).await.status(),
        StatusCode::SEE_OTHER
    );
    let listed: Value = serde_json::from_str(&app.admin(&["user", "mfa", "list", "ada", "--json"]).await).unwrap();
    assert!(listed[0]["last_used"].is_i64(), "{listed}");

    let replaced = app.admin(&["user", "mfa", "totp", "ada", "--replace", "--json"]).await;
    assert!(!replaced.contains(&secret), "a new secret");
    app.admin(&["user", "mfa", "reset", "ada"]).await;
    let listed: Value = serde_json::from_str(&app.admin(&["user", "mfa", "list", "ada", "--json"]).await).unwrap();
    assert_eq!(listed, serde_json::json!([]));
    let events = app.admin(&["events", "--user", "ada", "--json"]).await;
    assert!(events.contains("\"factors_reset\""), "{events}");
    let signed_in = password_step(&Browser::new(), &app.base, &app.url("/login"), "ada").await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "the password alone again");
    let missing = app.latch(&["user", "mfa", "list", "nobody"], None).await;
    assert!(!missing.status.success() && String::from_utf8_lossy(&missing.stderr).contains("no user named"));
}

/// A sign-in whose password step ran on one instance finishes its code
/// step on another: the pending sign-in and the used step live in the store.
async fn a_sign_in_started_on_one_instance_finishes_on_another(backend: Backend) {
    let Some(a) = server(backend).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (b, server_b) = second_instance(&a, dir.path()).await;
    let secret = enrol_totp(&a, "ada").await;
    let browser = Browser::new();
    let page = second_factor_page(password_step(&browser, &a.base, &a.url("/login"), "ada").await).await;
    let code = totp_code(&secret, a.clock.now());
    assert_eq!(post_code(&browser, &b, &page, &code).await.status(), StatusCode::SEE_OTHER, "finished on B");
    // The used step is known to both: the same code is refused on A.
    let again = Browser::new();
    let page = second_factor_page(password_step(&again, &b, &format!("{b}/login"), "ada").await).await;
    refused_code(&again, &a.base, &page, &code).await;

    // One code posted to both instances at once: exactly one accepts it.
    // (The next step's code, which the ±1 step window accepts now.)
    let third = Browser::new();
    let third_page = second_factor_page(password_step(&third, &a.base, &a.url("/login"), "ada").await).await;
    let next = totp_code(&secret, a.clock.now() + latch::crypto::totp::STEP_SECONDS);
    let (on_a, on_b) =
        tokio::join!(post_code(&again, &a.base, &page, &next), post_code(&third, &b, &third_page, &next));
    let mut statuses = [on_a.status(), on_b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::UNAUTHORIZED], "one winner");
    server_b.abort();
}

on_every_backend!(
    password_then_totp_gives_tokens_with_mfa,
    a_code_is_accepted_once,
    wrong_codes_are_throttled_and_the_password_does_not_reset_them,
    recovery_codes_sign_in_once_and_tell_what_remains,
    admin_commands_list_enrol_and_reset,
    a_sign_in_started_on_one_instance_finishes_on_another,
);
