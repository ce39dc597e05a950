//! Discovery advertises exactly what works: the endpoints, grants, response
//! modes and prompts of the rest of the protocol surface, and says `false`
//! to what Latch does not do.

use std::collections::BTreeSet;

use latch::crypto::keys::SigningAlg;
use latch::oidc::values::{
    ClientAuthMethod, CodeChallengeMethod, GrantType, Prompt, ResponseMode, ResponseType, Scope,
};
use openidconnect::core::CoreResponseMode;
use reqwest::StatusCode;

use crate::common::Backend;
use crate::on_every_backend;
use crate::relying_party::{Rp, http, server};

fn set(document: &serde_json::Value, field: &str) -> BTreeSet<String> {
    let values = document[field].as_array().unwrap_or_else(|| panic!("{field} must be an array: {document}"));
    values.iter().map(|value| value.as_str().expect("strings").to_owned()).collect()
}

fn expected(values: &[&str]) -> BTreeSet<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

async fn discovery_advertises_exactly_what_works(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let document = &rp.discovery;

    // The endpoints, on the public URL, each one answering.
    assert_eq!(rp.endpoint("revocation_endpoint"), app.url("/application/o/revoke/"));
    assert_eq!(rp.endpoint("introspection_endpoint"), app.url("/application/o/introspect/"));
    assert_eq!(rp.endpoint("end_session_endpoint"), app.url("/application/o/web/end-session/"));
    for field in ["revocation_endpoint", "introspection_endpoint"] {
        let response = http().post(rp.endpoint(field)).form(&[("token", "x")]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{field} asks the client to authenticate");
    }
    let response = http().get(rp.endpoint("end_session_endpoint")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "end_session_endpoint");
    // RFC 8628: the device grant, for the apps that enable it.
    assert_eq!(rp.endpoint("device_authorization_endpoint"), app.url("/application/o/device/"));
    let response = http().post(rp.endpoint("device_authorization_endpoint")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "device_authorization_endpoint asks the client to authenticate"
    );

    assert_eq!(
        set(document, "grant_types_supported"),
        expected(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ]),
        "no implicit, no password grant"
    );
    assert_eq!(set(document, "response_types_supported"), expected(&["code"]));
    assert_eq!(set(document, "response_modes_supported"), expected(&["query", "form_post"]));
    assert_eq!(set(document, "prompt_values_supported"), expected(&["none", "login", "consent"]));
    assert_eq!(set(document, "code_challenge_methods_supported"), expected(&["S256"]));
    let algs = set(document, "id_token_signing_alg_values_supported");
    assert!(expected(&["RS256", "ES256", "EdDSA"]).is_subset(&algs), "{algs:?}");
    assert!(set(document, "scopes_supported").contains("offline_access"));
    for field in ["revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"] {
        assert!(set(document, field).contains("client_secret_basic"), "{field}");
    }
    assert_eq!(document["authorization_response_iss_parameter_supported"], true);
    assert_eq!(document["claims_parameter_supported"], false);
    // Both default to true when absent (OIDC Discovery §3), so they must say false.
    assert_eq!(document["request_uri_parameter_supported"], false);
    assert_eq!(document["request_parameter_supported"], false);

    // And a client library reads them.
    let metadata = rp.metadata().await;
    let modes = metadata.response_modes_supported().expect("response_modes_supported");
    assert!(modes.contains(&CoreResponseMode::FormPost) && modes.contains(&CoreResponseMode::Query));
    let more = metadata.additional_metadata();
    assert!(more.revocation_endpoint.is_some() && more.introspection_endpoint.is_some());
    assert!(more.end_session_endpoint.is_some());
}

/// Each list is the set its parser accepts, in the same order: a value
/// added to (or removed from) a set is advertised (or withdrawn) with it.
async fn advertised_lists_are_the_parsed_sets(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let list = |field: &str| -> Vec<String> {
        let values = rp.discovery[field].as_array().unwrap_or_else(|| panic!("{field} must be an array"));
        values.iter().map(|value| value.as_str().expect("strings").to_owned()).collect()
    };
    let names = |values: &[&str]| -> Vec<String> { values.iter().map(|value| (*value).to_owned()).collect() };
    let auth_with_secret: Vec<&str> = ClientAuthMethod::WITH_SECRET.iter().map(|method| method.as_str()).collect();
    for (field, expected) in [
        ("grant_types_supported", GrantType::NAMES),
        ("response_types_supported", ResponseType::NAMES),
        ("response_modes_supported", ResponseMode::NAMES),
        ("prompt_values_supported", Prompt::NAMES),
        ("code_challenge_methods_supported", CodeChallengeMethod::NAMES),
        ("scopes_supported", Scope::NAMES),
        ("id_token_signing_alg_values_supported", SigningAlg::NAMES),
        ("token_endpoint_auth_methods_supported", ClientAuthMethod::NAMES),
        ("revocation_endpoint_auth_methods_supported", ClientAuthMethod::NAMES),
        ("introspection_endpoint_auth_methods_supported", &auth_with_secret),
    ] {
        assert_eq!(list(field), names(expected), "{field}");
    }
}

on_every_backend!(discovery_advertises_exactly_what_works, advertised_lists_are_the_parsed_sets);
