//! The sign-in page: one answer for every failed sign-in, CSRF protection,
//! disabled accounts, single sign-on across apps, framing and cookie
//! attributes, and no open redirect after sign-in.

use reqwest::StatusCode;

use crate::common::{
    Backend, Browser, CALLBACK, PASSWORD, TestApp, alert_text, assert_error_page, code_request, header, hidden_input,
    http, jwt_part, location, query_param, set_cookies, token_ok,
};
use crate::on_every_backend;

/// Opens the login page and returns the form's CSRF token.
async fn open_login(browser: &Browser, app: &TestApp) -> String {
    let page = browser.client.get(app.url("/login")).send().await.expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    hidden_input(&page.text().await.unwrap(), "csrf_token").expect("csrf_token")
}

async fn post_login(browser: &Browser, app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    browser.client.post(app.url("/login")).form(form).send().await.expect("login POST")
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookies(response).into_iter().find(|cookie| cookie.starts_with("latch_session="))
}

/// Signed in: the home page says so instead of sending the browser to /login.
async fn is_signed_in(browser: &Browser, app: &TestApp) -> bool {
    let response = browser.client.get(app.url("/")).send().await.expect("home");
    response.status() == StatusCode::OK
}

/// The message a failed sign-in shows, after checking it is a 401 page with no session.
async fn refused_sign_in(browser: &Browser, app: &TestApp, username: &str, password: &str) -> String {
    let response = browser.sign_in(&app.base, username, password).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{username}/{password}");
    assert_eq!(session_cookie(&response), None);
    alert_text(&response.text().await.unwrap()).expect("an error message")
}

async fn wrong_password_and_unknown_user_get_the_same_message(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let browser = Browser::new();
    let wrong_password = refused_sign_in(&browser, &app, "ada", "not the password").await;
    let unknown_user = refused_sign_in(&browser, &app, "nobody", "not the password").await;
    assert!(!wrong_password.is_empty());
    assert_eq!(wrong_password, unknown_user, "the message must not reveal which accounts exist");
    assert!(!is_signed_in(&browser, &app).await);

    let response = browser.sign_in(&app.base, "ada", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(is_signed_in(&browser, &app).await);
}

async fn login_without_the_right_csrf_token_is_400_and_signs_nobody_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let browser = Browser::new();
    let csrf = open_login(&browser, &app).await;
    let credentials = [("username", "ada"), ("password", PASSWORD), ("next", "/")];

    let missing = post_login(&browser, &app, &credentials).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(session_cookie(&missing), None);

    let wrong_token = "A".repeat(csrf.len());
    let wrong = post_login(&browser, &app, &[&credentials[..], &[("csrf_token", wrong_token.as_str())]].concat()).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert_eq!(session_cookie(&wrong), None);
    assert!(!is_signed_in(&browser, &app).await);

    // A cross-site form has the token (say, leaked) but not the cookie.
    let no_cookie = http().post(app.url("/login")).form(&[&credentials[..], &[("csrf_token", &csrf)]].concat());
    let no_cookie = no_cookie.send().await.unwrap();
    assert_eq!(no_cookie.status(), StatusCode::BAD_REQUEST);
    assert_eq!(session_cookie(&no_cookie), None);

    // The same form with the right token signs in.
    let right = post_login(&browser, &app, &[&credentials[..], &[("csrf_token", csrf.as_str())]].concat()).await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&right).is_some());
    assert!(is_signed_in(&browser, &app).await);
}

