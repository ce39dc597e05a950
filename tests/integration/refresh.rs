//! Refresh tokens: issued for `offline_access`, rotated on every use, a
//! replayed one revokes its whole family (RFC 9700 §4.14.2) unless it is a
//! benign repeat within the app's grace window, bound to their client,
//! ended by disabling the user or signing out, per-app lifetimes.

use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreErrorResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, RefreshToken, RequestTokenError, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Backend, Browser, TestApp, poll_until, query_param};
use crate::on_every_backend;
use crate::relying_party::{
    PASSWORD, Rp, confirm_sign_out, http, jwt, public_token, public_tokens, server, string, token_error, token_ok,
    userinfo_status,
};

const OFFLINE: &str = "openid profile email offline_access";

/// The refresh token of a token response, which must have one.
fn refresh_token(tokens: &serde_json::Value) -> &str {
    tokens["refresh_token"].as_str().unwrap_or_else(|| panic!("no refresh_token in {tokens}"))
}

async fn refresh_rotates_and_keeps_the_identity(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let client = rp.client().await;
    let http = http();
    let (url, state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .url();
    let callback = Browser::new().authorize(&app.base, url.as_str(), "ada", PASSWORD).await;
    let callback = rp.callback(callback.as_str());
    assert_eq!(query_param(&callback, "state").as_deref(), Some(state.secret().as_str()));
    let code = query_param(&callback, "code").expect("code");
    let first = client.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http).await.expect("code");
    let first_refresh = first.refresh_token().expect("offline_access gives a refresh token").clone();
    let secret = first_refresh.secret();
    assert!(secret.chars().all(|c| (' '..='~').contains(&c)), "refresh token characters: {secret:?}");
    assert!(secret.len() >= 22, "a refresh token carries at least 128 bits: {secret:?}");
    let first_claims = first.id_token().expect("id_token").claims(&client.id_token_verifier(), &nonce).unwrap().clone();
    assert!(first_claims.nonce().is_some());

    // A refresh one second later: a new iat, everything else the same.
    app.clock.advance(1);
    let second = client.exchange_refresh_token(&first_refresh).unwrap().request_async(&http).await.expect("refresh");
    assert_eq!(second.token_type().as_ref(), "bearer");
    assert!(second.expires_in().is_some_and(|lifetime| lifetime.as_secs() > 0));
    let second_refresh = second.refresh_token().expect("rotation hands out the next refresh token");
    assert_ne!(second_refresh.secret(), first_refresh.secret(), "refresh tokens rotate on every use");
    let no_nonce = |nonce: Option<&Nonce>| match nonce {
        None => Ok(()),
        Some(nonce) => Err(format!("a refreshed ID token carries no nonce, got {:?}", nonce.secret())),
    };
    let second_claims = second
        .id_token()
        .expect("a refresh of an openid grant returns an ID token")
        .claims(&client.id_token_verifier(), no_nonce)
        .expect("the refreshed ID token verifies");
    assert_eq!(second_claims.issuer(), first_claims.issuer());
    assert_eq!(second_claims.subject(), first_claims.subject());
    assert_eq!(second_claims.audiences(), first_claims.audiences());
    assert_eq!(second_claims.authorized_party(), first_claims.authorized_party());
    assert!(second_claims.authorized_party().is_some(), "azp");
    assert_eq!(second_claims.auth_time(), first_claims.auth_time(), "a refresh is not a new sign-in");
    assert!(second_claims.auth_time().is_some());
    assert!(second_claims.issue_time() > first_claims.issue_time(), "iat of the refreshed ID token");

    let userinfo: CoreUserInfoClaims = client
        .user_info(second.access_token().clone(), Some(first_claims.subject().clone()))
        .unwrap()
        .request_async(&http)
        .await
        .expect("the new access token works at userinfo");
    assert_eq!(userinfo.subject(), first_claims.subject());

    // The same on the wire: 200 JSON, no-store, Bearer, expires_in.
    let third = token_ok(rp.refresh(second_refresh.secret()).await).await;
    assert!(third["id_token"].is_string(), "{third}");
    assert_ne!(refresh_token(&third), second_refresh.secret());
}

