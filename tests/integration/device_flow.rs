//! The device authorization grant (RFC 8628): a device asks for codes at
//! `/application/o/device/`, a signed-in person types the user code at
//! `/device` and answers, and the device polls the token endpoint. The
//! happy path is driven by the `openidconnect` crate's device flow, with
//! the server's clock moved where the client would sleep.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, Nonce, OAuth2TokenResponse,
    ProviderMetadata, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backchannel_logout::{Receiver, verify_logout_token};
use crate::common::{Backend, Browser, TestApp, alert_text, hidden_input, poll_until};
use crate::on_every_backend;
use crate::relying_party::{
    PASSWORD, Rp, confirm_sign_out, http, jwt, server, string, token_error, token_ok, userinfo_status,
};

pub const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: DeviceAuthorizationUrl,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type DeviceMetadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Asks for codes as `rp` (client_secret_basic): the 200 JSON answer.
pub async fn start(rp: &Rp, scope: &str) -> Value {
    let response = device_request(rp, &[("scope", scope)]).await;
    let cache_control = response.headers().get("cache-control").cloned();
    let status = response.status();
    let body: Value = response.json().await.expect("device authorization JSON");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache_control.as_ref().and_then(|value| value.to_str().ok()), Some("no-store"));
    body
}

async fn device_request(rp: &Rp, form: &[(&str, &str)]) -> reqwest::Response {
    let secret = rp.credentials.client_secret.as_deref().expect("a confidential app");
    http()
        .post(rp.endpoint("device_authorization_endpoint"))
        .basic_auth(rp.client_id(), Some(secret))
        .form(form)
        .send()
        .await
        .expect("device authorization request")
}

/// One poll of the token endpoint with `device_code`.
pub async fn poll(rp: &Rp, device_code: &str) -> reqwest::Response {
    rp.token_request(&[("grant_type", GRANT), ("device_code", device_code)]).await
}

