//! CORS on the endpoints browser apps call from other origins (token,
//! UserInfo, revocation, introspection, discovery wherever it is served,
//! JWKS): the preflight allows the headers OAuth libraries send, and the
//! answers let the app read `WWW-Authenticate`. The authorization endpoint
//! gets no CORS.

use reqwest::{Method, StatusCode};

use crate::common::{Backend, CALLBACK, TestApp, header, http};
use crate::discovery::discovery_paths;
use crate::on_every_backend;

const ORIGIN: &str = "https://spa.example.com";
const REQUEST_HEADERS: [&str; 4] = ["authorization", "content-type", "x-requested-with", "dpop"];

/// Each cross-origin endpoint with a method it answers.
fn endpoints(app: &TestApp) -> Vec<(Method, String)> {
    let mut endpoints = vec![
        (Method::POST, app.url("/application/o/token/")),
        (Method::GET, app.url("/application/o/userinfo/")),
        (Method::POST, app.url("/application/o/userinfo/")),
        (Method::POST, app.url("/application/o/revoke/")),
        (Method::POST, app.url("/application/o/introspect/")),
        (Method::GET, app.url("/application/o/spa/jwks/")),
    ];
    endpoints.extend(discovery_paths("spa").into_iter().map(|path| (Method::GET, app.url(&path))));
    endpoints
}

/// A comma-separated header's values, lower-cased.
fn list(response: &reqwest::Response, name: &str) -> Vec<String> {
    let value = header(response, name).unwrap_or_default();
    value.split(',').map(|item| item.trim().to_ascii_lowercase()).filter(|item| !item.is_empty()).collect()
}

async fn preflight_allows_the_request_headers_oauth_clients_send(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_app("spa", &[CALLBACK], &[]).await;
    for (method, url) in endpoints(&app) {
        let response = http()
            .request(Method::OPTIONS, &url)
            .header("origin", ORIGIN)
            .header("access-control-request-method", method.as_str())
            .header("access-control-request-headers", REQUEST_HEADERS.join(", "))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "preflight of {method} {url}");
        assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"), "{method} {url}");
        let allowed = list(&response, "access-control-allow-headers");
        for wanted in REQUEST_HEADERS {
            assert!(allowed.iter().any(|name| name == wanted), "{method} {url}: {wanted} not in {allowed:?}");
        }
        let methods = list(&response, "access-control-allow-methods");
        assert!(methods.contains(&method.as_str().to_ascii_lowercase()), "{method} {url}: {methods:?}");
    }

    let response = http()
        .request(Method::OPTIONS, app.url("/application/o/authorize/"))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "access-control-allow-origin"), None, "no CORS on the authorization endpoint");
}

/// Refusals carry a `WWW-Authenticate` challenge the browser app may read;
/// every answer, refusal or not, exposes it.
async fn answers_expose_www_authenticate(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let credentials = app.add_app("spa", &[CALLBACK], &[]).await;
    for (method, url) in endpoints(&app) {
        // A wrong secret for the client-authenticated endpoints, no token for UserInfo.
        let request = http().request(method.clone(), &url).header("origin", ORIGIN);
        let request = if url.contains("/userinfo/") || method == Method::GET {
            request
        } else {
            request.basic_auth(&credentials.client_id, Some("wrong")).form(&[("token", "x")])
        };
        let response = request.send().await.unwrap();
        assert_eq!(header(&response, "access-control-allow-origin").as_deref(), Some("*"), "{method} {url}");
        let exposed = list(&response, "access-control-expose-headers");
        assert!(exposed.iter().any(|name| name == "www-authenticate"), "{method} {url}: exposes {exposed:?}");
        if response.status() == StatusCode::UNAUTHORIZED {
            assert!(header(&response, "www-authenticate").is_some(), "{method} {url}: a 401 carries a challenge");
        } else {
            assert_eq!(response.status(), StatusCode::OK, "{method} {url}");
        }
    }
}

on_every_backend!(preflight_allows_the_request_headers_oauth_clients_send, answers_expose_www_authenticate);
