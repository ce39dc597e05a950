//! The access rule (issue 11): "may this person use this app now, from this
//! live session" is asked again at code redemption, at every refresh, at
//! userinfo, at introspection and at forward auth, so a group change, an
//! app's new group list, a sign-out or a password reset takes effect on
//! what was already issued.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Backend, Browser, TestApp, header, location, set_cookies};
use crate::forward_auth::{PAGE_HEADERS, header_map, sign_in_directly};
use crate::on_every_backend;
use crate::relying_party::{
    Landing, PASSWORD, Rp, confirm_sign_out, http, open, server, string, token_error, token_ok,
};

const OFFLINE: &str = "openid profile email offline_access";
const NEW_PASSWORD: &str = "a brand new passphrase";

fn refresh_token(tokens: &Value) -> &str {
    string(tokens, "refresh_token")
}

/// What a person holds for an app: a token response with a refresh token,
/// and a code the app has not redeemed yet.
struct Held {
    tokens: Value,
    pending_code: String,
}

async fn hold(rp: &Rp, username: &str) -> Held {
    let browser = Browser::new();
    let tokens = rp.tokens(&browser, OFFLINE, username).await;
    let pending_code = rp.code(&browser, &rp.request(OFFLINE, "pending"), username).await;
    Held { tokens, pending_code }
}

