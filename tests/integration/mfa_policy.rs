//! Strong sign-in policy (issue 14): apps that require a second factor
//! (`--require-mfa`, or the deployment's `require_mfa`), requests that ask
//! for one (`acr_values`), and forward-auth apps. A person signed in with a
//! password alone is asked for the second factor alone (step-up, no second
//! password prompt); one with no factor is sent to set one up at
//! `/account/security` and back, or refused when enrolment is closed. ID
//! tokens carry `amr` and `acr`; discovery lists the `acr` values.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{
    Backend, Browser, Options, PASSWORD, TestApp, absolute, alert_text, hidden_input, jwt_part, location, query_param,
    token_ok, unescape_html,
};
use crate::forward_auth::{PAGE_HEADERS, header_map, page_browser};
use crate::mfa::{enrol_totp, totp_code};
use crate::on_every_backend;
use crate::relying_party::{Rp, server};

const ACR_MFA: &str = "urn:latch:acr:mfa";
const ACR_PASSWORD: &str = "urn:latch:acr:password";

/// Signs `browser` in at `/login` with the password (ada holds no factor yet).
async fn password_session(app: &TestApp, browser: &Browser) {
    let signed_in = browser.sign_in(&app.base, "ada", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "signed in with the password alone");
}

/// The page an authorization request shows a signed-in browser: it must be
/// the second-factor step alone, no password field.
async fn step_up_page(browser: &Browser, url: &str) -> String {
    let response = browser.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a page, not a redirect: {:?}", location(&response));
    let html = response.text().await.unwrap();
    assert_eq!(hidden_input(&html, "step").as_deref(), Some("second_factor"), "{html}");
    assert!(!html.contains("type=\"password\""), "no second password prompt: {html}");
    html
}

async fn post_code(browser: &Browser, base: &str, html: &str, code: &str) -> reqwest::Response {
    let mut form: Vec<(String, String)> = ["csrf_token", "next", "step"]
        .into_iter()
        .map(|name| (name.to_owned(), hidden_input(html, name).unwrap()))
        .collect();
    form.push(("code".into(), code.into()));
    browser.client.post(format!("{base}/login")).form(&form).send().await.unwrap()
}

/// The ID token claims of the code the app gets after `response`.
async fn id_token_after(browser: &Browser, rp: &Rp, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = browser.visit(&rp.base, &absolute(&rp.base, &location(&response).unwrap())).await;
    let callback = rp.callback(&location(&back).expect("on to the app"));
    let tokens = token_ok(rp.redeem(&query_param(&callback, "code").expect("code")).await).await;
    jwt_part(tokens["id_token"].as_str().unwrap(), 1)
}

/// A password session opening an app that requires a second factor is asked
/// for the code alone; then the app gets `amr` `pwd otp mfa`, `acr` MFA, and
/// the session (same `sid`) now passes the requirement silently.
async fn step_up_on_a_require_mfa_app_without_a_second_password(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let plain = Rp::register(&app, "plain", &[]).await;
    let secure = Rp::register(&app, "secure", &["--require-mfa"]).await;
    let browser = Browser::new();
    password_session(&app, &browser).await;
    let secret = enrol_totp(&app, "ada").await;
    let before = token_ok(plain.redeem(&plain.silent_code(&browser, &plain.request("openid", "p")).await).await).await;
    let before = jwt_part(before["id_token"].as_str().unwrap(), 1);
    assert_eq!((before["amr"].clone(), before["acr"].as_str()), (serde_json::json!(["pwd"]), Some(ACR_PASSWORD)));

    // Holding a factor, a password session must prove it before the
    // security page shows (or changes) anything.
    step_up_page(&browser, &app.url("/account/security")).await;
    let html = step_up_page(&browser, &secure.authorize_url(&secure.request("openid", "s"))).await;
    let claims = id_token_after(
        &browser,
        &secure,
        post_code(&browser, &app.base, &html, &totp_code(&secret, app.clock.now())).await,
    )
    .await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["acr"], ACR_MFA);
    assert_eq!(claims["sid"], before["sid"], "the same session, continued");
    secure.silent_code(&browser, &secure.request("openid", "again")).await;
    let updated = app.admin(&["app", "show", "secure", "--json"]).await;
    assert!(updated.contains("\"require_mfa\": true"), "{updated}");
}

