//! Errors name their cause: a request that is wrong in a way a developer
//! can fix is told which way, in its endpoint's own format (RFC 6749 §5.2
//! JSON at token, revocation and introspection; RFC 6750 at UserInfo; a page
//! at authorization and sign-out), instead of a symptom such as
//! "grant_type is required" for a JSON body.

use base64::Engine;
use reqwest::StatusCode;

use crate::common::{
    Backend, Browser, Options, PASSWORD, TestApp, assert_error_page, assert_error_redirect, code_request, header,
    location,
};
use crate::on_every_backend;
use crate::relying_party::{CALLBACK, Rp, http, server, string, token_error, token_ok};

/// The `error_description` of a token-endpoint-style error, which must contain `cause`.
const FORM: &str = "application/x-www-form-urlencoded";

async fn described(response: reqwest::Response, status: StatusCode, error: &str, cause: &str) {
    let body = token_error(response, status, error).await;
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(cause), "expected {cause:?} in {body}");
}

/// The token, revocation and introspection endpoints take form bodies; any
/// other body is named for what it is.
async fn bodies_that_are_not_forms_are_named(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let secret = rp.credentials.client_secret.clone().unwrap();
    let json = serde_json::json!({"grant_type": "client_credentials", "token": "x"}).to_string();
    for field in ["token_endpoint", "revocation_endpoint", "introspection_endpoint"] {
        let post = || http().post(rp.endpoint(field)).basic_auth(rp.client_id(), Some(&secret));
        let response = post().header("content-type", "application/json").body(json.clone()).send().await.unwrap();
        described(
            response,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "is application/json; it must be sent as application/x-www-form-urlencoded",
        )
        .await;
        let response = post().body("grant_type=client_credentials&token=x").send().await.unwrap();
        described(response, StatusCode::BAD_REQUEST, "invalid_request", "no Content-Type").await;
        let response =
            post().header("content-type", "multipart/form-data; boundary=x").body("--x--").send().await.unwrap();
        described(response, StatusCode::BAD_REQUEST, "invalid_request", "multipart/form-data").await;
        // Bytes that are not UTF-8 once decoded are named, not replaced and
        // then refused for a missing parameter.
        let not_text = [&b"grant_type=client_credentials&token=%FF"[..], &b"grant_type=\xff&token=\xff"[..]];
        for body in not_text {
            let response = post().header("content-type", FORM).body(body.to_vec()).send().await.unwrap();
            described(response, StatusCode::BAD_REQUEST, "invalid_request", "not UTF-8").await;
        }
    }
    // A form with a charset is a form.
    let response = http()
        .post(rp.endpoint("token_endpoint"))
        .basic_auth(rp.client_id(), Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded; charset=UTF-8")
        .body("grant_type=urn:example:unknown")
        .send()
        .await
        .unwrap();
    described(
        response,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        "grant_type urn:example:unknown is not supported",
    )
    .await;
}

/// The endpoints that take POST say so to a GET, in their JSON format.
async fn other_methods_than_post_are_named(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    for field in ["token_endpoint", "revocation_endpoint", "introspection_endpoint"] {
        for method in [reqwest::Method::GET, reqwest::Method::PUT] {
            let response = http().request(method.clone(), rp.endpoint(field)).send().await.unwrap();
            assert_eq!(header(&response, "allow").as_deref(), Some("POST"), "{method} {field}");
            let cause = format!("takes POST with a form body, not {method}");
            described(response, StatusCode::METHOD_NOT_ALLOWED, "invalid_request", &cause).await;
        }
    }
}

/// Each way client authentication can be wrong says which.
async fn client_authentication_errors_name_their_cause(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let secret = rp.credentials.client_secret.clone().unwrap();
    let token = rp.endpoint("token_endpoint");
    let grant = [("grant_type", "client_credentials")];
    let post = || http().post(&token);

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str, &str)> = vec![
        (
            post()
                .basic_auth(rp.client_id(), Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("client_secret", &secret)]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "both in the Authorization header and in the body",
        ),
        (
            post()
                .basic_auth(rp.client_id(), Some(&secret))
                .form(&[("grant_type", "client_credentials"), ("client_id", "someone-else")]),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id differs from the Authorization header",
        ),
        (
            post().header("authorization", "Basic !!!").form(&grant),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "not valid base64",
        ),
        (
            post()
                .header(
                    "authorization",
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(rp.client_id())),
                )
                .form(&grant),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no colon",
        ),
        (post().bearer_auth("a-token").form(&grant), StatusCode::UNAUTHORIZED, "invalid_client", "Basic scheme"),
        (post().form(&grant), StatusCode::UNAUTHORIZED, "invalid_client", "client authentication is required"),
        (
            post().form(&[("grant_type", "client_credentials"), ("client_secret", &secret)]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "without client_id",
        ),
        (
            post().form(&[("grant_type", "client_credentials"), ("client_id", rp.client_id())]),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "this client is confidential",
        ),
        (
            post().basic_auth("no-such-client", Some(&secret)).form(&grant),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no client is registered",
        ),
        (
            post().basic_auth(rp.client_id(), Some("wrong")).form(&grant),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret is wrong",
        ),
        // Authenticated, but the app has not enabled the grant.
        (
            post().basic_auth(rp.client_id(), Some(&secret)).form(&grant),
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "not enabled for this app",
        ),
    ];
    for (request, status, error, cause) in cases {
        described(request.send().await.unwrap(), status, error, cause).await;
    }
}