/// A browser signed in to Latch as `username`.
pub async fn signed_in(app: &TestApp, username: &str) -> Browser {
    let browser = Browser::new();
    let response = browser.sign_in(&app.base, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in as {username}");
    browser
}

/// Opens `/device`, types `typed` into its form and posts it: the answer's
/// status and page.
pub async fn enter(browser: &Browser, app: &TestApp, typed: &str) -> (StatusCode, String) {
    let page = browser.client.get(app.url("/device")).send().await.expect("device page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("device page");
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token on the device page");
    let form = [("csrf_token", csrf.as_str()), ("user_code", typed)];
    let response = browser.client.post(app.url("/device")).form(&form).send().await.expect("post the code");
    (response.status(), response.text().await.expect("page"))
}

/// Answers the confirmation page `html` with `decision` (approve or deny).
pub async fn answer(browser: &Browser, app: &TestApp, html: &str, decision: &str) -> (StatusCode, String) {
    let csrf = hidden_input(html, "csrf_token").expect("csrf_token on the confirmation");
    let user_code = hidden_input(html, "user_code").expect("user_code on the confirmation");
    let form = [("csrf_token", csrf.as_str()), ("user_code", user_code.as_str()), ("decision", decision)];
    let response = browser.client.post(app.url("/device")).form(&form).send().await.expect("post the answer");
    (response.status(), response.text().await.expect("page"))
}

/// `username` signs in, types `user_code` and approves.
pub async fn approve(app: &TestApp, username: &str, user_code: &str) {
    let browser = signed_in(app, username).await;
    let (status, html) = enter(&browser, app, user_code).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let (status, html) = answer(&browser, app, &html, "approve").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Device connected"), "{html}");
}

async fn the_openidconnect_crate_runs_the_device_flow(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    let metadata = DeviceMetadata::discover_async(IssuerUrl::new(rp.issuer.clone()).unwrap(), &http())
        .await
        .expect("discovery with device_authorization_endpoint");
    let device_endpoint = metadata.additional_metadata().device_authorization_endpoint.clone();
    assert_eq!(device_endpoint.url().as_str(), app.url("/application/o/device/"));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(rp.client_id().to_owned()),
        rp.credentials.client_secret.clone().map(ClientSecret::new),
    )
    .set_device_authorization_url(device_endpoint);

    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(["openid", "profile", "offline_access"].map(|scope| Scope::new(scope.into())))
        .request_async(&http())
        .await
        .expect("device authorization");
    assert_eq!(details.verification_uri().as_str(), app.url("/device"));
    let user_code = details.user_code().secret().clone();
    let complete = details.verification_uri_complete().expect("verification_uri_complete").secret().clone();
    assert_eq!(complete, format!("{}?user_code={user_code}", app.url("/device")));
    assert_eq!(details.interval(), Duration::from_secs(5));
    assert_eq!(details.expires_in(), Duration::from_secs(600));
    assert!(
        user_code.len() == 9 && user_code.chars().all(|c| c == '-' || "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        "{user_code}"
    );

    // Where the client sleeps, the person approves (after the first poll)
    // and the server's clock moves on by the interval.
    let sleeps = AtomicUsize::new(0);
    let sleep = |interval: Duration| {
        let first = sleeps.fetch_add(1, Ordering::SeqCst) == 0;
        let (app, user_code) = (&app, &user_code);
        async move {
            if first {
                approve(app, "ada", user_code).await;
            }
            app.clock.advance(i64::try_from(interval.as_secs()).unwrap());
        }
    };
    let tokens = client
        .exchange_device_access_token(&details)
        .expect("token endpoint known")
        .request_async(&http(), sleep, None)
        .await
        .expect("device access token");
    assert_eq!(sleeps.load(Ordering::SeqCst), 1, "one authorization_pending, then tokens");

    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let claims = id_token.claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(())).expect("ID token verifies");
    assert_eq!(claims.preferred_username().map(|name| name.as_str()), Some("ada"));
    let raw = jwt(&id_token.to_string(), 1);
    let auth_time = raw["auth_time"].as_i64().expect("auth_time of the approving session");
    assert!(auth_time <= raw["iat"].as_i64().unwrap(), "{raw}");
    assert_eq!(raw["amr"], serde_json::json!(["pwd"]), "the approving sign-in's methods: {raw}");
    assert!(raw.get("nonce").is_none(), "{raw}");
    assert_eq!(userinfo_status(&rp, tokens.access_token().secret()).await, StatusCode::OK);

    // offline_access: a refresh token, which refreshes like any other.
    let refresh_token = tokens.refresh_token().expect("a refresh token for offline_access").secret().clone();
    let refreshed = token_ok(rp.refresh(&refresh_token).await).await;
    assert_eq!(jwt(string(&refreshed, "id_token"), 1)["auth_time"], auth_time);
}

async fn polls_before_an_answer_are_pending_slowed_down_then_expired(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code", "--device-code-ttl", "2m"]).await;
    let codes = start(&rp, "openid").await;
    assert_eq!(codes["expires_in"], 120, "the app's --device-code-ttl: {codes}");
    assert_eq!(codes["interval"], 5);
    let device_code = string(&codes, "device_code");

    token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "authorization_pending").await;
    // Sooner than 5 s: slow down, and the interval becomes 10 s.
    let slowed = token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "slow_down").await;
    assert!(string(&slowed, "error_description").contains("10 seconds"), "{slowed}");
    app.clock.advance(5);
    token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "slow_down").await;
    app.clock.advance(15);
    token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "authorization_pending").await;
    app.clock.advance(15);
    token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "authorization_pending").await;

    // Past its lifetime the code is still known: it has expired, and says so.
    app.clock.advance(120);
    token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "expired_token").await;
    app.clock.advance(60);
    token_error(poll(&rp, device_code).await, StatusCode::BAD_REQUEST, "expired_token").await;
    let (status, html) = enter(&signed_in(&app, "ada").await, &app, string(&codes, "user_code")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an expired code cannot be approved: {html}");

    // An approval does not stretch a code's life.
    let codes = start(&rp, "openid").await;
    approve(&app, "ada", string(&codes, "user_code")).await;
    app.clock.advance(121);
    token_error(poll(&rp, string(&codes, "device_code")).await, StatusCode::BAD_REQUEST, "expired_token").await;
}

async fn a_denial_is_access_denied(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    let codes = start(&rp, "openid profile").await;
    let browser = signed_in(&app, "ada").await;
    let (status, confirmation) = enter(&browser, &app, string(&codes, "user_code")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirmation.contains("Connect tv?"), "{confirmation}");
    assert!(confirmation.contains("data-scope=\"profile\""), "the scopes asked for are shown: {confirmation}");
    let (status, html) = answer(&browser, &app, &confirmation, "deny").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Device refused"), "{html}");
    for _ in 0..2 {
        token_error(poll(&rp, string(&codes, "device_code")).await, StatusCode::BAD_REQUEST, "access_denied").await;
        app.clock.advance(5);
    }
    // Answered once: the same form posted again finds nothing to answer.
    let (status, html) = answer(&browser, &app, &confirmation, "approve").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(alert_text(&html).is_some_and(|text| text.contains("No device is waiting")), "{html}");
    token_error(poll(&rp, string(&codes, "device_code")).await, StatusCode::BAD_REQUEST, "access_denied").await;
}

