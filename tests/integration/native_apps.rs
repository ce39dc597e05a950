//! Native apps on loopback (RFC 8252 §7.3): an app registered with
//! `http://127.0.0.1/callback` listens on whatever port the system gives it
//! and sends that port; only http loopback URIs get this, and the token
//! endpoint then wants the exact URI the authorization request had.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::{
    Backend, Browser, PASSWORD, TestApp, assert_error_page, code_request, http, location, query_param, token_error,
    token_ok,
};
use crate::on_every_backend;

const REGISTERED: &str = "http://127.0.0.1/callback";

/// What a CLI app does with the one request its listener receives: reads
/// the callback's URL from the request line and answers the browser.
async fn receive_callback(listener: TcpListener) -> url::Url {
    let port = listener.local_addr().expect("address").port();
    let (mut socket, _) = listener.accept().await.expect("the browser comes back");
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = socket.read(&mut buffer).await.expect("read the request");
        assert!(read > 0, "the connection closed before the request ended");
        request.extend_from_slice(&buffer[..read]);
    }
    let request = String::from_utf8_lossy(&request);
    let target = request.split(' ').nth(1).expect("request target");
    let page = "Signed in. You can close this window.";
    let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}", page.len());
    socket.write_all(answer.as_bytes()).await.expect("answer the browser");
    url::Url::parse(&format!("http://127.0.0.1:{port}{target}")).expect("callback URL")
}

/// The flow of a desktop or CLI app, done by the `openidconnect` crate: a
/// public client with PKCE, its redirect URI on the port its listener got.
async fn cli_app_signs_in_on_the_port_the_system_gave_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("cli", &[REGISTERED], &["--public"]).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen on a port the system picks");
    let redirect_uri = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(credentials.issuer.clone()).unwrap(), &http())
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new(credentials.client_id.clone()), None)
        .set_redirect_uri(RedirectUrl::new(redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new();
    let callback = browser.authorize(&app.base, authorize_url.as_str(), "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(&format!("{redirect_uri}?")), "sent back to the listener: {callback}");
    let listening = tokio::spawn(receive_callback(listener));
    let page = browser.client.get(callback.as_str()).send().await.expect("the browser reaches the app");
    assert_eq!(page.status(), StatusCode::OK);
    let received = listening.await.expect("the app got the callback");
    assert_eq!(query_param(&received, "state").as_deref(), Some(state.secret().as_str()));
    let code = query_param(&received, "code").expect("a code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("the code is redeemed with the URI of the request, port included");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("a valid ID token");
    assert_eq!(claims.preferred_username().map(|name| name.as_str()), Some("ada"));
}

/// The port of an http loopback URI is not compared; everything else is,
/// and https or another host gets no allowance. The token endpoint wants
/// exactly the URI the authorization request had.
async fn only_the_port_of_http_loopback_uris_may_differ(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let uris = [REGISTERED, "http://[::1]/callback", "http://localhost/callback", "https://127.0.0.1/callback"];
    let mut with_other = uris.to_vec();
    with_other.push("http://app.example.com/callback");
    let credentials = app.add_app("desktop", &with_other, &[]).await;

    for (sent, registered) in [
        ("http://127.0.0.1:53219/callback", REGISTERED),
        ("http://[::1]:53219/callback", uris[1]),
        ("http://localhost:53219/callback", uris[2]),
    ] {
        let url = app.authorize_url(&code_request(&credentials.client_id, sent, "s"));
        let response = http().get(&url).send().await.unwrap();
        let target = location(&response).unwrap_or_default();
        assert!(target.starts_with("/login"), "{sent} (for {registered}) goes on to sign-in, got {target:?}");
    }

    for (sent, part) in [
        ("https://127.0.0.1:53219/callback", "port"),
        ("http://app.example.com:8080/callback", "port"),
        ("http://127.0.0.1:53219/callback/", "path"),
        ("http://127.0.0.1:53219/other", "path"),
        ("http://127.0.0.1:53219/callback?x=1", "query"),
    ] {
        let url = app.authorize_url(&code_request(&credentials.client_id, sent, "s"));
        let message = assert_error_page(http().get(&url).send().await.unwrap()).await;
        assert!(message.contains(&format!("the {part} differs")), "{sent}: {message}");
        assert!(message.contains("only http://127.0.0.1, http://[::1] and http://localhost"), "{sent}: {message}");
    }

    let sent = "http://127.0.0.1:53219/callback";
    let code = Browser::new().code(&app, &code_request(&credentials.client_id, sent, "s"), "ada", PASSWORD).await;
    for other in [REGISTERED, "http://127.0.0.1:53220/callback"] {
        let body =
            token_error(app.redeem(&credentials, &code, other, None).await, StatusCode::BAD_REQUEST, "invalid_grant")
                .await;
        assert!(body["error_description"].as_str().unwrap_or_default().contains("redirect_uri"), "{body}");
    }
    token_ok(app.redeem(&credentials, &code, sent, None).await).await;
}

on_every_backend!(cli_app_signs_in_on_the_port_the_system_gave_it, only_the_port_of_http_loopback_uris_may_differ);
