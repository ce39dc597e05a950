//! Requests refused before any handler answers them (issue 11 item 10): a
//! body over the limit, a method an address does not take, a path that is
//! not UTF-8, an address with no route. Each answer is in its endpoint's
//! format: RFC 6749 §5.2 JSON at the token, revocation, introspection,
//! discovery and JWKS endpoints, a Bearer challenge at UserInfo, an HTML
//! page everywhere a browser goes, plain text at health and metrics.

use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Backend, TestApp, alert_text, header, http, token_error};
use crate::on_every_backend;

/// The endpoints answering in RFC 6749 §5.2 JSON, with a method each takes.
const OAUTH_ENDPOINTS: [&str; 3] = ["/application/o/token/", "/application/o/revoke/", "/application/o/introspect/"];

/// Pages that take a posted form.
const FORM_PAGES: [&str; 4] =
    ["/login", "/application/o/authorize/", "/application/o/grafana/end-session/", "/outpost.goauthentik.io/sign_out"];

/// An HTML error page with `status`, no redirect; returns its message.
async fn assert_page(response: reqwest::Response, status: StatusCode, what: &str) -> String {
    assert_eq!(response.status(), status, "{what}");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{what}: content type {content_type:?}");
    let html = response.text().await.expect("page");
    alert_text(&html).unwrap_or_else(|| panic!("{what}: no error message on the page: {html}"))
}

/// RFC 6750 §3: `status`, a Bearer challenge naming `invalid_request`, JSON.
async fn assert_bearer_invalid_request(response: reqwest::Response, status: StatusCode, what: &str) {
    assert_eq!(response.status(), status, "{what}");
    let challenge = header(&response, "www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_request\""), "{what}: {challenge}");
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(body["error"], "invalid_request", "{what}: {body}");
}

fn oversized() -> String {
    format!("grant_type=authorization_code&code=x&padding={}", "a".repeat(100 * 1024))
}

async fn post_form(app: &TestApp, path: &str, body: String) -> reqwest::Response {
    http()
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"))
}

/// A body over 64 KiB is a 413 in the endpoint's format, whether its
/// length is declared or it comes in chunks.
async fn oversized_bodies_are_refused_in_the_endpoints_format(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    for path in OAUTH_ENDPOINTS {
        let body =
            token_error(post_form(&app, path, oversized()).await, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request")
                .await;
        assert!(body["error_description"].as_str().unwrap_or_default().contains("64 KiB"), "{path}: {body}");
    }
    let userinfo = post_form(&app, "/application/o/userinfo/", oversized()).await;
    assert_bearer_invalid_request(userinfo, StatusCode::PAYLOAD_TOO_LARGE, "userinfo").await;
    for path in FORM_PAGES {
        let message = assert_page(post_form(&app, path, oversized()).await, StatusCode::PAYLOAD_TOO_LARGE, path).await;
        assert!(message.contains("64 KiB"), "POST {path}: {message}");
    }
    // No declared length: the limit holds as the chunks arrive.
    let answer = chunked_post(&app, "/application/o/token/", &oversized()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.to_lowercase().contains("content-type: application/json"), "{answer}");
    assert!(answer.contains("\"invalid_request\""), "{answer}");
}

/// POSTs `body` in 8 KiB chunks on a connection of its own; the answer's text.
async fn chunked_post(app: &TestApp, path: &str, body: &str) -> String {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: latch\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    for chunk in body.as_bytes().chunks(8 * 1024) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and close before the last chunk.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A method an address does not take is a 405 with `Allow`, in the
/// endpoint's format.
async fn methods_not_taken_are_405_in_the_endpoints_format(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let send = |method: Method, path: &str| http().request(method, app.url(path)).send();
    for path in OAUTH_ENDPOINTS {
        let response = send(Method::GET, path).await.expect("GET");
        assert_eq!(header(&response, "allow").as_deref(), Some("POST"), "GET {path}");
        token_error(response, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
    }
    for path in ["/application/o/grafana/.well-known/openid-configuration", "/application/o/grafana/jwks/"] {
        let response = send(Method::POST, path).await.expect("POST");
        token_error(response, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
    }
    let userinfo = send(Method::PUT, "/application/o/userinfo/").await.expect("PUT");
    assert_bearer_invalid_request(userinfo, StatusCode::METHOD_NOT_ALLOWED, "PUT userinfo").await;
    for (method, path) in [
        (Method::DELETE, "/login"),
        (Method::PUT, "/application/o/authorize/"),
        (Method::PATCH, "/application/o/grafana/end-session/"),
        (Method::POST, "/outpost.goauthentik.io/start"),
        (Method::PUT, "/"),
    ] {
        let response = send(method.clone(), path).await.expect("request");
        assert!(header(&response, "allow").is_some(), "{method} {path}: no Allow");
        assert_page(response, StatusCode::METHOD_NOT_ALLOWED, &format!("{method} {path}")).await;
    }
    // Health and metrics speak plain text.
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let response = send(Method::POST, path).await.expect("POST");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
        assert_eq!(header(&response, "allow").as_deref(), Some("GET,HEAD"), "POST {path}");
        let content_type = header(&response, "content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/plain"), "POST {path}: {content_type:?}");
        assert!(!response.text().await.expect("body").is_empty(), "POST {path}: an empty answer");
    }
}

/// A path parameter that is not UTF-8 is a 400, and an address with no
/// route a 404 page.
async fn unreadable_paths_and_unknown_addresses_are_in_format(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    for path in ["/application/o/%FF/jwks/", "/application/o/%FF/.well-known/openid-configuration"] {
        let response = http().get(app.url(path)).send().await.expect("GET");
        token_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let response = http().get(app.url("/application/o/%FF/end-session/")).send().await.expect("GET");
    assert_page(response, StatusCode::BAD_REQUEST, "end-session with a bad slug").await;
    for path in ["/nowhere", "/application/o/token", "/application/o/grafana/jwks"] {
        let response = http().get(app.url(path)).send().await.expect("GET");
        assert_page(response, StatusCode::NOT_FOUND, path).await;
    }
}

on_every_backend!(
    oversized_bodies_are_refused_in_the_endpoints_format,
    methods_not_taken_are_405_in_the_endpoints_format,
    unreadable_paths_and_unknown_addresses_are_in_format,
);
