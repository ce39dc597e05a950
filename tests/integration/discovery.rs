//! Discovery (OIDC Discovery 1.0, Config OP checks) and the JWK Set.

use reqwest::StatusCode;

use crate::common::{Backend, Browser, CALLBACK, PASSWORD, TestApp, code_request, header, http, jwt_part, token_ok};
use crate::on_every_backend;

const SUFFIX: &str = ".well-known/openid-configuration";

async fn get_json(url: &str) -> serde_json::Value {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {url}");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "GET {url}: {content_type}");
    response.json().await.expect("JSON")
}

fn strings(document: &serde_json::Value, field: &str) -> Vec<String> {
    let values = document[field].as_array().unwrap_or_else(|| panic!("{field} must be an array: {document}"));
    values.iter().map(|value| value.as_str().expect("strings").to_owned()).collect()
}

fn absolute_url(document: &serde_json::Value, field: &str) -> url::Url {
    let raw = document[field].as_str().unwrap_or_else(|| panic!("{field} missing"));
    let url = url::Url::parse(raw).unwrap_or_else(|error| panic!("{field} {raw:?} is not absolute: {error}"));
    assert!(matches!(url.scheme(), "http" | "https"), "{field}: {raw}");
    url
}

/// Config OP checks; an unknown slug has no document and no JWKS.
async fn discovery_document_has_the_issuer_and_required_fields(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let credentials = app.add_app("grafana", &[CALLBACK], &[]).await;
    let document = get_json(&credentials.discovery_url).await;

    let issuer = document["issuer"].as_str().expect("issuer");
    assert_eq!(Some(issuer), credentials.discovery_url.strip_suffix(SUFFIX));
    assert_eq!(issuer, app.issuer("grafana"));
    let parsed = url::Url::parse(issuer).unwrap();
    assert!(parsed.query().is_none() && parsed.fragment().is_none() && parsed.username().is_empty());

    for field in ["authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"] {
        absolute_url(&document, field);
    }
    assert!(strings(&document, "response_types_supported").contains(&"code".into()));
    assert!(strings(&document, "subject_types_supported").contains(&"public".into()));
    assert!(strings(&document, "id_token_signing_alg_values_supported").contains(&"RS256".into()));
    assert!(strings(&document, "scopes_supported").contains(&"openid".into()));
    assert!(!strings(&document, "claims_supported").is_empty());
    assert!(!strings(&document, "grant_types_supported").is_empty());
    assert!(strings(&document, "code_challenge_methods_supported").contains(&"S256".into()));
    let auth_methods = strings(&document, "token_endpoint_auth_methods_supported");
    for used in ["client_secret_basic", "client_secret_post"] {
        assert!(auth_methods.contains(&used.into()), "{used} is used but not advertised: {auth_methods:?}");
    }

    // What is advertised answers.
    let jwks = get_json(absolute_url(&document, "jwks_uri").as_str()).await;
    assert!(jwks["keys"].as_array().is_some_and(|keys| !keys.is_empty()));
    let userinfo = http().get(absolute_url(&document, "userinfo_endpoint")).send().await.unwrap();
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);

    // An unknown slug has neither a document nor a JWK Set.
    for path in ["/application/o/nope/.well-known/openid-configuration", "/application/o/nope/jwks/"] {
        let response = http().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
    }
}