/// `acr_values` naming the MFA class is honoured like an app's
/// requirement; with `prompt=none` it is `interaction_required`; discovery
/// lists both classes.
async fn acr_values_ask_for_a_second_factor(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let discovery = &rp.discovery;
    assert_eq!(discovery["acr_values_supported"], serde_json::json!([ACR_PASSWORD, ACR_MFA]));
    assert!(discovery["claims_supported"].as_array().unwrap().contains(&"acr".into()));
    let browser = Browser::new();
    password_session(&app, &browser).await;
    let secret = enrol_totp(&app, "ada").await;
    let mut silent = rp.request("openid", "n");
    silent.extend([("acr_values".into(), ACR_MFA.into()), ("prompt".into(), "none".into())]);
    rp.assert_error(&rp.authorize_once(&browser, &silent).await, "interaction_required", "n");
    let mut request = rp.request("openid", "a");
    request.push(("acr_values".into(), format!("{ACR_PASSWORD} {ACR_MFA}")));
    let html = step_up_page(&browser, &rp.authorize_url(&request)).await;
    let claims = id_token_after(
        &browser,
        &rp,
        post_code(&browser, &app.base, &html, &totp_code(&secret, app.clock.now())).await,
    )
    .await;
    assert_eq!(claims["acr"], ACR_MFA);
}