async fn the_access_rule_holds_at_approval_and_at_redemption(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    app.admin(&["group", "add", "watchers"]).await;
    app.admin(&["group", "add-member", "watchers", "ada"]).await;
    let rp = Rp::register(&app, "tv", &["--device-code", "--group", "watchers"]).await;

    // grace is not a watcher: no Approve button, and approving anyway is a denial.
    let codes = start(&rp, "openid").await;
    let browser = signed_in(&app, "grace").await;
    let (status, confirmation) = enter(&browser, &app, string(&codes, "user_code")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!confirmation.contains("value=\"approve\""), "{confirmation}");
    assert!(alert_text(&confirmation).is_some_and(|text| text.contains("not allowed")), "{confirmation}");
    let (status, html) = answer(&browser, &app, &confirmation, "approve").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    token_error(poll(&rp, string(&codes, "device_code")).await, StatusCode::BAD_REQUEST, "access_denied").await;

    // ada approves, then leaves the group before the device polls.
    let codes = start(&rp, "openid").await;
    approve(&app, "ada", string(&codes, "user_code")).await;
    app.admin(&["group", "remove-member", "watchers", "ada"]).await;
    let refused =
        token_error(poll(&rp, string(&codes, "device_code")).await, StatusCode::BAD_REQUEST, "access_denied").await;
    assert!(string(&refused, "error_description").contains("may not use this app"), "{refused}");
}