/// The JWK Set holds public keys only, each with its own `kid`; the ID
/// token's header names one of them and RS256.
async fn jwks_is_public_and_names_the_id_token_key(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("grafana", &[CALLBACK], &[]).await;
    let code = Browser::new().code(&app, &code_request(&credentials.client_id, CALLBACK, "s"), "ada", PASSWORD).await;
    let tokens = token_ok(app.redeem(&credentials, &code, CALLBACK, None).await).await;
    let header = jwt_part(tokens["id_token"].as_str().unwrap(), 0);
    assert_eq!(header["alg"], "RS256", "{header}");
    let kid = header["kid"].as_str().unwrap_or_else(|| panic!("no kid in {header}"));

    let jwks = get_json(&app.url("/application/o/grafana/jwks/")).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    let mut kids = Vec::new();
    for key in keys {
        for private in ["d", "p", "q", "dp", "dq", "qi", "k", "oth"] {
            assert!(key.get(private).is_none(), "private member {private} published: {key}");
        }
        // No app here asks for another algorithm than the default.
        assert!(key["kty"] == "RSA" && key["alg"] == "RS256" && key["use"] == "sig", "{key}");
        assert!(key["n"].is_string() && key["e"].is_string(), "{key}");
        let kid = key["kid"].as_str().unwrap_or_else(|| panic!("no kid: {key}"));
        assert!(!kid.is_empty());
        kids.push(kid.to_owned());
    }
    let count = kids.len();
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), count, "kids must be distinct");

    let matching: Vec<_> = jwks["keys"].as_array().unwrap().iter().filter(|key| key["kid"] == kid).collect();
    assert_eq!(matching.len(), 1, "kid {kid} must name exactly one published key");
}

/// Each instance remembers for a second that an app exists, so that the
/// documents every relying party polls cost no database read; a removed
/// app's documents are gone once that second has passed on its clock.
async fn documents_of_a_removed_app_are_gone_within_a_second(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_app("grafana", &[CALLBACK], &[]).await;
    let documents = [format!("/application/o/grafana/{SUFFIX}"), "/application/o/grafana/jwks/".to_owned()];
    for path in &documents {
        get_json(&app.url(path)).await;
    }
    app.admin(&["app", "remove", "grafana"]).await;
    app.clock.advance(1);
    for path in &documents {
        let response = http().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path} after the app was removed");
    }
}

/// Every path that serves an app's discovery document: the standard one,
/// the issuer with its trailing slash kept and the suffix appended
/// (django-allauth), and RFC 8414 §3.1's form, the suffix between host and
/// issuer path, which drops the issuer's trailing slash (kept by some
/// clients), for `oauth-authorization-server` and its OIDC twin.
pub fn discovery_paths(slug: &str) -> Vec<String> {
    let mut paths = vec![format!("/application/o/{slug}/{SUFFIX}"), format!("/application/o/{slug}//{SUFFIX}")];
    for well_known in ["oauth-authorization-server", "openid-configuration"] {
        paths.push(format!("/.well-known/{well_known}/application/o/{slug}"));
        paths.push(format!("/.well-known/{well_known}/application/o/{slug}/"));
    }
    paths
}

/// The same document, issuer unchanged (RFC 8414 §3.3), wherever a client
/// looks; a client library reads it from each place; an unknown slug has
/// none anywhere; and the host's root says where the documents are.
async fn discovery_is_found_where_clients_look_for_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let credentials = app.add_app("grafana", &[CALLBACK], &[]).await;
    let standard = get_json(&credentials.discovery_url).await;
    for path in discovery_paths("grafana") {
        let document = get_json(&app.url(&path)).await;
        assert_eq!(document, standard, "GET {path}");
        let metadata: openidconnect::core::CoreProviderMetadata =
            serde_json::from_value(document).unwrap_or_else(|error| panic!("GET {path}: {error}"));
        assert_eq!(metadata.issuer().as_str(), app.issuer("grafana"), "GET {path}");
    }
    for path in discovery_paths("nope") {
        let response = http().get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
    }
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let response = http().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
        let body: serde_json::Value = response.json().await.expect("a JSON answer");
        let hint = body["error"].as_str().unwrap_or_default();
        assert!(hint.contains("/application/o/<slug>/.well-known/openid-configuration"), "GET {path}: {body}");
    }
}

on_every_backend!(
    discovery_is_found_where_clients_look_for_it,
    discovery_document_has_the_issuer_and_required_fields,
    jwks_is_public_and_names_the_id_token_key,
    documents_of_a_removed_app_are_gone_within_a_second
);
