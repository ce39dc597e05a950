//! A cookie planted from a sibling host decides nothing: under an https
//! public URL at the root path Latch's cookies carry the `__Host-` prefix
//! (which only Latch's own host can set), and the CSRF token of every form
//! (sign-in, consent, sign-out) is bound to the browser's cookies, so a
//! cookie of an attacker's choosing with the same value in the form is
//! refused.

use reqwest::StatusCode;
use reqwest::header::COOKIE;

use crate::common::{
    Backend, Browser, Options, PASSWORD, TestApp, absolute, hidden_input, http, location, set_cookies,
};
use crate::on_every_backend;
use crate::relying_party::{Landing, Rp, client_with_cookie, open, server, set_cookie, token_ok};

/// 43 base64url characters, the shape of every token Latch makes.
const PLANTED: &str = "AttackerChosenValueAttackerChosenValue12345";

/// The `Set-Cookie` of `name`, whole (attributes included).
fn set_cookie_line(response: &reqwest::Response, name: &str) -> String {
    set_cookies(response)
        .into_iter()
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", set_cookies(response)))
}

fn assert_host_only_secure_root(line: &str) {
    let attributes: Vec<String> = line.split(';').skip(1).map(|part| part.trim().to_ascii_lowercase()).collect();
    for required in ["secure", "path=/", "httponly", "samesite=lax"] {
        assert!(attributes.iter().any(|attribute| attribute == required), "{required} missing: {line}");
    }
    assert!(!attributes.iter().any(|attribute| attribute.starts_with("domain")), "no Domain: {line}");
}

async fn https_at_the_root_uses_host_prefixed_cookies(backend: Backend) {
    let options = Options { https_public_url: true, ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, options).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let page = http().get(app.url("/login")).send().await.unwrap();
    let csrf_line = set_cookie_line(&page, "__Host-latch_csrf");
    assert_host_only_secure_root(&csrf_line);
    let csrf_cookie = csrf_line.split(';').next().unwrap().to_owned();
    let token = hidden_input(&page.text().await.unwrap(), "csrf_token").expect("csrf_token");

    let form = [("csrf_token", token.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    let signed_in = http().post(app.url("/login")).header(COOKIE, &csrf_cookie).form(&form).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session_line = set_cookie_line(&signed_in, "__Host-latch_session");
    assert_host_only_secure_root(&session_line);
    let session = session_line.split(';').next().unwrap().trim_start_matches("__Host-latch_session=").to_owned();

    let home = app.url("/");
    let prefixed = client_with_cookie(&format!("__Host-latch_session={session}")).get(&home).send().await.unwrap();
    assert_eq!(prefixed.status(), StatusCode::OK);
    // The bare name, which a sibling host can set, is not Latch's cookie.
    let bare = client_with_cookie(&format!("latch_session={session}")).get(&home).send().await.unwrap();
    assert_eq!(location(&bare).as_deref(), Some("/login"), "a cookie without the prefix signs nobody in");
    // Nor is a bare CSRF cookie: the planted pair at the sign-in form is refused.
    let planted = [("csrf_token", PLANTED), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    let cookie = format!("latch_csrf={PLANTED}");
    let refused = http().post(app.url("/login")).header(COOKIE, cookie).form(&planted).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&refused).iter().all(|line| !line.contains("latch_session")));
}

/// The sign-in form with a planted CSRF cookie and the same form value:
/// refused, nobody signed in (login CSRF).
async fn a_planted_csrf_cookie_does_not_pass_the_sign_in_form(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let form = [("csrf_token", PLANTED), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    let response = client_with_cookie(&format!("latch_csrf={PLANTED}")).post(app.url("/login")).form(&form);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(set_cookie(&response, "latch_session"), None, "nobody is signed in");

    // The real form still works in the same way.
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app.base, "ada", PASSWORD).await.status(), StatusCode::SEE_OTHER);
}

