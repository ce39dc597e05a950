//! The Authorization Code flow end to end with the `openidconnect` crate as
//! the relying party: discovery → authorize → login → callback → token →
//! ID token verified against the JWKS → userinfo.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use crate::common::{Backend, Browser, TestApp, query_param};
use crate::on_every_backend;

const CALLBACK: &str = "https://app.example.com/oauth2/callback";
const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupClaims {
    #[serde(default)]
    groups: Vec<String>,
}
impl AdditionalClaims for GroupClaims {}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

enum ClientKind {
    SecretBasic,
    SecretPost,
    PublicWithPkce,
}

async fn full_flow(backend: Backend, kind: ClientKind) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.admin(&["group", "add", "staff"]).await;
    app.add_user("ada", PASSWORD, &["staff"]).await;
    let extra: &[&str] = match kind {
        ClientKind::PublicWithPkce => &["--public"],
        _ => &[],
    };
    let credentials = app.add_app("grafana", &[CALLBACK], extra).await;
    assert_eq!(credentials.issuer, app.issuer("grafana"));
    assert_eq!(credentials.client_secret.is_none(), matches!(kind, ClientKind::PublicWithPkce));

    let http = http_client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer("grafana")).unwrap(), &http).await.unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(credentials.client_id.clone()),
        credentials.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(CALLBACK.into()).unwrap());
    let client = match kind {
        ClientKind::SecretPost => client.set_auth_type(AuthType::RequestBody),
        _ => client,
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new();
    let callback = browser.authorize(&app.base, authorize_url.as_str(), "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(CALLBACK), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(query_param(&callback, "iss").as_deref(), Some(app.issuer("grafana").as_str()));
    let code = query_param(&callback, "code").expect("code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("id token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("ID token verifies against the JWKS");
    assert_eq!(claims.issuer().as_str(), app.issuer("grafana"));
    assert_eq!(claims.preferred_username().map(|name| name.as_str()), Some("ada"));
    assert_eq!(claims.email().map(|email| email.as_str()), Some("ada@example.com"));
    assert!(claims.auth_time().is_some());
    assert!(tokens.expires_in().is_some());

    let userinfo: UserInfoClaims<GroupClaims, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(userinfo.email().map(|email| email.as_str()), Some("ada@example.com"));
    assert_eq!(userinfo.additional_claims().groups, vec!["staff".to_owned()]);
}

async fn confidential_client_secret_basic(backend: Backend) {
    full_flow(backend, ClientKind::SecretBasic).await
}

async fn confidential_client_secret_post(backend: Backend) {
    full_flow(backend, ClientKind::SecretPost).await
}

async fn public_client_with_pkce(backend: Backend) {
    full_flow(backend, ClientKind::PublicWithPkce).await
}

on_every_backend!(confidential_client_secret_basic, confidential_client_secret_post, public_client_with_pkce);