/// Every grant and check refuses what `held` holds: the code and the
/// refresh token `invalid_grant`, userinfo 401 `invalid_token`, and
/// introspection `{"active":false}` for both tokens.
async fn assert_refused(rp: &Rp, held: &Held, why: &str) {
    let refused = token_error(rp.redeem(&held.pending_code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let description = refused["error_description"].as_str().unwrap_or_default();
    assert!(description.contains("may not use this app"), "{why}: the code: {refused}");
    token_error(rp.refresh(refresh_token(&held.tokens)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let access_token = string(&held.tokens, "access_token");
    let response = http().get(rp.endpoint("userinfo_endpoint")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{why}: userinfo");
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    rp.assert_inactive(access_token, why).await;
    rp.assert_inactive(refresh_token(&held.tokens), why).await;
}

/// The app's groups as `app show --json` prints them.
async fn groups_of(app: &TestApp, slug: &str) -> Value {
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", slug, "--json"]).await).unwrap();
    shown["groups"].clone()
}

async fn removing_a_member_stops_every_grant_and_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    app.admin(&["group", "add-member", "staff", "ada"]).await;
    app.admin(&["group", "add-member", "staff", "grace"]).await;
    let rp = Rp::register(&app, "web", &["--group", "staff"]).await;
    let ada = hold(&rp, "ada").await;
    let grace = hold(&rp, "grace").await;

    app.admin(&["group", "remove-member", "staff", "ada"]).await;
    assert_refused(&rp, &ada, "ada out of the app's group").await;

    // Other members are untouched.
    token_ok(rp.redeem(&grace.pending_code).await).await;
    token_ok(rp.refresh(refresh_token(&grace.tokens)).await).await;
    // The rule is about now: back in the group, the unrevoked family works again.
    app.admin(&["group", "add-member", "staff", "ada"]).await;
    token_ok(rp.refresh(refresh_token(&ada.tokens)).await).await;
}

async fn an_apps_new_group_list_applies_to_what_was_issued(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    let rp = Rp::register(&app, "web", &[]).await;
    let ada = hold(&rp, "ada").await;

    // An unknown group changes nothing; --group and --clear-groups conflict.
    let unknown = app.latch(&["app", "update", "web", "--group", "nobody"], None).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));
    let both = app.latch(&["app", "update", "web", "--group", "staff", "--clear-groups"], None).await;
    assert!(!both.status.success());
    assert_eq!(groups_of(&app, "web").await, serde_json::json!([]));
    assert_eq!(rp.introspect(refresh_token(&ada.tokens)).await["active"], true);

    // Restricted to a group ada is not in: refused at once, everywhere.
    app.admin(&["app", "update", "web", "--group", "staff"]).await;
    assert_eq!(groups_of(&app, "web").await, serde_json::json!(["staff"]));
    assert_refused(&rp, &ada, "the app restricted to staff").await;

    // Cleared: every active user again.
    app.admin(&["app", "update", "web", "--clear-groups"]).await;
    assert_eq!(groups_of(&app, "web").await, serde_json::json!([]));
    token_ok(rp.refresh(refresh_token(&ada.tokens)).await).await;
}

async fn a_code_issued_before_sign_out_does_not_redeem(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let code = rp.code(&browser, &rp.request("openid", "s"), "ada").await;
    let laptop = Browser::new();
    let laptop_code = rp.code(&laptop, &rp.request("openid", "s"), "ada").await;

    let end_session = rp.endpoint("end_session_endpoint");
    let page = browser.client.get(&end_session).send().await.unwrap();
    assert_eq!(confirm_sign_out(&browser.client, &end_session, page).await.status(), StatusCode::OK);

    let refused = token_error(rp.redeem(&code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert!(refused["error_description"].as_str().unwrap_or_default().contains("session"), "{refused}");
    // The same person's session on another device goes on.
    token_ok(rp.redeem(&laptop_code).await).await;
}

/// A sign-out and the exchange of a code from that session at the same
/// moment: whichever wins, nothing issued for the code outlives the
/// sign-out (the exchange pins the session row until it commits).
async fn a_sign_out_racing_a_code_exchange_leaves_nothing_alive(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let end_session = rp.endpoint("end_session_endpoint");
    let mut redeemed = 0;
    for round in 0..10 {
        let browser = Browser::new();
        let code = rp.code(&browser, &rp.request(OFFLINE, "race"), "ada").await;
        let page = browser.client.get(&end_session).send().await.unwrap();
        let (signed_out, exchange) =
            tokio::join!(confirm_sign_out(&browser.client, &end_session, page), rp.redeem(&code));
        assert_eq!(signed_out.status(), StatusCode::OK, "round {round}");
        if exchange.status() != StatusCode::OK {
            token_error(exchange, StatusCode::BAD_REQUEST, "invalid_grant").await;
            continue;
        }
        redeemed += 1;
        let tokens = token_ok(exchange).await;
        rp.assert_inactive(string(&tokens, "access_token"), "an access token that raced the sign-out").await;
        token_error(rp.refresh(refresh_token(&tokens)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    eprintln!("{redeemed} of 10 exchanges won the race against the sign-out");
}

/// `latch user passwd`, run as a password reset: ends the person's sessions
/// and what was issued from them; `--keep-sessions` keeps them.
async fn a_new_password_ends_sessions_and_tokens_unless_kept(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let tokens = rp.tokens(&browser, OFFLINE, "ada").await;
    let grace = rp.tokens(&Browser::new(), OFFLINE, "grace").await;

    let kept = app.latch(&["user", "passwd", "ada", "--password-stdin", "--keep-sessions"], Some(NEW_PASSWORD)).await;
    assert!(kept.status.success(), "{}", String::from_utf8_lossy(&kept.stderr));
    let tokens = token_ok(rp.refresh(refresh_token(&tokens)).await).await;
    rp.silent_code(&browser, &rp.request("openid", "still-signed-in")).await;

    let reset = app.latch(&["user", "passwd", "ada", "--password-stdin"], Some(PASSWORD)).await;
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    assert!(String::from_utf8_lossy(&reset.stdout).contains("1 session(s) ended"));
    token_error(rp.refresh(refresh_token(&tokens)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    rp.assert_inactive(string(&tokens, "access_token"), "an access token from before the reset").await;
    let landing = open(&browser, &rp.base, &rp.authorize_url(&rp.request("openid", "again"))).await;
    assert!(matches!(landing, Landing::Login(_)), "the browser must sign in again: {landing:?}");
    // Nobody else is signed out.
    token_ok(rp.refresh(refresh_token(&grace)).await).await;
}

/// The traefik check for `host` with the app cookie `cookie` (`name=value`).
async fn traefik(latch: &TestApp, host: &str, cookie: &str) -> StatusCode {
    http()
        .get(latch.url("/outpost.goauthentik.io/auth/traefik"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", host)
        .header("X-Forwarded-Uri", "/")
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

/// The app cookie a finished forward-auth sign-in set, as `name=value`.
fn app_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|cookie| {
            let name = cookie.trim_start_matches("__Host-");
            name.starts_with("latch_proxy_") && !name.starts_with("latch_proxy_state")
        })
        .map(|cookie| cookie.split(';').next().unwrap_or_default().to_owned())
}

async fn forward_auth_follows_the_apps_groups(backend: Backend) {
    let Some(latch) = TestApp::spawn(backend).await else { return };
    latch.admin(&["group", "add", "admins"]).await;
    latch.add_user("ada", PASSWORD, &[]).await;
    let add = ["app", "add", "kuma", "--name", "Kuma", "--proxy", "--external-url", "https://kuma.example.com"];
    latch.admin(&add).await;
    let browser = Browser::new();
    browser.sign_in(&latch.base, "ada", PASSWORD).await;
    let signed_in = sign_in_directly(&latch, &browser, "https://kuma.example.com/").await;
    let cookie = app_cookie(&signed_in).expect("the app's cookie");
    assert_eq!(traefik(&latch, "kuma.example.com", &cookie).await, StatusCode::OK);

    latch.admin(&["app", "update", "kuma", "--group", "admins"]).await;
    assert_eq!(traefik(&latch, "kuma.example.com", &cookie).await, StatusCode::FORBIDDEN);
    latch.admin(&["app", "update", "kuma", "--clear-groups"]).await;
    assert_eq!(traefik(&latch, "kuma.example.com", &cookie).await, StatusCode::OK);

    // A sign-in code issued before the app was restricted does not redeem.
    let query = serde_urlencoded::to_string([("rd", "https://kuma.example.com/")]).unwrap();
    let start = latch.url(&format!("/outpost.goauthentik.io/start?{query}"));
    let start = browser.client.get(start).headers(header_map(&PAGE_HEADERS)).send().await.unwrap();
    let sso = browser.client.get(location(&start).unwrap()).send().await.unwrap();
    let callback = location(&sso).unwrap().replacen("https://kuma.example.com", &latch.base, 1);
    latch.admin(&["app", "update", "kuma", "--group", "admins"]).await;
    let refused = browser.client.get(callback).send().await.unwrap();
    assert_eq!(app_cookie(&refused), None, "a cookie was issued for a code from before the restriction");
    assert!(!refused.status().is_redirection(), "sent on to the app: {:?}", location(&refused));
}

/// An access token from a code exchange without `offline_access` is tied to
/// its session only through the code, so it must still die with a sign-out
/// after housekeeping has run past the code's retention (ten minutes after
/// its expiry), when the app's access tokens live longer than that.
async fn a_sign_out_ends_a_long_lived_access_token_after_housekeeping(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--access-token-ttl", "2h"]).await;
    let browser = Browser::new();
    let tokens = rp.tokens(&browser, "openid profile", "ada").await;
    let access_token = string(&tokens, "access_token");

    // Housekeeping as it runs a quarter of an hour later (the clock is passed in).
    let store = latch::store::Store::connect(&app.database_url).await.expect("store");
    let later = latch::clock::now() + 15 * 60;
    store.delete_expired(later, 0).await.expect("housekeeping");
    assert_eq!(rp.introspect(access_token).await["active"], true, "alive before the sign-out");

    let end_session = rp.endpoint("end_session_endpoint");
    let page = browser.client.get(&end_session).send().await.unwrap();
    assert_eq!(confirm_sign_out(&browser.client, &end_session, page).await.status(), StatusCode::OK);
    let response = http().get(rp.endpoint("userinfo_endpoint")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "userinfo after the sign-out");
    rp.assert_inactive(access_token, "an access token of a signed-out session").await;
}

on_every_backend!(
    removing_a_member_stops_every_grant_and_token,
    an_apps_new_group_list_applies_to_what_was_issued,
    a_code_issued_before_sign_out_does_not_redeem,
    a_sign_out_racing_a_code_exchange_leaves_nothing_alive,
    a_new_password_ends_sessions_and_tokens_unless_kept,
    forward_auth_follows_the_apps_groups,
    a_sign_out_ends_a_long_lived_access_token_after_housekeeping,
);