async fn replaying_a_used_refresh_token_revokes_the_family(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let first = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let second = token_ok(rp.refresh(refresh_token(&first)).await).await;
    let third = token_ok(rp.refresh(refresh_token(&second)).await).await;
    let newest_access = string(&third, "access_token");
    // Another sign-in of the same user to the same app: another family.
    let elsewhere = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    assert_eq!(userinfo_status(&rp, newest_access).await, StatusCode::OK);

    // The first refresh token was spent: presenting it again is a replay.
    token_error(rp.refresh(refresh_token(&first)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // Its whole family is gone: the newest refresh token and access token too.
    token_error(rp.refresh(refresh_token(&third)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(userinfo_status(&rp, newest_access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(userinfo_status(&rp, string(&second, "access_token")).await, StatusCode::UNAUTHORIZED);
    rp.assert_inactive(newest_access, "an access token of a revoked family").await;
    // Nothing else is.
    assert_eq!(userinfo_status(&rp, string(&elsewhere, "access_token")).await, StatusCode::OK);
    token_ok(rp.refresh(refresh_token(&elsewhere)).await).await;
}

async fn another_clients_refresh_token_is_invalid_grant(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let web = Rp::register(&app, "web", &[]).await;
    let other = Rp::register(&app, "other", &[]).await;
    let tokens = web.tokens(&Browser::new(), OFFLINE, "ada").await;

    token_error(other.refresh(refresh_token(&tokens)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // The owner's token was not spent by the refused attempt.
    token_ok(web.refresh(refresh_token(&tokens)).await).await;
}

async fn without_offline_access_there_is_no_refresh_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), "openid profile email", "ada").await;
    assert!(tokens.get("refresh_token").is_none_or(|value| value.is_null()), "{tokens}");

    let unknown = "x".repeat(43);
    token_error(rp.refresh(&unknown).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn disabling_the_user_revokes_the_family(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let grace = rp.tokens(&Browser::new(), OFFLINE, "grace").await;

    app.admin(&["user", "disable", "ada"]).await;
    token_error(rp.refresh(refresh_token(&tokens)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(userinfo_status(&rp, string(&tokens, "access_token")).await, StatusCode::UNAUTHORIZED);

    // Enabling the account again does not bring the old tokens back.
    app.admin(&["user", "enable", "ada"]).await;
    token_error(rp.refresh(refresh_token(&tokens)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(userinfo_status(&rp, string(&tokens, "access_token")).await, StatusCode::UNAUTHORIZED);
    // Other users are untouched.
    token_ok(rp.refresh(refresh_token(&grace)).await).await;
}

async fn signing_out_revokes_the_sessions_family(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    let tokens = rp.tokens(&browser, OFFLINE, "ada").await;
    let refreshed = token_ok(rp.refresh(refresh_token(&tokens)).await).await;
    let laptop = rp.tokens(&Browser::new(), OFFLINE, "ada").await;

    let end_session = rp.endpoint("end_session_endpoint");
    let page = browser.client.get(&end_session).send().await.unwrap();
    let response = confirm_sign_out(&browser.client, &end_session, page).await;
    assert_eq!(response.status(), StatusCode::OK, "signed out, nowhere registered to go back to");

    token_error(rp.refresh(refresh_token(&refreshed)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    for issued in [&tokens, &refreshed] {
        let access_token = string(issued, "access_token");
        assert_eq!(userinfo_status(&rp, access_token).await, StatusCode::UNAUTHORIZED, "the family's access tokens");
    }
    // The same person's session on another device goes on.
    token_ok(rp.refresh(refresh_token(&laptop)).await).await;
}

async fn public_clients_refresh_with_their_client_id_and_rotation(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let spa = app.add_app("spa", &[crate::relying_party::CALLBACK], &["--public"]).await;
    let client_id = spa.client_id.as_str();
    let first = public_tokens(&app, client_id, OFFLINE, "ada").await;
    let refresh = |token: &str| [("grant_type", "refresh_token".to_owned()), ("refresh_token", token.to_owned())];
    let second = token_ok(public_token(&app, client_id, &pairs(&refresh(refresh_token(&first)))).await).await;
    assert_ne!(refresh_token(&second), refresh_token(&first), "a public client's refresh tokens rotate");
    let third = token_ok(public_token(&app, client_id, &pairs(&refresh(refresh_token(&second)))).await).await;
    // Two generations back: a replay, whatever the grace window.
    let replay = public_token(&app, client_id, &pairs(&refresh(refresh_token(&first)))).await;
    token_error(replay, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let after = public_token(&app, client_id, &pairs(&refresh(refresh_token(&third)))).await;
    token_error(after, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

fn pairs<'a>(owned: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    owned.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

async fn per_app_access_token_lifetime(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &["--access-token-ttl", "90s"]).await;
    let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    assert_eq!(tokens["expires_in"], 90, "{tokens}");
    let access = jwt(string(&tokens, "access_token"), 1);
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), 90, "{access}");
    let introspection = rp.introspect(string(&tokens, "access_token")).await;
    assert_eq!(introspection["active"], true);
    assert_eq!(introspection["exp"].as_i64().unwrap() - introspection["iat"].as_i64().unwrap(), 90);

    let refreshed = token_ok(rp.refresh(refresh_token(&tokens)).await).await;
    assert_eq!(refreshed["expires_in"], 90, "{refreshed}");

    app.admin(&["app", "update", "web", "--access-token-ttl", "2m"]).await;
    let refreshed = token_ok(rp.refresh(refresh_token(&refreshed)).await).await;
    assert_eq!(refreshed["expires_in"], 120, "{refreshed}");
}

async fn refresh_tokens_expire_after_the_apps_lifetime(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let short = Rp::register(&app, "short", &["--refresh-token-ttl", "2s"]).await;
    let sliding = Rp::register(&app, "sliding", &["--refresh-token-ttl", "10s"]).await;
    let browser = Browser::new();
    let expiring = short.tokens(&browser, OFFLINE, "ada").await;
    let introspected = short.introspect(refresh_token(&expiring)).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    let lifetime = introspected["exp"].as_i64().unwrap() - introspected["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 2, "{introspected}");

    // Sliding: each rotation starts a new lifetime.
    let tokens = sliding.tokens(&browser, OFFLINE, "ada").await;
    let first = sliding.introspect(refresh_token(&tokens)).await;
    app.clock.advance(1);
    let refreshed = token_ok(sliding.refresh(refresh_token(&tokens)).await).await;
    let second = sliding.introspect(refresh_token(&refreshed)).await;
    assert_eq!(second["exp"].as_i64().unwrap() - second["iat"].as_i64().unwrap(), 10, "{second}");
    assert!(second["exp"].as_i64() > first["exp"].as_i64(), "{first} then {second}");

    // Three seconds after it was issued, the 2 s refresh token has expired.
    app.clock.advance(2);
    short.assert_inactive(refresh_token(&expiring), "an expired refresh token").await;
    token_error(short.refresh(refresh_token(&expiring)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn refresh_with_a_narrower_scope_narrows_the_access_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), OFFLINE, "ada").await;
    let narrowed = token_ok(
        rp.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token(&tokens)),
            ("scope", "openid"),
        ])
        .await,
    )
    .await;
    assert_eq!(narrowed["scope"], "openid", "{narrowed}");
    let access_token = string(&narrowed, "access_token");
    assert_eq!(jwt(access_token, 1)["scope"], "openid");
    let response = http().get(rp.endpoint("userinfo_endpoint")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let claims: serde_json::Value = response.json().await.unwrap();
    assert!(claims.get("email").is_none(), "a token narrowed to openid must not release email: {claims}");
    assert!(claims.get("preferred_username").is_none(), "nor profile: {claims}");
}

async fn refused_scope_widening_does_not_spend_the_refresh_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let tokens = rp.tokens(&Browser::new(), "openid offline_access", "ada").await;
    let widen = rp
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token(&tokens)),
            ("scope", "openid email offline_access"),
        ])
        .await;
    token_error(widen, StatusCode::BAD_REQUEST, "invalid_scope").await;

    // A refused request changes nothing (RFC 6749 §5.2): the token still works.
    token_ok(rp.refresh(refresh_token(&tokens)).await).await;
}

/// `refresh_token` presented with the `openidconnect` client: the `error`
/// code of a refusal, or the refresh token of a success.
async fn exchange(
    client: &crate::relying_party::Client,
    token: &RefreshToken,
) -> Result<String, CoreErrorResponseType> {
    match client.exchange_refresh_token(token).unwrap().request_async(&http()).await {
        Ok(response) => Ok(response.refresh_token().expect("a refresh token").secret().clone()),
        Err(RequestTokenError::ServerResponse(response)) => Err(response.error().clone()),
        Err(other) => panic!("the refresh request failed: {other:?}"),
    }
}

/// Two tabs (or a retry after a lost response) present the same refresh
/// token: the second gets the successor the first got, with working access
/// tokens; either holder continues the family. Only a token older than the
/// immediately previous one is a replay.
async fn a_repeat_within_the_grace_window_gets_the_same_successor(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let client = rp.client().await;
    let (url, _, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("offline_access".into()))
        .url();
    let callback = rp.callback(Browser::new().authorize(&app.base, url.as_str(), "ada", PASSWORD).await.as_str());
    let code = AuthorizationCode::new(query_param(&callback, "code").expect("code"));
    let first = client.exchange_code(code).unwrap().request_async(&http()).await.expect("code exchange");
    let first = first.refresh_token().expect("a refresh token").clone();

    let tab_a = exchange(&client, &first).await.expect("the first use rotates");
    let repeat = client.exchange_refresh_token(&first).unwrap().request_async(&http()).await.expect("a benign repeat");
    let tab_b = repeat.refresh_token().expect("the repeat gets a refresh token").secret().clone();
    assert_eq!(tab_b, tab_a, "the repeat gets the same successor, so the family stays one chain");
    let claims: CoreUserInfoClaims = client
        .user_info(repeat.access_token().clone(), None)
        .unwrap()
        .request_async(&http())
        .await
        .expect("the repeat's access token works at userinfo");
    assert!(!claims.subject().is_empty());

    // Tab A goes on; tab B, seconds later, presents what it holds: again a repeat.
    let next = exchange(&client, &RefreshToken::new(tab_a)).await.expect("the family goes on");
    let next_for_b = exchange(&client, &RefreshToken::new(tab_b)).await.expect("the other tab catches up");
    assert_eq!(next_for_b, next);

    // The first token is now two generations old: a replay, and the family ends.
    assert_eq!(exchange(&client, &first).await, Err(CoreErrorResponseType::InvalidGrant));
    assert_eq!(exchange(&client, &RefreshToken::new(next)).await, Err(CoreErrorResponseType::InvalidGrant));
}

async fn reuse_outside_the_grace_window_revokes_the_family(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let short = Rp::register(&app, "short", &["--refresh-token-reuse-grace", "1s"]).await;
    let none = Rp::register(&app, "none", &["--refresh-token-reuse-grace", "0"]).await;
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", "short", "--json"]).await).unwrap();
    assert_eq!(shown["options"]["refresh_token_reuse_grace"], 1, "{shown}");
    assert!(app.admin(&["app", "show", "none"]).await.contains("\"refresh_token_reuse_grace\":0"));

    // Grace disabled: the very next repeat is a replay.
    let first = none.tokens(&Browser::new(), OFFLINE, "ada").await;
    let second = token_ok(none.refresh(refresh_token(&first)).await).await;
    token_error(none.refresh(refresh_token(&first)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    token_error(none.refresh(refresh_token(&second)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A one-second window: a repeat after it is a replay.
    let first = short.tokens(&Browser::new(), OFFLINE, "ada").await;
    let second = token_ok(short.refresh(refresh_token(&first)).await).await;
    app.clock.advance(2);
    token_error(short.refresh(refresh_token(&first)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    token_error(short.refresh(refresh_token(&second)).await, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // The setting changes with app update.
    app.admin(&["app", "update", "short", "--refresh-token-reuse-grace", "0"]).await;
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", "short", "--json"]).await).unwrap();
    assert_eq!(shown["options"]["refresh_token_reuse_grace"], 0, "{shown}");
    let refused = app.latch(&["app", "update", "short", "--refresh-token-reuse-grace", "1h"], None).await;
    assert!(!refused.status.success(), "a grace window of an hour is refused");
}

/// The audit trail once the server's queued events are in: polls until
/// `done` holds, for at most 10 s.
async fn audit_until(app: &TestApp, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let events = async || -> Vec<Value> {
        serde_json::from_str(&app.admin(&["events", "--json", "--limit", "1000"]).await).expect("events JSON")
    };
    match poll_until(Duration::from_secs(10), async || Some(events().await).filter(|events| done(events))).await {
        Some(events) => events,
        None => events().await,
    }
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|event| event["kind"] == kind).count()
}

/// Four requests with one refresh token at the same moment, round after
/// round: all get the same successor, the family lives on, and nothing is
/// audited as a replay, until a genuine one.
async fn concurrent_repeats_get_one_successor_and_are_no_replay(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let mut token = refresh_token(&rp.tokens(&Browser::new(), OFFLINE, "ada").await).to_owned();
    let first = token.clone();
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let (a, b, c, d) = tokio::join!(rp.refresh(&token), rp.refresh(&token), rp.refresh(&token), rp.refresh(&token));
        let mut successors = Vec::new();
        for response in [a, b, c, d] {
            let body = token_ok(response).await;
            assert_eq!(userinfo_status(&rp, string(&body, "access_token")).await, StatusCode::OK, "round {round}");
            successors.push(refresh_token(&body).to_owned());
        }
        assert!(successors.iter().all(|next| *next == successors[0]), "round {round}: {successors:?}");
        token = successors.swap_remove(0);
    }
    let issued_by_refresh = |events: &[Value]| {
        events.iter().filter(|event| event["kind"] == "tokens_issued" && event["detail"] == "refresh_token").count()
    };
    let events = audit_until(&app, |events| issued_by_refresh(events) >= 4 * ROUNDS).await;
    assert_eq!(issued_by_refresh(&events), 4 * ROUNDS);
    assert_eq!(count(&events, "refresh_token_reuse"), 0, "a benign repeat was audited as a replay");

    token_error(rp.refresh(&first).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    token_error(rp.refresh(&token).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let events = audit_until(&app, |events| count(events, "refresh_token_reuse") > 0).await;
    assert_eq!(count(&events, "refresh_token_reuse"), 1, "a genuine replay is audited once");
    let replay = events.iter().find(|event| event["kind"] == "refresh_token_reuse").unwrap();
    assert_eq!(replay["username"], "ada", "the replay names whose tokens were revoked: {replay}");
}

on_every_backend!(
    a_repeat_within_the_grace_window_gets_the_same_successor,
    reuse_outside_the_grace_window_revokes_the_family,
    concurrent_repeats_get_one_successor_and_are_no_replay,
    refresh_rotates_and_keeps_the_identity,
    replaying_a_used_refresh_token_revokes_the_family,
    another_clients_refresh_token_is_invalid_grant,
    without_offline_access_there_is_no_refresh_token,
    disabling_the_user_revokes_the_family,
    public_clients_refresh_with_their_client_id_and_rotation,
    signing_out_revokes_the_sessions_family,
    per_app_access_token_lifetime,
    refresh_tokens_expire_after_the_apps_lifetime,
    refresh_with_a_narrower_scope_narrows_the_access_token,
    refused_scope_widening_does_not_spend_the_refresh_token,
);