/// UserInfo says why it has no token, or why the token is refused.
async fn userinfo_errors_name_their_cause(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let robot = Rp::register(&app, "robot", &["--client-credentials"]).await;
    let tokens = rp.tokens(&Browser::new(), "openid", "ada").await;
    let access_token = string(&tokens, "access_token");
    let endpoint = rp.endpoint("userinfo_endpoint");

    let bad_request = |request: reqwest::RequestBuilder, cause: &'static str| async move {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{cause}");
        let challenge = header(&response, "www-authenticate").unwrap_or_default();
        assert!(challenge.contains("error=\"invalid_request\"") && challenge.contains(cause), "{challenge}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error_description"].as_str().unwrap_or_default().contains(cause), "{body}");
    };
    let json = serde_json::json!({"access_token": access_token}).to_string();
    bad_request(
        http().post(&endpoint).header("content-type", "application/json").body(json),
        "is application/json; it must be sent as application/x-www-form-urlencoded",
    )
    .await;
    let query = format!("{endpoint}?access_token={access_token}");
    bad_request(http().get(&query), "URL query").await;
    bad_request(http().get(&endpoint).basic_auth("a", Some("b")), "Bearer scheme").await;
    bad_request(http().get(&endpoint).header("authorization", "Bearer "), "no token after Bearer").await;
    bad_request(http().post(&endpoint).bearer_auth(access_token).form(&[("access_token", access_token)]), "both").await;
    let twice = format!("access_token={access_token}&access_token={access_token}");
    let form = "application/x-www-form-urlencoded";
    bad_request(http().post(&endpoint).header("content-type", form).body(twice), "more than once").await;

    // A JSON body beside a Bearer header is no concern of UserInfo's.
    let response = http().post(&endpoint).bearer_auth(access_token).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let client_token = token_ok(robot.token_request(&[("grant_type", "client_credentials")]).await).await;
    let invalid_token = |token: String, cause: &'static str| {
        let endpoint = endpoint.clone();
        async move {
            let response = http().get(&endpoint).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cause}");
            let challenge = header(&response, "www-authenticate").unwrap_or_default();
            assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains(cause), "{challenge}");
        }
    };
    invalid_token(string(&client_token, "access_token").to_owned(), "client_credentials").await;
    invalid_token(string(&tokens, "id_token").to_owned(), "not an access token signed by Latch").await;
    assert_eq!(rp.revoke(access_token, None).await.status(), StatusCode::OK);
    invalid_token(access_token.to_owned(), "was revoked").await;
}

/// An expired access token is called expired, not "invalid, expired or revoked".
async fn userinfo_says_when_a_token_has_expired(backend: Backend) {
    let options = Options { access_token_ttl: Some("1s"), ..Default::default() };
    let Some(app) = TestApp::spawn_with(backend, options).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), "openid", "ada").await;
    app.clock.advance(2);
    let response = app.userinfo(string(&tokens, "access_token")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains("has expired"), "{challenge}");
}

/// The pages: an authorization request POSTed as JSON, an unsupported
/// response type, and a sign-out that does not return to the app.
async fn authorization_and_sign_out_errors_name_their_cause(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let authorize = rp.endpoint("authorization_endpoint");
    let params: serde_json::Map<String, serde_json::Value> = code_request(rp.client_id(), CALLBACK, "s")
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into()))
        .collect();
    let response = http().post(&authorize).json(&params).send().await.unwrap();
    let message = assert_error_page(response).await;
    assert!(message.contains("application/json") && message.contains("application/x-www-form-urlencoded"), "{message}");

    let mut token_flow = rp.request("openid", "s1");
    token_flow.retain(|(name, _)| name != "response_type");
    token_flow.push(("response_type".into(), "id_token token".into()));
    let response = http().get(rp.authorize_url(&token_flow)).send().await.unwrap();
    assert_error_redirect(&response, CALLBACK, "unsupported_response_type", "s1", &rp.issuer);
    let target = url::Url::parse(&location(&response).unwrap()).unwrap();
    let description = crate::common::query_param(&target, "error_description").unwrap_or_default();
    assert!(description.contains("response_type id_token token is not supported"), "{description}");

    // Not signed in, so no confirmation is asked; the target is not registered.
    let end_session = rp.endpoint("end_session_endpoint");
    let target = "https://app.example.com/signed-out";
    let response = http().get(&end_session).query(&[("post_logout_redirect_uri", target)]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("not registered for it as a post-logout redirect URI"), "{html}");
    assert!(!html.contains("app.example.com"), "the unregistered target is not shown: {html}");
    let response =
        http().post(&end_session).json(&serde_json::json!({"post_logout_redirect_uri": target})).send().await.unwrap();
    let message = assert_error_page(response).await;
    assert!(message.contains("application/json"), "{message}");
    let unknown = end_session.replace("/web/", "/nope/");
    let message = assert_error_page(http().get(&unknown).send().await.unwrap()).await;
    assert!(message.contains("no application has the slug nope"), "{message}");
}

on_every_backend!(
    other_methods_than_post_are_named,
    bodies_that_are_not_forms_are_named,
    client_authentication_errors_name_their_cause,
    userinfo_errors_name_their_cause,
    userinfo_says_when_a_token_has_expired,
    authorization_and_sign_out_errors_name_their_cause,
);
