//! Token revocation (RFC 7009) and introspection (RFC 7662): each client
//! authenticates and may only touch its own tokens.

use openidconnect::{AccessToken, TokenIntrospectionResponse};
use reqwest::StatusCode;

use crate::common::{Backend, Browser};
use crate::on_every_backend;
use crate::relying_party::{
    Rp, header, http, public_token, public_tokens, server, string, token_error, token_ok, userinfo_status,
};

const OFFLINE: &str = "openid profile email offline_access";

// The `openidconnect` crate (through `oauth2`) refuses to revoke over plain
// HTTP (`ConfigurationError::InsecureUrl`), and the test server has no TLS:
// revocation requests are sent as that crate would send them (form POST,
// `client_secret_basic`, the `token_type_hint` of the token's kind).

async fn revoking_an_access_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let access_token = string(&tokens, "access_token");
    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::OK);

    let response = rp.revoke(access_token, Some("access_token")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control").as_deref(), Some("no-store"));

    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::UNAUTHORIZED);
    rp.assert_inactive(access_token, "a revoked access token").await;
    // Revoking twice is fine too.
    assert_eq!(rp.revoke(access_token, Some("access_token")).await.status(), StatusCode::OK);
}

async fn revoking_a_refresh_token_revokes_its_family(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let first = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let second = token_ok(rp.refresh(string(&first, "refresh_token")).await).await;
    let refresh_token = string(&second, "refresh_token");

    assert_eq!(rp.revoke(refresh_token, Some("refresh_token")).await.status(), StatusCode::OK);

    token_error(rp.refresh(refresh_token).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    rp.assert_inactive(refresh_token, "a revoked refresh token").await;
    for tokens in [&first, &second] {
        let access_token = string(tokens, "access_token");
        assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::UNAUTHORIZED, "the family's access tokens");
        rp.assert_inactive(access_token, "an access token of a revoked family").await;
    }
}

