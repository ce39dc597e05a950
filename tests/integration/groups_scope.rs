//! The `groups` scope, as Authelia, Pocket ID, Dex and Kanidm release it:
//! an app set up for them (`scope=openid email groups`) gets `groups` in the
//! ID token and from UserInfo, and the scope in the granted scope; `profile`
//! still releases `groups` too, as in Authentik.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use crate::common::{Backend, Browser, PASSWORD, TestApp, query_param};
use crate::on_every_backend;
use crate::relying_party::{Rp, http, jwt, string};

#[derive(Clone, Debug, Deserialize, Serialize)]
struct Groups {
    groups: Vec<String>,
}
impl AdditionalClaims for Groups {}

type GroupsIdToken =
    openidconnect::IdToken<Groups, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

async fn server_with_ada_in_two_groups(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn(backend).await?;
    app.admin(&["group", "add", "editors"]).await;
    app.admin(&["group", "add", "staff"]).await;
    app.add_user("ada", PASSWORD, &["editors", "staff"]).await;
    Some(app)
}

/// The request an app configured for Authelia or Dex makes, through the
/// `openidconnect` crate, which verifies the ID token and reads UserInfo.
async fn groups_scope_releases_groups_in_the_id_token_and_userinfo(backend: Backend) {
    let Some(app) = server_with_ada_in_two_groups(backend).await else { return };
    let rp = Rp::register(&app, "wiki", &[]).await;
    let scopes_supported = rp.discovery["scopes_supported"].as_array().expect("scopes_supported");
    assert!(scopes_supported.iter().any(|scope| scope == "groups"), "{scopes_supported:?}");

    let client = rp.client().await;
    let (url, _state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("groups".into()))
        .url();
    let callback = Browser::new().authorize(&app.base, url.as_str(), "ada", PASSWORD).await;
    let code = query_param(&rp.callback(callback.as_str()), "code").expect("code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .request_async(&http())
        .await
        .expect("token response");
    let granted: Vec<&str> = tokens.scopes().expect("scope").iter().map(|scope| scope.as_str()).collect();
    assert_eq!(granted, ["openid", "email", "groups"], "the groups scope is granted, not dropped");

    let raw = tokens.id_token().expect("ID token").to_string();
    let id_token: GroupsIdToken = raw.parse().expect("ID token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("a valid ID token");
    assert_eq!(claims.additional_claims().groups, ["editors", "staff"]);
    assert_eq!(claims.email().map(|email| email.as_str()), Some("ada@example.com"));
    assert!(claims.preferred_username().is_none(), "groups does not release the profile claims");

    let userinfo: UserInfoClaims<Groups, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&http())
        .await
        .expect("UserInfo");
    assert_eq!(userinfo.additional_claims().groups, ["editors", "staff"]);
    assert!(userinfo.name().is_none(), "groups does not release the profile claims");
}

/// `profile` keeps releasing `groups`; without either scope there are none.
async fn profile_still_releases_groups_and_other_scopes_do_not(backend: Backend) {
    let Some(app) = server_with_ada_in_two_groups(backend).await else { return };
    let rp = Rp::register(&app, "wiki", &[]).await;
    for (scope, released) in [("openid profile", true), ("openid groups", true), ("openid email", false)] {
        let tokens = rp.tokens(&Browser::new(), scope, "ada").await;
        let claims = jwt(string(&tokens, "id_token"), 1);
        let userinfo: serde_json::Value = http()
            .get(rp.endpoint("userinfo_endpoint"))
            .bearer_auth(string(&tokens, "access_token"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (source, claims) in [("ID token", &claims), ("UserInfo", &userinfo)] {
            let groups = &claims["groups"];
            if released {
                assert_eq!(groups, &serde_json::json!(["editors", "staff"]), "{scope}, {source}: {claims}");
            } else {
                assert!(groups.is_null(), "{scope}, {source}: {claims}");
            }
        }
        assert_eq!(string(&tokens, "scope"), scope, "granted as asked");
    }
}

on_every_backend!(
    groups_scope_releases_groups_in_the_id_token_and_userinfo,
    profile_still_releases_groups_and_other_scopes_do_not
);