async fn apps_without_the_grant_and_bad_requests_get_oauth_errors(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let web = Rp::register(&app, "web", &[]).await;
    let refused = device_request(&web, &[("scope", "openid")]).await;
    let body = token_error(refused, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    assert!(string(&body, "error_description").contains("--device-code"), "{body}");
    token_error(poll(&web, "anything").await, StatusCode::BAD_REQUEST, "unauthorized_client").await;

    let tv = Rp::register(&app, "tv", &["--device-code"]).await;
    token_error(tv.token_request(&[("grant_type", GRANT)]).await, StatusCode::BAD_REQUEST, "invalid_request").await;
    token_error(poll(&tv, "no-such-code").await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Another client's device code is unknown to this one.
    app.admin(&["app", "update", "web", "--device-code"]).await;
    let codes = start(&tv, "openid").await;
    token_error(poll(&web, string(&codes, "device_code")).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Disabled again: refused again.
    app.admin(&["app", "update", "web", "--device-code", "false"]).await;
    token_error(device_request(&web, &[]).await, StatusCode::BAD_REQUEST, "unauthorized_client").await;

    let wrong_secret = http()
        .post(tv.endpoint("device_authorization_endpoint"))
        .basic_auth(tv.client_id(), Some("wrong"))
        .send()
        .await
        .unwrap();
    token_error(wrong_secret, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let get = http().get(tv.endpoint("device_authorization_endpoint")).send().await.unwrap();
    token_error(get, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;

    // A public client asks with its client_id alone.
    let public = app.add_app("cli", &[crate::common::CALLBACK], &["--public", "--device-code"]).await;
    let response = http()
        .post(app.url("/application/o/device/"))
        .form(&[("client_id", public.client_id.as_str()), ("scope", "openid")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn user_codes_ignore_case_and_dashes(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    let codes = start(&rp, "openid").await;
    let user_code = string(&codes, "user_code");
    let browser = signed_in(&app, "ada").await;
    let lower = user_code.to_lowercase();
    for typed in [lower.clone(), lower.replace('-', ""), format!(" {} ", lower.replace('-', " "))] {
        let (status, html) = enter(&browser, &app, &typed).await;
        assert_eq!(status, StatusCode::OK, "{typed:?}: {html}");
        assert_eq!(hidden_input(&html, "user_code").as_deref(), Some(user_code), "shown as issued");
    }
    let (status, html) = enter(&browser, &app, "hello").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(alert_text(&html).is_some_and(|text| text.contains("8 letters")), "{html}");

    approve(&app, "ada", &lower.replace('-', "")).await;
    let tokens = token_ok(poll(&rp, string(&codes, "device_code")).await).await;
    assert_eq!(jwt(string(&tokens, "id_token"), 1)["preferred_username"], Value::Null, "scope openid only");
    assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token: {tokens}");
}

async fn guessing_user_codes_is_throttled(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code", "--device-code-ttl", "1h"]).await;
    let codes = start(&rp, "openid").await;
    let user_code = string(&codes, "user_code");
    let browser = signed_in(&app, "ada").await;
    let wrong = if user_code == "BCDF-GHJK" { "BCDF-GHJL" } else { "BCDF-GHJK" };
    for guess in 0..10 {
        let (status, html) = enter(&browser, &app, wrong).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "guess {guess}: {html}");
    }
    // The limit is reached: even the right code is refused, for a while.
    let (status, html) = enter(&browser, &app, user_code).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
    assert!(alert_text(&html).is_some_and(|text| text.contains("Too many wrong codes")), "{html}");
    app.clock.advance(600);
    assert_eq!(enter(&browser, &app, user_code).await.0, StatusCode::TOO_MANY_REQUESTS);
    // Someone else at the same address is not locked out by ada's guesses.
    let (status, html) = enter(&signed_in(&app, "grace").await, &app, user_code).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    app.clock.advance(301);
    let (status, html) = enter(&browser, &app, user_code).await;
    assert_eq!(status, StatusCode::OK, "the lock ends: {html}");
}

/// The lock on guessing user codes is lifted by `latch user unlock`, as the
/// sign-in's is.
async fn unlocking_the_person_lifts_the_user_code_lock(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    let codes = start(&rp, "openid").await;
    let user_code = string(&codes, "user_code");
    let browser = signed_in(&app, "ada").await;
    let wrong = if user_code == "BCDF-GHJK" { "BCDF-GHJL" } else { "BCDF-GHJK" };
    for _ in 0..10 {
        enter(&browser, &app, wrong).await;
    }
    assert_eq!(enter(&browser, &app, user_code).await.0, StatusCode::TOO_MANY_REQUESTS);
    app.admin(&["user", "unlock", "ada"]).await;
    let (status, html) = enter(&browser, &app, user_code).await;
    assert_eq!(status, StatusCode::OK, "unlocked: {html}");
}

async fn a_device_code_redeems_once_and_a_replay_revokes(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    for round in 0..5 {
        let codes = start(&rp, "openid offline_access").await;
        approve(&app, "ada", string(&codes, "user_code")).await;
        let device_code = string(&codes, "device_code");
        let (first, second) = tokio::join!(poll(&rp, device_code), poll(&rp, device_code));
        let (winner, loser) = if first.status() == StatusCode::OK { (first, second) } else { (second, first) };
        let tokens = token_ok(winner).await;
        token_error(loser, StatusCode::BAD_REQUEST, "invalid_grant").await;
        // The replay revoked what the redemption issued.
        assert_eq!(
            userinfo_status(&rp, string(&tokens, "access_token")).await,
            StatusCode::UNAUTHORIZED,
            "round {round}"
        );
        token_error(rp.refresh(string(&tokens, "refresh_token")).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
}

/// The device's tokens hang on the approving session: signing out ends
/// them, and the app hears of it by back-channel logout, with the `sid` its
/// ID token named.
async fn signing_out_ends_what_the_device_got(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let logout_uri = receiver.url("/tv/logout");
    let rp = Rp::register(&app, "tv", &["--device-code", "--backchannel-logout-uri", &logout_uri]).await;
    let codes = start(&rp, "openid offline_access").await;
    let browser = signed_in(&app, "ada").await;
    let (_, confirmation) = enter(&browser, &app, string(&codes, "user_code")).await;
    assert_eq!(answer(&browser, &app, &confirmation, "approve").await.0, StatusCode::OK);
    let tokens = token_ok(poll(&rp, string(&codes, "device_code")).await).await;
    let access_token = string(&tokens, "access_token");
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::OK);
    let sid = jwt(string(&tokens, "id_token"), 1)["sid"].as_str().expect("the approving session's sid").to_owned();

    let end_session = rp.endpoint("end_session_endpoint");
    let page = browser.client.get(&end_session).send().await.unwrap();
    confirm_sign_out(&browser.client, &end_session, page).await;
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::UNAUTHORIZED, "the session's tokens end with it");
    token_error(rp.refresh(string(&tokens, "refresh_token")).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let delivered = receiver.wait_for("/tv/logout", 1).await;
    let claims = verify_logout_token(&rp, delivered[0].logout_token()).await;
    assert_eq!(claims["sid"], sid.as_str(), "{claims}");
}

async fn the_device_page_asks_to_sign_in_first(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    let codes = start(&rp, "openid").await;
    let browser = Browser::new();
    let response = browser.client.get(string(&codes, "verification_uri_complete")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login = crate::common::location(&response).expect("to the sign-in page");
    let next = url::Url::parse(&app.url(&login)).unwrap();
    let next = crate::common::query_param(&next, "next").expect("next");
    assert_eq!(next, format!("/device?user_code={}", string(&codes, "user_code")));
    let landed = crate::relying_party::open(&browser, &app.base, &app.url(&login)).await;
    let crate::relying_party::Landing::Login(html) = landed else { panic!("the sign-in page: {landed:?}") };
    match crate::relying_party::sign_in_on(&browser, &app.base, &html, "ada").await {
        crate::relying_party::Landing::Page(StatusCode::OK, html) => {
            assert!(hidden_input(&html, "csrf_token").is_some(), "{html}");
            assert!(html.contains(&format!("value=\"{}\"", string(&codes, "user_code"))), "prefilled: {html}");
        }
        other => panic!("back at /device with the code filled in: {other:?}"),
    }
}

/// Device answers name the app by slug in the event's `app` field, like
/// every other event, so `latch events --app <slug>` lists them.
async fn device_answers_are_audited_under_the_app(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    app.admin(&["group", "add", "watchers"]).await;
    app.admin(&["group", "add-member", "watchers", "ada"]).await;
    let rp = Rp::register(&app, "tv", &["--device-code", "--group", "watchers"]).await;
    approve(&app, "ada", string(&start(&rp, "openid").await, "user_code")).await;
    for (username, decision) in [("ada", "deny"), ("grace", "approve")] {
        let browser = signed_in(&app, username).await;
        let (_, confirmation) = enter(&browser, &app, string(&start(&rp, "openid").await, "user_code")).await;
        answer(&browser, &app, &confirmation, decision).await;
    }

    let kinds = ["device_approved", "device_denied", "device_refused"];
    let listed = poll_until(Duration::from_secs(10), async || {
        let json = app.admin(&["events", "--json", "--app", "tv"]).await;
        let events: Vec<Value> = serde_json::from_str(&json).expect("events --json is JSON");
        kinds.iter().all(|kind| events.iter().any(|event| event["kind"] == *kind)).then_some(events)
    })
    .await
    .expect("every device answer is listed under the app's slug");
    for (kind, username) in kinds.into_iter().zip(["ada", "ada", "grace"]) {
        let event = listed.iter().find(|event| event["kind"] == kind).expect("listed");
        assert_eq!((&event["app"], &event["username"]), (&Value::from("tv"), &Value::from(username)), "{event}");
    }
}

/// A lifetime is bounded where it is set: one so long that the moment a
/// code expires (now plus it) overflows would otherwise make every request
/// for codes fail (a panic in a debug build, a code expired at once after
/// wrapping in a release build).
async fn absurd_lifetimes_are_refused_where_they_are_set(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "tv", &["--device-code"]).await;
    for flag in ["--device-code-ttl", "--code-ttl", "--access-token-ttl", "--refresh-token-ttl"] {
        let output = app.latch(&["app", "update", "tv", flag, "9223372036854775000s"], None).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "latch app update tv {flag} with an absurd lifetime was accepted");
        assert!(stderr.contains("at most"), "{flag}: {stderr}");
    }
    let codes = start(&rp, "openid").await;
    assert_eq!(codes["expires_in"], 600, "the default lifetime still holds: {codes}");
}

on_every_backend!(
    the_openidconnect_crate_runs_the_device_flow,
    device_answers_are_audited_under_the_app,
    absurd_lifetimes_are_refused_where_they_are_set,
    polls_before_an_answer_are_pending_slowed_down_then_expired,
    a_denial_is_access_denied,
    the_access_rule_holds_at_approval_and_at_redemption,
    apps_without_the_grant_and_bad_requests_get_oauth_errors,
    user_codes_ignore_case_and_dashes,
    guessing_user_codes_is_throttled,
    unlocking_the_person_lifts_the_user_code_lock,
    a_device_code_redeems_once_and_a_replay_revokes,
    signing_out_ends_what_the_device_got,
    the_device_page_asks_to_sign_in_first,
);
