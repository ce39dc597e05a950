//! RP-Initiated Logout 1.0 at the app's `end_session_endpoint`: the SSO
//! session ends, and the browser goes back to the app only to a
//! post-logout URI the app registered exactly.

use openidconnect::core::CoreIdToken;
use openidconnect::{CsrfToken, LogoutRequest, PostLogoutRedirectUrl};
use reqwest::StatusCode;

use crate::common::{Backend, Browser, location, query_param};
use crate::on_every_backend;
use crate::relying_party::{
    Landing, PASSWORD, Rp, client_with_cookie, confirm_sign_out, header, open, server, set_cookie, string, token_ok,
};

const SIGNED_OUT: &str = "https://app.example.com/signed-out";

/// Signs `username` in through the app and returns the session cookie
/// (`name=value`) and the token response.
async fn sign_in(rp: &Rp, browser: &Browser, username: &str) -> (String, serde_json::Value) {
    let params = rp.request("openid profile", "s1");
    let Landing::Login(html) = open(browser, &rp.base, &rp.authorize_url(&params)).await else {
        panic!("a new browser is asked to sign in");
    };
    let response = browser.submit_login(&rp.base, "", &html, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&response, "latch_session").expect("a session cookie");
    let next = crate::common::absolute(&rp.base, &location(&response).expect("Location"));
    let Landing::App(callback) = open(browser, &rp.base, &next).await else { panic!("back to the app") };
    let code = query_param(&rp.callback(callback.as_str()), "code").expect("code");
    (cookie, token_ok(rp.redeem(&code).await).await)
}

/// The page Latch shows when it does not send the browser back: 200, HTML,
/// saying the person is signed out, and no redirect.
async fn assert_signed_out_page(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(location(&response), None, "no redirect without a registered target");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("signed out"), "{html}");
    assert!(!html.contains("app.example.com"), "the page must not link to an unregistered target: {html}");
}

fn prompt_none(rp: &Rp, state: &str) -> Vec<(String, String)> {
    let mut params = rp.request("openid", state);
    params.push(("prompt".into(), "none".into()));
    params
}

async fn logout_goes_back_with_state_and_ends_the_session(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--post-logout-redirect-uri", SIGNED_OUT]).await;
    let browser = Browser::new();
    let (session_cookie, tokens) = sign_in(&rp, &browser, "ada").await;
    let id_token: CoreIdToken = string(&tokens, "id_token").parse().expect("an ID token");

    // The request as the openidconnect crate builds it.
    let end_session = rp.metadata().await.additional_metadata().end_session_endpoint.clone();
    let url = LogoutRequest::from(end_session.expect("discovery advertises end_session_endpoint"))
        .set_id_token_hint(&id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(SIGNED_OUT.into()).unwrap())
        .set_state(CsrfToken::new("bye-~.-_42".into()))
        .http_get_url();
    let response = browser.client.get(url).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let target = url::Url::parse(&location(&response).expect("Location")).expect("absolute");
    assert_eq!(format!("{}://{}{}", target.scheme(), target.host_str().unwrap(), target.path()), SIGNED_OUT);
    assert_eq!(query_param(&target, "state").as_deref(), Some("bye-~.-_42"), "{target}");

    // Signed out: prompt=none finds no session…
    let params = prompt_none(&rp, "after");
    rp.assert_error(&rp.authorize_once(&browser, &params).await, "login_required", "after");
    // …even for a browser that kept the old cookie: the session ended on the server.
    let kept = client_with_cookie(&session_cookie);
    let response = kept.get(rp.authorize_url(&params)).send().await.unwrap();
    rp.assert_error(&response, "login_required", "after");
    // And the next sign-in asks for the password.
    let landing = open(&browser, &app.base, &rp.authorize_url(&rp.request("openid", "again"))).await;
    assert!(landing.is_login(), "{landing:?}");
}

async fn logout_by_form_post_works_too(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--post-logout-redirect-uri", SIGNED_OUT]).await;
    let browser = Browser::new();
    let (_, tokens) = sign_in(&rp, &browser, "ada").await;
    let form = [
        ("id_token_hint", string(&tokens, "id_token")),
        ("post_logout_redirect_uri", SIGNED_OUT),
        ("state", "posted"),
        ("client_id", rp.client_id()),
    ];
    let response = browser.client.post(rp.endpoint("end_session_endpoint")).form(&form).send().await.unwrap();
    let target = url::Url::parse(&location(&response).expect("a redirect")).unwrap();
    assert!(target.as_str().starts_with(SIGNED_OUT), "{target}");
    assert_eq!(query_param(&target, "state").as_deref(), Some("posted"));
    let params = prompt_none(&rp, "after");
    rp.assert_error(&rp.authorize_once(&browser, &params).await, "login_required", "after");
}

