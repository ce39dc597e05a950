//! The client credentials grant (RFC 6749 §4.4) for confidential apps that
//! enable it: an access token whose subject is the client itself, no ID
//! token, no refresh token.

use openidconnect::{OAuth2TokenResponse, Scope, TokenResponse};
use reqwest::StatusCode;

use crate::common::Backend;
use crate::on_every_backend;
use crate::relying_party::{CALLBACK, Rp, http, jwt, server, string, token_error, token_ok, userinfo_status};

const GRANT: [(&str, &str); 1] = [("grant_type", "client_credentials")];

async fn client_credentials_give_the_client_an_access_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "robot", &["--client-credentials"]).await;

    // As the openidconnect crate asks for it, even with scope=openid.
    let client = rp.client().await;
    let tokens = client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("openid".into()))
        .request_async(&http())
        .await
        .expect("client credentials grant");
    assert!(tokens.id_token().is_none(), "no ID token: nobody signed in");
    assert!(tokens.refresh_token().is_none(), "no refresh token");
    assert!(tokens.expires_in().is_some());

    // On the wire.
    let tokens = token_ok(rp.token_request(&GRANT).await).await;
    assert!(tokens.get("id_token").is_none() && tokens.get("refresh_token").is_none(), "{tokens}");
    let access_token = string(&tokens, "access_token");
    let claims = jwt(access_token, 1);
    assert_eq!(claims["sub"], rp.client_id(), "the subject is the client: {claims}");
    assert_eq!(claims["client_id"], rp.client_id());
    assert_eq!(claims["iss"], rp.issuer.as_str());

    let introspection = rp.introspect(access_token).await;
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(introspection["sub"], rp.client_id());
    assert_eq!(introspection["client_id"], rp.client_id());
    // There is no user to describe.
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::UNAUTHORIZED);

    assert_eq!(rp.revoke(access_token, None).await.status(), StatusCode::OK);
    rp.assert_inactive(access_token, "a revoked client credentials token").await;
}

async fn apps_without_the_grant_are_unauthorized_client(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    token_error(rp.token_request(&GRANT).await, StatusCode::BAD_REQUEST, "unauthorized_client").await;

    let public = app.add_app("spa", &[CALLBACK], &["--public"]).await;
    let response = http()
        .post(rp.endpoint("token_endpoint"))
        .form(&[("grant_type", "client_credentials"), ("client_id", public.client_id.as_str())])
        .send()
        .await
        .unwrap();
    token_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;

    // Enabled and disabled again with app update.
    app.admin(&["app", "update", "web", "--client-credentials"]).await;
    token_ok(rp.token_request(&GRANT).await).await;
    app.admin(&["app", "update", "web", "--client-credentials", "false"]).await;
    token_error(rp.token_request(&GRANT).await, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

async fn a_public_app_cannot_enable_the_grant(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let args = ["app", "add", "spa", "--name", "SPA", "--redirect-uri", CALLBACK, "--public", "--client-credentials"];
    let output = app.latch(&args, None).await;
    assert!(!output.status.success(), "a public client cannot keep the secret this grant needs");
    assert!(String::from_utf8_lossy(&output.stderr).contains("public"), "{}", String::from_utf8_lossy(&output.stderr));
    let shown = app.latch(&["app", "show", "spa"], None).await;
    assert!(!shown.status.success(), "the refused app was not created");

    let spa = app.add_app("spa", &[CALLBACK], &["--public"]).await;
    let output = app.latch(&["app", "update", "spa", "--client-credentials"], None).await;
    assert!(!output.status.success(), "nor can an update enable it");
    let response = http()
        .post(app.url("/application/o/token/"))
        .form(&[("grant_type", "client_credentials"), ("client_id", spa.client_id.as_str())])
        .send()
        .await
        .unwrap();
    token_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

on_every_backend!(
    client_credentials_give_the_client_an_access_token,
    apps_without_the_grant_are_unauthorized_client,
    a_public_app_cannot_enable_the_grant,
);
