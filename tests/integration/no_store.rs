//! Pages with personal data or forms, and redirects that carry codes or
//! where to go next, are never cached: `Cache-Control: no-store` on the
//! login page (also when it echoes a failed username), consent, every page
//! that shows who is signed in, error pages, sign-out pages and the
//! redirects of a sign-in.

use reqwest::StatusCode;

use crate::common::{Backend, Browser, PASSWORD, absolute, header, location};
use crate::on_every_backend;
use crate::relying_party::{Landing, Rp, confirm_sign_out, server};

fn assert_no_store(response: &reqwest::Response, what: &str) {
    let cache_control = header(response, "cache-control").unwrap_or_default();
    assert!(
        cache_control.split(',').any(|directive| directive.trim().eq_ignore_ascii_case("no-store")),
        "{what} ({}) must not be cached, Cache-Control: {cache_control:?}",
        response.status()
    );
}

async fn pages_with_personal_data_or_forms_are_never_cached(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    let rp = Rp::register(&app, "web", &["--consent", "explicit"]).await;
    let proxied = "http://proxied.example.com";
    app.admin(&["app", "add", "wiki", "--name", "Wiki", "--proxy", "--external-url", proxied, "--group", "staff"])
        .await;
    let browser = Browser::new();
    let client = &browser.client;

    let authorize = rp.authorize_url(&rp.request("openid", "s"));
    let to_login = client.get(&authorize).send().await.unwrap();
    assert_no_store(&to_login, "the redirect to the login page");
    let login_url = absolute(&app.base, &location(&to_login).expect("Location"));
    let page = client.get(&login_url).send().await.unwrap();
    assert_no_store(&page, "the login page");
    let html = page.text().await.unwrap();

    let failed = browser.submit_login(&app.base, "", &html, "ada-typed-this", "wrong").await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    assert_no_store(&failed, "the failed-login page");
    assert!(failed.text().await.unwrap().contains("ada-typed-this"), "it echoes the username");

    let signed_in = browser.submit_login(&app.base, "", &html, "ada", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_no_store(&signed_in, "the redirect after signing in");
    let consent = client.get(absolute(&app.base, &location(&signed_in).unwrap())).send().await.unwrap();
    assert_no_store(&consent, "the consent page");
    let mut form = crate::relying_party::hidden_inputs(&consent.text().await.unwrap());
    form.push(("latch_consent".into(), "allow".into()));
    let with_code = client.post(app.url("/application/o/authorize/")).form(&form).send().await.unwrap();
    assert!(location(&with_code).unwrap_or_default().contains("code="), "a redirect with a code");
    assert_no_store(&with_code, "the redirect that carries a code");

    let home = client.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert_no_store(&home, "the signed-in page");
    let bad_request = client.get(app.url("/application/o/authorize/?client_id=nobody")).send().await.unwrap();
    assert_eq!(bad_request.status(), StatusCode::BAD_REQUEST);
    assert_no_store(&bad_request, "an authorization error page");
    let sso = format!("/outpost.goauthentik.io/sso?rd={proxied}/&state=st");
    let forbidden = client.get(app.url(&sso)).send().await.unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_no_store(&forbidden, "the forward-auth no-access page");

    let end_session = app.url("/application/o/web/end-session/");
    let confirm = client.get(&end_session).send().await.unwrap();
    assert_no_store(&confirm, "the sign-out confirmation");
    let signed_out = confirm_sign_out(client, &end_session, confirm).await;
    assert_eq!(signed_out.status(), StatusCode::OK);
    assert_no_store(&signed_out, "the signed-out page");
    let landing = crate::relying_party::open(&browser, &app.base, &authorize).await;
    assert!(matches!(landing, Landing::Login(_)), "signed out");
}

on_every_backend!(pages_with_personal_data_or_forms_are_never_cached);