async fn revocation_works_without_a_hint_and_with_the_wrong_one(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    for (kind, hint) in [
        ("access_token", None),
        ("access_token", Some("refresh_token")),
        ("access_token", Some("access_token")),
        ("refresh_token", None),
        ("refresh_token", Some("access_token")),
        ("refresh_token", Some("refresh_token")),
    ] {
        let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
        let token = string(&tokens, kind);
        let response = rp.revoke(token, hint).await;
        assert_eq!(response.status(), StatusCode::OK, "revoking a {kind} with hint {hint:?}");
        rp.assert_inactive(token, &format!("a {kind} revoked with hint {hint:?}")).await;
        if kind == "access_token" {
            assert_eq!(userinfo_status(&rp, token).await, StatusCode::UNAUTHORIZED);
        } else {
            token_error(rp.refresh(token).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        }
    }
}

async fn unknown_tokens_are_200(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let forged = "eyJhbGciOiJSUzI1NiJ9.eyJqdGkiOiJ4In0.c2lnbmF0dXJl";
    for token in ["no-such-token", forged, &"a".repeat(43)] {
        for hint in [None, Some("access_token"), Some("refresh_token")] {
            let response = rp.revoke(token, hint).await;
            assert_eq!(response.status(), StatusCode::OK, "unknown token {token:?} with hint {hint:?}");
        }
        rp.assert_inactive(token, "an unknown token").await;
    }
}

async fn another_clients_tokens_cannot_be_revoked(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let web = Rp::register(&app, "web", &[]).await;
    let other = Rp::register(&app, "other", &[]).await;
    let tokens = web.tokens(&Browser::new(), OFFLINE, "ada").await;

    for kind in ["access_token", "refresh_token"] {
        let response = other.revoke(string(&tokens, kind), None).await;
        token_error(response, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    }
    // Both still work for their owner.
    assert_eq!(userinfo_status(&web, string(&tokens, "access_token")).await, StatusCode::OK);
    assert_eq!(web.introspect(string(&tokens, "access_token")).await["active"], true);
    token_ok(web.refresh(string(&tokens, "refresh_token")).await).await;
}

async fn revocation_requires_client_authentication(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let access_token = string(&tokens, "access_token");
    let endpoint = rp.endpoint("revocation_endpoint");

    let anonymous = http().post(&endpoint).form(&[("token", access_token)]).send().await.unwrap();
    token_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong_secret = http()
        .post(&endpoint)
        .basic_auth(rp.client_id(), Some("not-the-secret"))
        .form(&[("token", access_token)])
        .send()
        .await
        .unwrap();
    let challenge = header(&wrong_secret, "www-authenticate").unwrap_or_default();
    token_error(wrong_secret, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(challenge.starts_with("Basic"), "WWW-Authenticate after Basic: {challenge:?}");
    let id_only = http().post(&endpoint).form(&[("token", access_token), ("client_id", rp.client_id())]).send().await;
    token_error(id_only.unwrap(), StatusCode::UNAUTHORIZED, "invalid_client").await;

    assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::OK, "nothing was revoked");
}

async fn a_public_client_revokes_its_own_tokens_with_its_client_id(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let spa = app.add_app("spa", &[crate::relying_party::CALLBACK], &["--public"]).await;
    let tokens = public_tokens(&app, &spa.client_id, OFFLINE, "ada").await;
    let endpoint = rp.endpoint("revocation_endpoint");

    // Another client (here: a confidential one) may not revoke it…
    token_error(
        rp.revoke(string(&tokens, "refresh_token"), None).await,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
    )
    .await;
    // …its own client, authenticated by client_id alone ("none"), may.
    let form = [("token", string(&tokens, "refresh_token")), ("client_id", spa.client_id.as_str())];
    let response = http().post(&endpoint).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", string(&tokens, "refresh_token"))];
    token_error(public_token(&app, &spa.client_id, &refresh).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(userinfo_status(&rp, string(&tokens, "access_token")).await, StatusCode::UNAUTHORIZED);
}

async fn introspecting_live_tokens(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let access_token = string(&tokens, "access_token");
    let sub = crate::relying_party::jwt(string(&tokens, "id_token"), 1)["sub"].clone();

    // As the openidconnect crate sees it.
    let client = rp.client().await;
    let token = AccessToken::new(access_token.to_owned());
    let answer = client.introspect(&token).request_async(&http()).await.expect("introspection");
    assert!(answer.active());
    assert_eq!(answer.sub(), sub.as_str());
    assert_eq!(answer.client_id().map(|id| id.as_str()), Some(rp.client_id()));
    let scopes: Vec<String> = answer.scopes().expect("scope").iter().map(|scope| scope.to_string()).collect();
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(scopes.contains(&scope.to_owned()), "{scope} in {scopes:?}");
    }
    assert_eq!(answer.iss(), Some(rp.issuer.as_str()));
    let (iat, exp) = (answer.iat().expect("iat").timestamp(), answer.exp().expect("exp").timestamp());
    assert!(iat < exp, "iat {iat} exp {exp}");
    assert!(answer.token_type().is_some_and(|kind| kind.as_ref().eq_ignore_ascii_case("bearer")));

    // On the wire, every field of RFC 7662 §2.2 that Latch promises.
    let raw = rp.introspect(access_token).await;
    for field in ["sub", "client_id", "scope", "exp", "iat", "iss", "token_type"] {
        assert!(raw.get(field).is_some_and(|value| !value.is_null()), "{field} missing: {raw}");
    }
    assert_eq!(raw["active"], true);

    let refresh = rp.introspect(string(&tokens, "refresh_token")).await;
    assert_eq!(refresh["active"], true, "{refresh}");
    assert_eq!(refresh["sub"], sub, "{refresh}");
    assert_eq!(refresh["client_id"], rp.client_id(), "{refresh}");
}

async fn introspection_of_dead_tokens_is_exactly_inactive(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let web = Rp::register(&app, "web", &[]).await;
    let other = Rp::register(&app, "other", &[]).await;

    web.assert_inactive("no-such-token", "an unknown token").await;

    let revoked = web.tokens(&Browser::new(), OFFLINE, "ada").await;
    assert_eq!(web.revoke(string(&revoked, "access_token"), None).await.status(), StatusCode::OK);
    web.assert_inactive(string(&revoked, "access_token"), "a revoked access token").await;

    let used = string(&revoked, "refresh_token");
    token_ok(web.refresh(used).await).await;
    web.assert_inactive(used, "a used refresh token").await;

    let live = web.tokens(&Browser::new(), OFFLINE, "ada").await;
    for kind in ["access_token", "refresh_token"] {
        other.assert_inactive(string(&live, kind), &format!("another client's {kind}")).await;
        assert_eq!(web.introspect(string(&live, kind)).await["active"], true, "the owner sees its {kind} live");
    }

    let grace = web.tokens(&Browser::new(), OFFLINE, "grace").await;
    app.admin(&["user", "disable", "grace"]).await;
    for kind in ["access_token", "refresh_token"] {
        web.assert_inactive(string(&grace, kind), &format!("a disabled user's {kind}")).await;
    }
}

async fn introspection_of_an_expired_access_token_is_exactly_inactive(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--access-token-ttl", "1s"]).await;
    let tokens = rp.tokens(&Browser::new(), "openid", "ada").await;
    assert_eq!(tokens["expires_in"], 1);
    app.clock.advance(2);
    rp.assert_inactive(string(&tokens, "access_token"), "an expired access token").await;
}

async fn introspection_requires_a_confidential_caller(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let public = app.add_app("spa", &[crate::relying_party::CALLBACK], &["--public"]).await;
    let tokens = rp.tokens(&Browser::new(), "openid", "ada").await;
    let access_token = string(&tokens, "access_token");
    let endpoint = rp.endpoint("introspection_endpoint");

    let anonymous = http().post(&endpoint).form(&[("token", access_token)]).send().await.unwrap();
    token_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong = http()
        .post(&endpoint)
        .basic_auth(rp.client_id(), Some("not-the-secret"))
        .form(&[("token", access_token)])
        .send()
        .await
        .unwrap();
    token_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong_in_body = http()
        .post(&endpoint)
        .form(&[("token", access_token), ("client_id", rp.client_id()), ("client_secret", "nope")])
        .send()
        .await
        .unwrap();
    token_error(wrong_in_body, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let public_client =
        http().post(&endpoint).form(&[("token", access_token), ("client_id", &public.client_id)]).send().await;
    token_error(public_client.unwrap(), StatusCode::UNAUTHORIZED, "invalid_client").await;
}

on_every_backend!(
    revoking_an_access_token,
    revoking_a_refresh_token_revokes_its_family,
    revocation_works_without_a_hint_and_with_the_wrong_one,
    unknown_tokens_are_200,
    another_clients_tokens_cannot_be_revoked,
    revocation_requires_client_authentication,
    a_public_client_revokes_its_own_tokens_with_its_client_id,
    introspecting_live_tokens,
    introspection_of_dead_tokens_is_exactly_inactive,
    introspection_of_an_expired_access_token_is_exactly_inactive,
    introspection_requires_a_confidential_caller,
);