/// No factor and open enrolment (the default): to `/account/security`,
/// set up the app there (QR code, key, confirm), recovery codes shown
/// once, then back to the app, signed in with two factors.
async fn no_factor_is_sent_to_enrol_and_back(backend: Backend) {
    let options = Options { require_mfa: Some("true"), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, options).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let rp = Rp::register(&app, "grafana", &[]).await;
    let optional = Rp::register(&app, "wiki", &["--require-mfa=false"]).await;
    let browser = Browser::new();
    password_session(&app, &browser).await;
    optional.silent_code(&browser, &optional.request("openid", "w")).await;

    let response = browser.client.get(rp.authorize_url(&rp.request("openid", "g"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let enrol = location(&response).unwrap();
    assert!(enrol.starts_with("/account/security?next=%2Fapplication%2Fo%2Fauthorize%2F"), "{enrol}");
    let page = browser.client.get(app.url(&enrol)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("A second factor is required by: grafana."), "{page}");
    let form = |html: &str, action: &str, code: Option<&str>| {
        let mut form = vec![
            ("csrf_token".to_owned(), hidden_input(html, "csrf_token").unwrap()),
            ("next".to_owned(), hidden_input(html, "next").unwrap()),
            ("action".to_owned(), action.to_owned()),
        ];
        form.extend(code.map(|code| ("code".to_owned(), code.to_owned())));
        form
    };
    let setup = browser.client.post(app.url("/account/security")).form(&form(&page, "totp_begin", None)).send();
    let setup = setup.await.unwrap().text().await.unwrap();
    assert!(setup.contains("<svg") && setup.contains("</svg>"), "a QR code, as SVG: {setup}");
    let secret = setup.split("Key: <code>").nth(1).and_then(|rest| rest.split('<').next()).expect("the key").to_owned();
    let wrong = browser.client.post(app.url("/account/security")).form(&form(&setup, "totp_confirm", Some("000000")));
    let wrong = wrong.send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(alert_text(&wrong.text().await.unwrap()).unwrap().contains("not right"));
    let code = totp_code(&secret, app.clock.now());
    let done = browser.client.post(app.url("/account/security")).form(&form(&setup, "totp_confirm", Some(&code)));
    let done = done.send().await.unwrap().text().await.unwrap();
    assert_eq!(done.matches("<li><code>").count(), 10, "ten recovery codes, shown once: {done}");
    let listed: Value = serde_json::from_str(&app.admin(&["user", "mfa", "list", "ada", "--json"]).await).unwrap();
    assert_eq!(listed[0]["kind"], "totp");
    let onward = done.split("<a href=\"").last().and_then(|rest| rest.split('"').next()).expect("a Continue link");
    let back = browser.client.get(app.url(&unescape_html(onward))).send().await.unwrap();
    let callback = rp.callback(&location(&back).expect("straight on to the app"));
    let tokens = token_ok(rp.redeem(&query_param(&callback, "code").unwrap()).await).await;
    let claims = jwt_part(tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(
        (claims["amr"].clone(), claims["acr"].as_str()),
        (serde_json::json!(["pwd", "otp", "mfa"]), Some(ACR_MFA))
    );

    // Removing the only factor while grafana requires one warns first.
    let page = browser.client.get(app.url("/account/security")).send().await.unwrap().text().await.unwrap();
    let warning = alert_text(&page).expect("a warning");
    assert!(warning.contains("only second factor") && warning.contains("grafana"), "{warning}");
    let removed = browser.client.post(app.url("/account/security")).form(&form(&page, "totp_remove", None));
    let removed = removed.send().await.unwrap().text().await.unwrap();
    assert!(removed.contains("The authenticator app is removed."), "{removed}");
    let events = app.admin(&["events", "--user", "ada", "--json"]).await;
    assert!(events.contains("\"totp_removed\"") && events.contains("\"self:ada\""), "{events}");
    app.admin(&["user", "mfa", "totp", "ada"]).await;

    // Holding a factor now, the next sign-in asks for it after the password.
    let response = Browser::new().sign_in(&app.base, "ada", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK, "the code is asked after the password");
    assert_eq!(hidden_input(&response.text().await.unwrap(), "step").as_deref(), Some("second_factor"));
}

/// Closed enrolment: no factor, a clear refusal instead of a redirect.
async fn closed_enrolment_refuses_with_a_clear_page(backend: Backend) {
    let options = Options { mfa_enrolment: Some("closed"), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, options).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let rp = Rp::register(&app, "grafana", &["--require-mfa"]).await;
    let browser = Browser::new();
    password_session(&app, &browser).await;
    let response = browser.client.get(rp.authorize_url(&rp.request("openid", "g"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(location(&response), None);
    let message = alert_text(&response.text().await.unwrap()).expect("a message");
    assert!(message.contains("grafana requires a second factor") && message.contains("administrator"), "{message}");
}

/// Forward auth: a cookie from a password session stops admitting once the
/// app requires a second factor; the browser is sent through sign-in, where
/// `sso` asks for the code alone, and is then admitted.
async fn forward_auth_honours_require_mfa(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    app.admin(&["app", "add", "kuma", "--name", "Kuma", "--proxy", "--external-url", "https://kuma.example.com"]).await;
    let browser = page_browser();
    password_session(&app, &browser).await;
    let check = || {
        browser
            .client
            .get(app.url("/outpost.goauthentik.io/auth/traefik"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "kuma.example.com")
            .header("X-Forwarded-Uri", "/dash")
    };
    let target = "https://kuma.example.com/dash";
    let signed_in = crate::forward_auth::sign_in_directly(&app, &browser, target).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(check().send().await.unwrap().status(), StatusCode::OK, "no requirement yet");

    app.admin(&["app", "update", "kuma", "--require-mfa"]).await;
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", "kuma", "--json"]).await).unwrap();
    assert_eq!(shown["require_mfa"], true, "{shown}");
    let secret = enrol_totp(&app, "ada").await;
    let refused = check().send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FOUND, "sent to sign in again");
    let start = location(&refused).unwrap().replacen("https://kuma.example.com", &app.base, 1);
    let response = browser.client.get(&start).headers(header_map(&PAGE_HEADERS)).send().await.unwrap();
    let sso = location(&response).unwrap();
    let html = step_up_page(&browser, &sso).await;
    let proved = post_code(&browser, &app.base, &html, &totp_code(&secret, app.clock.now())).await;
    assert_eq!(proved.status(), StatusCode::SEE_OTHER);
    let back = browser.client.get(absolute(&app.base, &location(&proved).unwrap())).send().await.unwrap();
    let callback = location(&back).unwrap();
    assert!(callback.starts_with("https://kuma.example.com/outpost.goauthentik.io/callback?code="), "{callback}");
    let landed = browser.client.get(callback.replacen("https://kuma.example.com", &app.base, 1)).send().await.unwrap();
    assert_eq!(location(&landed).as_deref(), Some(target));
    let admitted = check().send().await.unwrap();
    assert_eq!(admitted.status(), StatusCode::OK);
    assert_eq!(admitted.headers()["remote-user"], "ada");
}

/// The device flow: approving a device for an app that requires a second
/// factor asks for it first, and an approval posted without it is refused.
async fn device_approval_asks_for_the_second_factor(backend: Backend) {
    use crate::device_flow::{answer, enter, poll, signed_in, start};
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code", "--require-mfa"]).await;
    let browser = signed_in(&app, "ada").await;
    let secret = enrol_totp(&app, "ada").await;
    let started = start(&rp, "openid").await;
    let (user_code, device_code) = (started["user_code"].as_str().unwrap(), started["device_code"].as_str().unwrap());
    let (status, html) = enter(&browser, &app, user_code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden_input(&html, "step").as_deref(), Some("second_factor"), "{html}");
    let csrf = hidden_input(&html, "csrf_token").unwrap();
    let forged = [("csrf_token", csrf.as_str()), ("user_code", user_code), ("decision", "approve")];
    let forged = browser.client.post(app.url("/device")).form(&forged).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no approval without the second factor");

    let proved = post_code(&browser, &app.base, &html, &totp_code(&secret, app.clock.now())).await;
    assert_eq!(proved.status(), StatusCode::SEE_OTHER);
    assert!(location(&proved).unwrap().starts_with("/device?user_code="));
    let (status, html) = enter(&browser, &app, user_code).await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = answer(&browser, &app, &html, "approve").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let tokens = token_ok(poll(&rp, device_code).await).await;
    assert_eq!(jwt_part(tokens["id_token"].as_str().unwrap(), 1)["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

/// Refresh tokens from a password-only sign-in stop working once the app
/// requires a second factor; those from a two-factor sign-in go on.
async fn refresh_tokens_follow_the_requirement(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let password_only = rp.tokens(&Browser::new(), "openid offline_access", "ada").await;
    let secret = enrol_totp(&app, "ada").await;
    let browser = Browser::new();
    let url = rp.authorize_url(&rp.request("openid offline_access", "t"));
    let page = browser.visit(&app.base, &url).await.text().await.unwrap();
    let html = browser.submit_login(&app.base, "", &page, "ada", PASSWORD).await.text().await.unwrap();
    let proved = post_code(&browser, &app.base, &html, &totp_code(&secret, app.clock.now())).await;
    let back = browser.visit(&app.base, &absolute(&app.base, &location(&proved).unwrap())).await;
    let code = query_param(&rp.callback(&location(&back).unwrap()), "code").unwrap();
    let two_factor = token_ok(rp.redeem(&code).await).await;

    app.admin(&["app", "update", "web", "--require-mfa"]).await;
    let refused = rp.refresh(password_only["refresh_token"].as_str().unwrap()).await;
    crate::common::token_error(refused, StatusCode::BAD_REQUEST, "invalid_grant").await;
    token_ok(rp.refresh(two_factor["refresh_token"].as_str().unwrap()).await).await;
}

on_every_backend!(
    refresh_tokens_follow_the_requirement,
    device_approval_asks_for_the_second_factor,
    step_up_on_a_require_mfa_app_without_a_second_password,
    acr_values_ask_for_a_second_factor,
    no_factor_is_sent_to_enrol_and_back,
    closed_enrolment_refuses_with_a_clear_page,
    forward_auth_honours_require_mfa,
);
