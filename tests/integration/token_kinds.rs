//! A token is accepted only where its kind is expected: an access token
//! (`typ: at+jwt`, RFC 9068) is no `id_token_hint`, an ID token no bearer
//! token, a refresh token neither; `token_type_hint` is only a hint
//! (RFC 7009 §2.1) and never makes one kind pass for another.

use reqwest::StatusCode;

use crate::common::{Backend, Browser};
use crate::on_every_backend;
use crate::relying_party::{Rp, confirm_sign_out, http, jwt, server, string, userinfo_status};

const SIGNED_OUT: &str = "https://app.example.com/signed-out";

/// Tokens of `ada` with a refresh token, signed in in `browser`.
async fn tokens(rp: &Rp, browser: &Browser) -> serde_json::Value {
    rp.tokens(browser, "openid profile offline_access", "ada").await
}

async fn an_access_token_is_no_id_token_hint(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--post-logout-redirect-uri", SIGNED_OUT]).await;
    let browser = Browser::new();
    let tokens = tokens(&rp, &browser).await;
    let access_token = string(&tokens, "access_token");
    assert_eq!(jwt(access_token, 0)["typ"], "at+jwt");

    // At authorize with prompt=none: refused as a hint, no code.
    for state in ["live", "revoked"] {
        if state == "revoked" {
            assert_eq!(rp.revoke(access_token, Some("access_token")).await.status(), StatusCode::OK);
        }
        let mut params = rp.request("openid", state);
        params.extend([("prompt".into(), "none".into()), ("id_token_hint".into(), access_token.to_owned())]);
        rp.assert_error(&rp.authorize_once(&browser, &params).await, "invalid_request", state);
    }

    // At end-session: the person is asked, nobody is signed out, and the
    // browser is not sent back to the app on the strength of it.
    let end_session = app.url("/application/o/web/end-session/");
    let query = [("id_token_hint", access_token), ("post_logout_redirect_uri", SIGNED_OUT)];
    let page = browser.client.get(&end_session).query(&query).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the confirmation page, not a sign-out");
    let home = browser.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK, "still signed in");
    let answer = confirm_sign_out(&browser.client, &end_session, page).await;
    assert_eq!(answer.status(), StatusCode::OK, "signed out, but not sent to the app with a bad hint");
    // The ID token itself is still a good hint.
    let id_token = string(&tokens, "id_token");
    let query = [("id_token_hint", id_token), ("post_logout_redirect_uri", SIGNED_OUT)];
    let back = http().get(&end_session).query(&query).send().await.unwrap();
    assert!(back.status().is_redirection(), "{}", back.status());
}

async fn only_an_access_token_is_a_bearer_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = tokens(&rp, &Browser::new()).await;
    let (access_token, id_token) = (string(&tokens, "access_token"), string(&tokens, "id_token"));
    let refresh_token = string(&tokens, "refresh_token");
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::OK);
    for other in [id_token, refresh_token] {
        assert_eq!(userinfo_status(&rp, other).await, StatusCode::UNAUTHORIZED);
    }
    // Introspection: an ID token is no token of this server's to report on.
    rp.assert_inactive(id_token, "an ID token").await;
    // Revocation with a hint naming the wrong kind still finds the right one,
    // and an ID token revokes nothing.
    for hint in ["access_token", "refresh_token"] {
        assert_eq!(rp.revoke(id_token, Some(hint)).await.status(), StatusCode::OK);
    }
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::OK, "an ID token revoked nothing");
    assert_eq!(rp.revoke(access_token, Some("refresh_token")).await.status(), StatusCode::OK);
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rp.revoke(refresh_token, Some("access_token")).await.status(), StatusCode::OK);
    rp.assert_inactive(refresh_token, "a revoked refresh token").await;
}

on_every_backend!(an_access_token_is_no_id_token_hint, only_an_access_token_is_a_bearer_token);