async fn unregistered_post_logout_uri_shows_a_signed_out_page(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--post-logout-redirect-uri", SIGNED_OUT]).await;
    let other = Rp::register(&app, "other", &["--post-logout-redirect-uri", "https://other.example.com/bye"]).await;
    let browser = Browser::new();
    let (_, tokens) = sign_in(&rp, &browser, "ada").await;
    let id_token = string(&tokens, "id_token");
    let end_session = rp.endpoint("end_session_endpoint");

    let unregistered = [
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", "https://app.example.com/signed-out/evil"),
        ("state", "s"),
    ];
    assert_signed_out_page(browser.client.get(&end_session).query(&unregistered).send().await.unwrap()).await;
    // The session ended all the same.
    let params = prompt_none(&rp, "after");
    rp.assert_error(&rp.authorize_once(&browser, &params).await, "login_required", "after");

    // A target registered by another app is not this app's.
    let others_target =
        [("id_token_hint", id_token), ("post_logout_redirect_uri", "https://other.example.com/bye"), ("state", "s")];
    assert_signed_out_page(browser.client.get(&end_session).query(&others_target).send().await.unwrap()).await;

    // This app's target with an ID token issued to another app: no redirect.
    let (_, other_tokens) = sign_in(&other, &Browser::new(), "ada").await;
    let wrong_hint = [
        ("id_token_hint", string(&other_tokens, "id_token")),
        ("post_logout_redirect_uri", SIGNED_OUT),
        ("state", "s"),
    ];
    assert_signed_out_page(browser.client.get(&end_session).query(&wrong_hint).send().await.unwrap()).await;
}

/// Without an ID token naming the signed-in person, Latch asks before it
/// signs anyone out, so that a link, an image or a form on another site
/// cannot (RP-Initiated Logout §2). The answer, posted with its CSRF token,
/// signs out and goes back to the registered target.
async fn logout_without_a_hint_for_this_person_asks_first(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--post-logout-redirect-uri", SIGNED_OUT]).await;
    let browser = Browser::new();
    sign_in(&rp, &browser, "ada").await;
    let (_, graces_tokens) = sign_in(&rp, &Browser::new(), "grace").await;
    let end_session = rp.endpoint("end_session_endpoint");
    let still_signed_in = |why: &'static str| {
        let params = prompt_none(&rp, "still");
        let (rp, browser) = (&rp, &browser);
        async move {
            let response = rp.authorize_once(browser, &params).await;
            let target = location(&response).unwrap_or_default();
            assert!(target.contains("code="), "{why}: ada must still be signed in, got {target}");
        }
    };

    let asks = |response: reqwest::Response, why: &'static str| async move {
        assert_eq!(response.status(), StatusCode::OK, "{why}");
        assert_eq!(location(&response), None, "{why}: no redirect before the person answers");
        let html = response.text().await.unwrap();
        assert!(html.contains("Sign out?"), "{why}: {html}");
    };
    let request = [("post_logout_redirect_uri", SIGNED_OUT), ("state", "asked")];
    asks(browser.client.get(&end_session).query(&request).send().await.unwrap(), "no hint").await;
    still_signed_in("after a sign-out link without a hint").await;
    let confirmed_in_the_url = [("post_logout_redirect_uri", SIGNED_OUT), ("latch_logout", "yes")];
    asks(browser.client.get(&end_session).query(&confirmed_in_the_url).send().await.unwrap(), "GET confirm").await;
    let graces_hint = [("id_token_hint", string(&graces_tokens, "id_token"))];
    asks(browser.client.get(&end_session).query(&graces_hint).send().await.unwrap(), "another person's hint").await;
    still_signed_in("after a hint for another person").await;

    // A form on another site cannot answer for the person: it has no CSRF token.
    let forged = [("post_logout_redirect_uri", SIGNED_OUT), ("latch_logout", "yes"), ("csrf_token", "guess")];
    let response = browser.client.post(&end_session).form(&forged).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    still_signed_in("after a forged confirmation").await;

    let page = browser.client.get(&end_session).query(&request).send().await.unwrap();
    let response = confirm_sign_out(&browser.client, &end_session, page).await;
    let target = url::Url::parse(&location(&response).expect("back to the app")).unwrap();
    assert!(target.as_str().starts_with(SIGNED_OUT), "{target}");
    assert_eq!(query_param(&target, "state").as_deref(), Some("asked"));
    let params = prompt_none(&rp, "after");
    rp.assert_error(&rp.authorize_once(&browser, &params).await, "login_required", "after");
}

on_every_backend!(
    logout_without_a_hint_for_this_person_asks_first,
    logout_goes_back_with_state_and_ends_the_session,
    logout_by_form_post_works_too,
    unregistered_post_logout_uri_shows_a_signed_out_page,
);