async fn disabled_user_cannot_sign_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let browser = Browser::new();
    let wrong_password = refused_sign_in(&browser, &app, "ada", "not the password").await;

    app.admin(&["user", "disable", "ada"]).await;
    let disabled = refused_sign_in(&browser, &app, "ada", PASSWORD).await;
    assert_eq!(disabled, wrong_password, "a disabled account looks like a wrong password");

    app.admin(&["user", "enable", "ada"]).await;
    assert_eq!(browser.sign_in(&app.base, "ada", PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

async fn disabling_a_user_ends_their_tokens_and_sessions_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    app.add_user("grace", PASSWORD, &[]).await;
    let credentials = app.add_app("web", &[CALLBACK], &[]).await;
    let params = code_request(&credentials.client_id, CALLBACK, "s");
    let browser = Browser::new();
    let code = browser.code(&app, &params, "ada", PASSWORD).await;
    let tokens = token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let other_browser = Browser::new();
    let code = other_browser.code(&app, &params, "grace", PASSWORD).await;
    let other_tokens = token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;
    assert_eq!(app.userinfo(access_token).await.status(), StatusCode::OK);

    app.admin(&["user", "disable", "ada"]).await;

    let response = app.userinfo(access_token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "WWW-Authenticate: {challenge:?}");
    // The session is over too: authorizing asks for a sign-in again.
    let response = browser.client.get(app.authorize_url(&params)).send().await.unwrap();
    assert!(location(&response).unwrap_or_default().starts_with("/login"), "{:?}", location(&response));
    // Other users are untouched.
    assert_eq!(app.userinfo(other_tokens["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

async fn signing_in_once_serves_every_app(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let grafana_callback = "https://grafana.example.com/login/generic_oauth";
    let forgejo_callback = "https://git.example.com/user/oauth2/latch/callback";
    let grafana = app.add_app("grafana", &[grafana_callback], &[]).await;
    let forgejo = app.add_app("forgejo", &[forgejo_callback], &[]).await;
    let browser = Browser::new();
    let code = browser.code(&app, &code_request(&grafana.client_id, grafana_callback, "g"), "ada", PASSWORD).await;
    let grafana_tokens = token_ok(app.redeem(&grafana, &code, grafana_callback, None).await).await;

    // The second app's first answer is the redirect back to it, with a code.
    let url = app.authorize_url(&code_request(&forgejo.client_id, forgejo_callback, "f"));
    let response = browser.client.get(url).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let callback = url::Url::parse(&location(&response).expect("Location")).expect("redirect to the app");
    assert!(callback.as_str().starts_with(forgejo_callback), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("f"));
    let code = query_param(&callback, "code").expect("code");
    let forgejo_tokens = token_ok(app.redeem(&forgejo, &code, forgejo_callback, None).await).await;

    let grafana_claims = jwt_part(grafana_tokens["id_token"].as_str().unwrap(), 1);
    let forgejo_claims = jwt_part(forgejo_tokens["id_token"].as_str().unwrap(), 1);
    assert_eq!(forgejo_claims["sub"], grafana_claims["sub"]);
    assert_eq!(forgejo_claims["aud"], forgejo.client_id.as_str());
    assert_eq!(forgejo_claims["auth_time"], grafana_claims["auth_time"], "one sign-in, one auth_time");
}

fn assert_no_framing(response: &reqwest::Response, what: &str) {
    assert_eq!(header(response, "x-frame-options").as_deref(), Some("DENY"), "{what}");
    let csp = header(response, "content-security-policy").unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: CSP {csp:?}");
}

async fn pages_that_take_credentials_forbid_framing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("web", &[CALLBACK], &[]).await;
    let login = http().get(app.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert_no_framing(&login, "login page");

    let browser = Browser::new();
    let failed = browser.sign_in(&app.base, "ada", "not the password").await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    assert_no_framing(&failed, "failed sign-in page");

    let authorize = http().get(app.authorize_url(&code_request(&credentials.client_id, CALLBACK, "s"))).send();
    assert_no_framing(&authorize.await.unwrap(), "authorization redirect");
    let error = http().get(app.authorize_url(&code_request("nope", CALLBACK, "s"))).send().await.unwrap();
    assert_no_framing(&error, "authorization error page");
    assert_error_page(error).await;
}

async fn cookies_are_http_only_and_same_site_lax(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let browser = Browser::new();
    let page = browser.client.get(app.url("/login")).send().await.unwrap();
    let response = browser.submit_login(&app.base, "", &page.text().await.unwrap(), "ada", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = session_cookie(&response).expect("a session cookie");
    let attributes: Vec<String> = cookie.split(';').map(|part| part.trim().to_ascii_lowercase()).collect();
    assert!(attributes.contains(&"httponly".to_owned()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".to_owned()), "{cookie}");
    assert!(attributes.contains(&"path=/".to_owned()), "{cookie}");

    let fresh = http().get(app.url("/login")).send().await.unwrap();
    let csrf = set_cookies(&fresh).into_iter().find(|cookie| cookie.starts_with("latch_csrf=")).expect("CSRF cookie");
    let csrf = csrf.to_ascii_lowercase();
    assert!(csrf.contains("httponly") && csrf.contains("samesite=lax"), "{csrf}");
}

/// Where a browser goes after signing in with `next`: the Location
/// resolved the way browsers resolve it (WHATWG URL parsing).
async fn destination_after_sign_in(app: &TestApp, next: &str) -> url::Url {
    let browser = Browser::new();
    let csrf = open_login(&browser, app).await;
    let form = [("csrf_token", csrf.as_str()), ("next", next), ("username", "ada"), ("password", PASSWORD)];
    let response = post_login(&browser, app, &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "next={next:?}");
    let location = location(&response).expect("Location");
    url::Url::parse(&app.base).unwrap().join(&location).expect("a URL a browser can follow")
}

/// `next` may only name a path on Latch. Browsers drop tabs and newlines
/// inside URLs, so `/<TAB>/evil.example` is `//evil.example` to them; a
/// newline must not break the redirect either.
async fn next_pointing_at_another_origin_is_not_followed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let own_host = url::Url::parse(&app.base).unwrap();
    let hostile = ["//evil.example", "https://evil.example/", "/\\evil.example", "///evil.example", "\\\\evil.example"];
    for next in hostile {
        let target = destination_after_sign_in(&app, next).await;
        assert_eq!(target.host_str(), own_host.host_str(), "next={next:?} led to {target}");
        assert_eq!(target.port(), own_host.port(), "next={next:?} led to {target}");
    }
    // Control characters are refused with the form (issue 11): a page, no redirect.
    for next in ["/\t/evil.example", "/\nSet-Cookie: x=y"] {
        let browser = Browser::new();
        let csrf = open_login(&browser, &app).await;
        let form = [("csrf_token", csrf.as_str()), ("next", next), ("username", "ada"), ("password", PASSWORD)];
        assert_error_page(post_login(&browser, &app, &form).await).await;
    }
    // A path on Latch is kept.
    let target = destination_after_sign_in(&app, "/application/o/authorize/?client_id=x").await;
    assert_eq!(target.path(), "/application/o/authorize/");
    assert_eq!(target.query(), Some("client_id=x"));

    // The login page does not carry a foreign `next` into its form either.
    let page = http().get(app.url("/login?next=%2F%2Fevil.example")).send().await.unwrap();
    let next = hidden_input(&page.text().await.unwrap(), "next").expect("next");
    assert!(!next.contains("evil.example"), "{next}");
}

on_every_backend!(
    wrong_password_and_unknown_user_get_the_same_message,
    login_without_the_right_csrf_token_is_400_and_signs_nobody_in,
    disabled_user_cannot_sign_in,
    disabling_a_user_ends_their_tokens_and_sessions_at_once,
    signing_in_once_serves_every_app,
    pages_that_take_credentials_forbid_framing,
    cookies_are_http_only_and_same_site_lax,
    next_pointing_at_another_origin_is_not_followed,
);
