//! Per-app signing algorithms (`--signing-alg ES256|EdDSA`): the tokens say
//! so in their header, the JWKS publishes a key of the right type, and an
//! `openidconnect` client verifies the ID token and uses the access token.

use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;

use crate::common::{Backend, Browser, query_param};
use crate::on_every_backend;
use crate::relying_party::{PASSWORD, Rp, http, jwt, server, string, token_ok, wait_for_alg};

struct Alg {
    name: &'static str,
    core: CoreJwsSigningAlgorithm,
    kty: &'static str,
    crv: &'static str,
}

const ES256: Alg = Alg { name: "ES256", core: CoreJwsSigningAlgorithm::EcdsaP256Sha256, kty: "EC", crv: "P-256" };
const EDDSA: Alg = Alg { name: "EdDSA", core: CoreJwsSigningAlgorithm::EdDsa, kty: "OKP", crv: "Ed25519" };

/// The whole flow for an app signing with `alg`; with `check_at_hash`, the
/// ID token's `at_hash` is also compared with what the client computes.
async fn flow(backend: Backend, alg: Alg, check_at_hash: bool) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "edge", &["--signing-alg", alg.name]).await;
    wait_for_alg(&rp, alg.name).await;
    let client = rp.client().await;
    let http = http();
    let (url, _, nonce) =
        client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let callback = Browser::new().authorize(&app.base, url.as_str(), "ada", PASSWORD).await;
    let code = query_param(&rp.callback(callback.as_str()), "code").expect("code");
    let tokens = client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http).await.unwrap();
    let id_token = tokens.id_token().expect("id_token");

    // The header names the algorithm and a published key of the right type.
    assert_eq!(id_token.signing_alg().unwrap(), &alg.core);
    let header = jwt(&id_token.to_string(), 0);
    assert_eq!(header["alg"], alg.name);
    assert_eq!(jwt(tokens.access_token().secret(), 0)["alg"], alg.name, "the access token too");
    let kid = string(&header, "kid");
    let jwks: serde_json::Value = http.get(rp.endpoint("jwks_uri")).send().await.unwrap().json().await.unwrap();
    let keys: Vec<&serde_json::Value> =
        jwks["keys"].as_array().unwrap().iter().filter(|key| key["kid"] == kid).collect();
    assert_eq!(keys.len(), 1, "kid {kid} names exactly one key: {jwks}");
    let key = keys[0];
    assert_eq!(key["kty"], alg.kty, "{key}");
    assert_eq!(key["crv"], alg.crv, "{key}");
    assert_eq!(key["alg"], alg.name, "{key}");
    assert_eq!(key["use"], "sig", "{key}");
    assert!(key["x"].is_string(), "{key}");
    assert_eq!(key["y"].is_string(), alg.kty == "EC", "{key}");
    assert!(key.get("d").is_none(), "no private key: {key}");

    // The client verifies the signature against the JWKS.
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("the ID token verifies");
    if check_at_hash {
        let expected = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(claims.access_token_hash(), Some(&expected), "at_hash as the client computes it");
    }

    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo with the access token");
    assert_eq!(userinfo.subject(), claims.subject());
}

async fn es256_app(backend: Backend) {
    flow(backend, ES256, true).await
}

async fn eddsa_app(backend: Backend) {
    flow(backend, EDDSA, false).await
}

async fn eddsa_at_hash_is_what_clients_compute(backend: Backend) {
    flow(backend, EDDSA, true).await
}

/// An app given an algorithm the deployment had no key for yet signs with
/// it from its first request (no waiting for the next key refresh).
async fn a_new_signing_alg_works_at_once(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    rp.tokens(&browser, "openid", "ada").await;
    let mut params = rp.request("openid", "s");
    params.push(("prompt".into(), "none".into()));

    app.admin(&["app", "update", "web", "--signing-alg", "EdDSA"]).await;
    let response = rp.redeem(&rp.silent_code(&browser, &params).await).await;
    assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{}", response.text().await.unwrap());
    let tokens = token_ok(response).await;
    assert_eq!(jwt(string(&tokens, "id_token"), 0)["alg"], "EdDSA");
}

on_every_backend!(es256_app, eddsa_app, eddsa_at_hash_is_what_clients_compute, a_new_signing_alg_works_at_once,);
