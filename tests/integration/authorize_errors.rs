//! The authorization endpoint when the request is wrong. A bad `client_id` or
//! `redirect_uri` gets an HTML page and never a redirect; every other error
//! goes back to the registered redirect URI with `error`,
//! `error_description`, `state` and `iss`. Harmless extras are ignored.

use reqwest::StatusCode;

use crate::common::{
    AppCredentials, Backend, Browser, CALLBACK, PASSWORD, TestApp, absolute, assert_error_page, assert_error_redirect,
    code_request, http, jwt_part, location, query_param, token_ok,
};
use crate::on_every_backend;

const AUTHENTIK_CALLBACK: &str = "https://app.example.com/api/auth/callback/authentik";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// 128 characters, ending in every unreserved punctuation character.
fn long_state() -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: String = (0..124).map(|i| alphabet[(i * 7) % alphabet.len()] as char).collect();
    state.push_str("-._~");
    state
}

/// A server with user `ada` and app `web` registered with `redirect_uris`.
async fn setup(backend: Backend, redirect_uris: &[&str], extra: &[&str]) -> Option<(TestApp, AppCredentials)> {
    let app = TestApp::spawn(backend).await?;
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("web", redirect_uris, extra).await;
    Some((app, credentials))
}

async fn get(url: &str) -> reqwest::Response {
    http().get(url).send().await.expect("request")
}

/// A parameter to replace, or to remove when its value is `None`.
type Change<'a> = (&'a str, Option<&'a str>);

/// A code request for `credentials` with `changes` applied: each named
/// parameter is replaced, or removed when its value is `None`.
fn changed<'a>(
    credentials: &'a AppCredentials,
    redirect_uri: &'a str,
    state: &'a str,
    changes: &[Change<'a>],
) -> Vec<(&'a str, &'a str)> {
    let mut params = code_request(&credentials.client_id, redirect_uri, state);
    for (name, value) in changes {
        params.retain(|(existing, _)| existing != name);
        if let Some(value) = value {
            params.push((name, value));
        }
    }
    params
}

async fn unknown_client_id_gets_an_error_page(backend: Backend) {
    let Some((app, _)) = setup(backend, &[CALLBACK], &[]).await else { return };
    let response = get(&app.authorize_url(&code_request("no-such-client", CALLBACK, "s1"))).await;
    let message = assert_error_page(response).await;
    assert!(message.contains("no-such-client"), "the page should name the unknown client_id: {message}");

    let mut without_client_id = code_request("x", CALLBACK, "s1");
    without_client_id.retain(|(name, _)| *name != "client_id");
    assert_error_page(get(&app.authorize_url(&without_client_id)).await).await;
}

async fn redirect_uri_with_another_path_gets_a_page_naming_the_difference(backend: Backend) {
    let Some((app, credentials)) = setup(backend, &[AUTHENTIK_CALLBACK], &[]).await else { return };
    let sent = "https://app.example.com/api/auth/callback/custom";
    let message =
        assert_error_page(get(&app.authorize_url(&code_request(&credentials.client_id, sent, "s1"))).await).await;
    assert!(message.contains("path"), "the message should say the path differs: {message}");
    assert!(message.contains("\"/api/auth/callback/custom\""), "{message}");
    assert!(message.contains("\"/api/auth/callback/authentik\""), "{message}");
}

/// No prefix matching, no added query, no default when several are registered.
async fn redirect_uri_not_registered_exactly_gets_an_error_page(backend: Backend) {
    let second = "https://other.example.com/callback";
    let Some((app, credentials)) = setup(backend, &[AUTHENTIK_CALLBACK, second], &[]).await else { return };
    let cases = [
        (format!("{AUTHENTIK_CALLBACK}/xyz"), "/api/auth/callback/authentik/xyz"),
        (format!("{AUTHENTIK_CALLBACK}/"), "path"),
        (format!("{AUTHENTIK_CALLBACK}?next=/admin"), "query"),
        ("https://app.example.com/api/auth/callback".to_owned(), "path"),
        ("https://app.example.org/api/auth/callback/authentik".to_owned(), "host"),
        ("http://app.example.com/api/auth/callback/authentik".to_owned(), "scheme"),
    ];
    for (sent, named) in &cases {
        let response = get(&app.authorize_url(&code_request(&credentials.client_id, sent, "s1"))).await;
        let message = assert_error_page(response).await;
        assert!(message.contains(named), "for {sent}, the message should mention {named:?}: {message}");
    }

    let none_sent = changed(&credentials, CALLBACK, "s1", &[("redirect_uri", None)]);
    assert_error_page(get(&app.authorize_url(&none_sent)).await).await;
}

