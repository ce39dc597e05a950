//! UserInfo (OIDC Core §5.3, RFC 6750): the three ways to present a token,
//! and the challenges for a missing or bad one.

use reqwest::StatusCode;

use crate::common::{Backend, Browser, CALLBACK, PASSWORD, TestApp, code_request, header, http, jwt_part, token_ok};
use crate::on_every_backend;

/// A server with `ada` signed in to app `web`: returns it with the token response.
async fn signed_in(backend: Backend) -> Option<(TestApp, serde_json::Value)> {
    let app = TestApp::spawn(backend).await?;
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("web", &[CALLBACK], &[]).await;
    let code = Browser::new().code(&app, &code_request(&credentials.client_id, CALLBACK, "s"), "ada", PASSWORD).await;
    let tokens = token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;
    Some((app, tokens))
}

async fn userinfo_json(response: reqwest::Response, how: &str) -> serde_json::Value {
    assert_eq!(response.status(), StatusCode::OK, "{how}");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{how}: {content_type}");
    response.json().await.expect("JSON")
}

async fn get_post_header_and_post_body_give_the_same_sub(backend: Backend) {
    let Some((app, tokens)) = signed_in(backend).await else { return };
    let access_token = tokens["access_token"].as_str().unwrap();
    let sub = jwt_part(tokens["id_token"].as_str().unwrap(), 1)["sub"].clone();
    assert!(sub.is_string());
    let endpoint = app.url("/application/o/userinfo/");

    let get = userinfo_json(http().get(&endpoint).bearer_auth(access_token).send().await.unwrap(), "GET").await;
    let post_header =
        userinfo_json(http().post(&endpoint).bearer_auth(access_token).send().await.unwrap(), "POST header").await;
    let post_body = http().post(&endpoint).form(&[("access_token", access_token)]).send().await.unwrap();
    let post_body = userinfo_json(post_body, "POST body").await;

    for (how, claims) in [("GET", &get), ("POST header", &post_header), ("POST body", &post_body)] {
        assert_eq!(claims["sub"], sub, "{how}: {claims}");
        assert_eq!(claims["email"], "ada@example.com", "{how}: {claims}");
        assert_eq!(claims["preferred_username"], "ada", "{how}: {claims}");
    }
}

/// RFC 6750 §3.1: no token, a bare challenge with no error code; a bad
/// token, `error="invalid_token"`.
async fn missing_or_bad_tokens_get_bearer_challenges(backend: Backend) {
    let Some((app, tokens)) = signed_in(backend).await else { return };
    let endpoint = app.url("/application/o/userinfo/");
    for request in [http().get(&endpoint), http().post(&endpoint)] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = header(&response, "www-authenticate").expect("WWW-Authenticate");
        assert_eq!(challenge, "Bearer realm=\"latch\"", "no error code when no token was sent");
    }

    // A real token with its payload altered, an ID token, and tokens that are not JWTs at all.
    let access_token = tokens["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = access_token.split('.').map(str::to_owned).collect();
    let mut claims = jwt_part(access_token, 1);
    claims["sub"] = "someone-else".into();
    use base64::Engine;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");
    let id_token = tokens["id_token"].as_str().unwrap();
    for token in ["garbage", "a.b.c", tampered.as_str(), id_token] {
        let response = app.userinfo(token).await;
        let challenge = header(&response, "www-authenticate").unwrap_or_default();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        assert!(challenge.starts_with("Bearer"), "{challenge:?}");
        assert!(challenge.contains("error=\"invalid_token\""), "token {token:?}: {challenge:?}");
    }
    let response = http().post(&endpoint).form(&[("access_token", "garbage")]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "garbage in the form body");
    // The untouched token still works.
    assert_eq!(app.userinfo(access_token).await.status(), StatusCode::OK);
}

on_every_backend!(get_post_header_and_post_body_give_the_same_sub, missing_or_bad_tokens_get_bearer_challenges);