/// A pair of CSRF cookie and token that Latch gave another browser (the
/// attacker's), planted and posted from a sibling host: the browser says
/// the form came from another origin (`Sec-Fetch-Site: same-site`), and it
/// is refused; the same pair from Latch's own page passes.
async fn a_sign_in_form_posted_from_another_origin_is_refused(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let page = http().get(app.url("/login")).send().await.unwrap();
    let cookie = set_cookie(&page, "latch_csrf").expect("CSRF cookie");
    let token = hidden_input(&page.text().await.unwrap(), "csrf_token").expect("csrf_token");
    let form = [("csrf_token", token.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    for (site, status) in [("same-site", StatusCode::BAD_REQUEST), ("cross-site", StatusCode::BAD_REQUEST)]
        .into_iter()
        .chain([("same-origin", StatusCode::SEE_OTHER)])
    {
        let post = http().post(app.url("/login")).header(COOKIE, &cookie).header("sec-fetch-site", site);
        let response = post.form(&form).send().await.unwrap();
        assert_eq!(response.status(), status, "Sec-Fetch-Site: {site}");
    }
}

/// A signed-in person's consent and sign-out forms: a planted CSRF cookie
/// with the same form value is refused, and so is a pair the attacker got
/// from Latch for a browser of its own.
async fn a_planted_csrf_cookie_does_not_answer_consent_or_sign_out(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let browser = Browser::new();
    let landing = open(&browser, &app.base, &rp.authorize_url(&rp.request("openid", "s"))).await;
    let Landing::Login(html) = landing else { panic!("login page") };
    let login = browser.submit_login(&app.base, "", &html, "ada", PASSWORD).await;
    let session = set_cookie(&login, "latch_session").expect("session cookie");
    let next = absolute(&app.base, &location(&login).expect("Location"));
    let Landing::Consent(consent) = open(&browser, &app.base, &next).await else { panic!("the consent page") };

    // The attacker's own pair, from the login page of its own browser.
    let own = http().get(app.url("/login")).send().await.unwrap();
    let own_cookie = set_cookie(&own, "latch_csrf").expect("CSRF cookie");
    let own_token = hidden_input(&own.text().await.unwrap(), "csrf_token").expect("csrf_token");
    let own_value = own_cookie.trim_start_matches("latch_csrf=").to_owned();

    let mut fields = crate::relying_party::hidden_inputs(&consent);
    fields.retain(|(name, _)| name != "csrf_token");
    fields.push(("latch_consent".into(), "allow".into()));
    for (cookie, token) in [(PLANTED, PLANTED), (own_value.as_str(), own_token.as_str())] {
        let victim = client_with_cookie(&format!("{session}; latch_csrf={cookie}"));
        let mut form = fields.clone();
        form.push(("csrf_token".into(), token.into()));
        let answer = victim.post(app.url("/application/o/authorize/")).form(&form).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "consent with a planted CSRF cookie");

        let sign_out = [("latch_logout", "yes"), ("csrf_token", token)];
        let end_session = app.url("/application/o/web/end-session/");
        let answer = victim.post(&end_session).form(&sign_out).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "sign-out with a planted CSRF cookie");
    }
    // Still signed in, and the real consent form still works.
    let code = crate::common::query_param(&rp.callback(&consent_answer(&browser, &app, &consent).await), "code");
    token_ok(rp.redeem(&code.expect("code")).await).await;
}

async fn consent_answer(browser: &Browser, app: &TestApp, consent: &str) -> String {
    let mut form = crate::relying_party::hidden_inputs(consent);
    form.push(("latch_consent".into(), "allow".into()));
    let answer = browser.client.post(app.url("/application/o/authorize/")).form(&form).send().await.unwrap();
    location(&answer).expect("a redirect to the app")
}

on_every_backend!(
    https_at_the_root_uses_host_prefixed_cookies,
    a_planted_csrf_cookie_does_not_pass_the_sign_in_form,
    a_sign_in_form_posted_from_another_origin_is_refused,
    a_planted_csrf_cookie_does_not_answer_consent_or_sign_out,
);