async fn registered_redirect_uri_with_query_works_only_when_sent_exactly(backend: Backend) {
    let registered = "https://app.example.com/cb?tenant=acme";
    let Some((app, credentials)) = setup(backend, &[registered], &[]).await else { return };
    for wrong in [
        "https://app.example.com/cb",
        "https://app.example.com/cb?tenant=evil",
        "https://app.example.com/cb?tenant=acme&x=1",
    ] {
        assert_error_page(get(&app.authorize_url(&code_request(&credentials.client_id, wrong, "s1"))).await).await;
    }

    let url = app.authorize_url(&code_request(&credentials.client_id, registered, "s1"));
    let callback = Browser::new().authorize(&app.base, &url, "ada", PASSWORD).await;
    assert_eq!((callback.host_str(), callback.path()), (Some("app.example.com"), "/cb"));
    assert_eq!(query_param(&callback, "tenant").as_deref(), Some("acme"), "the registered query is kept: {callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("s1"));
    let code = query_param(&callback, "code").expect("code");
    token_ok(app.redeem(&credentials, &code, registered, None).await).await;
}

/// Once client and redirect URI are known good, errors go back to the app.
async fn other_errors_redirect_with_error_state_and_iss(backend: Backend) {
    let Some((app, credentials)) = setup(backend, &[CALLBACK], &[]).await else { return };
    let issuer = app.issuer("web");
    let unsigned_request = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.";
    let cases: [(&str, &[Change], &str); 9] = [
        ("no response_type", &[("response_type", None)], "invalid_request"),
        ("response_type=token", &[("response_type", Some("token"))], "unsupported_response_type"),
        ("response_type=code id_token", &[("response_type", Some("code id_token"))], "unsupported_response_type"),
        ("scope without openid", &[("scope", Some("profile email"))], "invalid_scope"),
        ("no scope", &[("scope", None)], "invalid_scope"),
        (
            "code_challenge_method=plain",
            &[("code_challenge", Some(VERIFIER)), ("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        // Without a method RFC 7636 means plain: refused as well.
        ("code_challenge without a method", &[("code_challenge", Some(CHALLENGE))], "invalid_request"),
        ("request object", &[("request", Some(unsigned_request))], "request_not_supported"),
        ("request_uri", &[("request_uri", Some("https://app.example.com/request.jwt"))], "request_uri_not_supported"),
    ];
    for (case, changes, error) in cases {
        let response = get(&app.authorize_url(&changed(&credentials, CALLBACK, "state-1", changes))).await;
        assert!(response.status().is_redirection(), "{case}: expected a redirect, got {}", response.status());
        assert_error_redirect(&response, CALLBACK, error, "state-1", &issuer);
    }

    // A public client must use PKCE.
    let public = app.add_app("spa", &[CALLBACK], &["--public"]).await;
    let response = get(&app.authorize_url(&code_request(&public.client_id, CALLBACK, "state-2"))).await;
    assert_error_redirect(&response, CALLBACK, "invalid_request", "state-2", &app.issuer("spa"));
    let with_pkce = changed(
        &public,
        CALLBACK,
        "state-2",
        &[("code_challenge", Some(CHALLENGE)), ("code_challenge_method", Some("S256"))],
    );
    let response = get(&app.authorize_url(&with_pkce)).await;
    assert!(location(&response).unwrap_or_default().starts_with("/login"), "with PKCE: on to sign-in");
}

async fn user_outside_the_apps_groups_is_denied_after_signing_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_user("grace", PASSWORD, &["staff"]).await;
    let credentials = app.add_app("web", &[CALLBACK], &["--group", "staff"]).await;
    let url = app.authorize_url(&code_request(&credentials.client_id, CALLBACK, "state-1"));

    // Nobody is told anything before signing in: the first stop is the login page.
    let browser = Browser::new();
    let first = browser.client.get(&url).send().await.expect("authorize");
    assert!(first.status().is_redirection());
    assert!(location(&first).expect("Location").starts_with("/login"), "{:?}", location(&first));

    let page = browser.visit(&app.base, &url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let login = browser.submit_login(&app.base, "", &html, "ada", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let response = browser.visit(&app.base, &absolute(&app.base, &location(&login).unwrap())).await;
    assert_error_redirect(&response, CALLBACK, "access_denied", "state-1", &app.issuer("web"));

    // A member of the group gets a code for the same request.
    let code = Browser::new().code(&app, &code_request(&credentials.client_id, CALLBACK, "s"), "grace", PASSWORD).await;
    assert!(!code.is_empty());
}

async fn long_state_is_echoed_exactly(backend: Backend) {
    let long_state = long_state();
    assert_eq!(long_state.len(), 128);
    let Some((app, credentials)) = setup(backend, &[CALLBACK], &[]).await else { return };
    let params = changed(&credentials, CALLBACK, &long_state, &[("response_type", None)]);
    let response = get(&app.authorize_url(&params)).await;
    assert_error_redirect(&response, CALLBACK, "invalid_request", &long_state, &app.issuer("web"));

    let browser = Browser::new();
    let url = app.authorize_url(&code_request(&credentials.client_id, CALLBACK, &long_state));
    let callback = browser.authorize(&app.base, &url, "ada", PASSWORD).await;
    assert_eq!(query_param(&callback, "state").as_deref(), Some(long_state.as_str()));
    assert!(query_param(&callback, "code").is_some());

    // Characters that need escaping in a query come back as they were sent.
    let awkward = "a b+c&d=e%20f/g?h#i\u{fc}";
    let url = app.authorize_url(&code_request(&credentials.client_id, CALLBACK, awkward));
    let callback = browser.authorize(&app.base, &url, "ada", PASSWORD).await;
    assert_eq!(query_param(&callback, "state").as_deref(), Some(awkward), "{callback}");
}

/// Unknown parameters and display hints are no errors; neither are
/// reordered parameters and scopes in another order.
async fn extra_parameters_reordering_and_reversed_scopes_work(backend: Backend) {
    let Some((app, credentials)) = setup(backend, &[CALLBACK], &[]).await else { return };
    let mut params = code_request(&credentials.client_id, CALLBACK, "s1");
    params.extend([
        ("extra", "foobar"),
        ("display", "page"),
        ("ui_locales", "fr-CA fr en"),
        ("claims_locales", "de"),
        ("login_hint", "ada"),
        ("acr_values", "urn:mace:incommon:iap:silver"),
    ]);
    let browser = Browser::new();
    let code = browser.code(&app, &params, "ada", PASSWORD).await;
    token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;

    let reordered = [
        ("state", "s2"),
        ("scope", "email profile openid"),
        ("redirect_uri", CALLBACK),
        ("display", "popup"),
        ("client_id", credentials.client_id.as_str()),
        ("nonce", "n-0S6_WzA2Mj"),
        ("response_type", "code"),
    ];
    let code = browser.code(&app, &reordered, "ada", PASSWORD).await;
    let tokens = token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;
    let claims = jwt_part(tokens["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["email"], "ada@example.com", "the email scope was granted: {claims}");
    assert_eq!(claims["preferred_username"], "ada", "the profile scope was granted: {claims}");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
}

async fn authorization_request_as_form_post_works(backend: Backend) {
    let Some((app, credentials)) = setup(backend, &[CALLBACK], &[]).await else { return };
    let authorize = app.url("/application/o/authorize/");
    let params = code_request(&credentials.client_id, CALLBACK, "posted");
    let browser = Browser::new();

    // Not signed in: to the login page, then back to the same request.
    let response = browser.client.post(&authorize).form(&params).send().await.expect("POST authorize");
    assert!(response.status().is_redirection(), "{}", response.status());
    let page = browser.visit(&app.base, &absolute(&app.base, &location(&response).expect("Location"))).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let login = browser.submit_login(&app.base, "", &html, "ada", PASSWORD).await;
    let next = absolute(&app.base, &location(&login).expect("Location"));
    let callback = browser.visit(&app.base, &next).await;
    let callback = url::Url::parse(&location(&callback).expect("redirect to the app")).unwrap();
    assert!(callback.as_str().starts_with(CALLBACK), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("posted"));
    let code = query_param(&callback, "code").expect("code");
    token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;

    // Signed in: straight back to the app.
    let response = browser.client.post(&authorize).form(&params).send().await.expect("POST authorize");
    let callback = url::Url::parse(&location(&response).expect("Location")).unwrap();
    assert!(callback.as_str().starts_with(CALLBACK), "{callback}");
    assert!(query_param(&callback, "code").is_some());

    // Errors in a POSTed request are reported like those in a GET.
    let bad = changed(&credentials, CALLBACK, "posted", &[("response_type", None)]);
    let response = browser.client.post(&authorize).form(&bad).send().await.expect("POST authorize");
    assert_error_redirect(&response, CALLBACK, "invalid_request", "posted", &app.issuer("web"));
    let unknown = code_request("no-such-client", CALLBACK, "posted");
    assert_error_page(browser.client.post(&authorize).form(&unknown).send().await.unwrap()).await;
}

on_every_backend!(
    unknown_client_id_gets_an_error_page,
    redirect_uri_with_another_path_gets_a_page_naming_the_difference,
    redirect_uri_not_registered_exactly_gets_an_error_page,
    registered_redirect_uri_with_query_works_only_when_sent_exactly,
    other_errors_redirect_with_error_state_and_iss,
    user_outside_the_apps_groups_is_denied_after_signing_in,
    long_state_is_echoed_exactly,
    extra_parameters_reordering_and_reversed_scopes_work,
    authorization_request_as_form_post_works,
);
