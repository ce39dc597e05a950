//! Signing key rotation: `latch key rotate` publishes the next key in every
//! JWKS at once, signs with it only after the grace period, and keeps the
//! old public key published. Seen by `openidconnect` clients that cached the
//! JWKS before the rotation and that fetched it again.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openidconnect::Nonce;
use openidconnect::core::CoreIdToken;
use reqwest::StatusCode;

use crate::common::{Backend, Browser, TestApp, poll_until};
use crate::on_every_backend;
use crate::relying_party::{Client, Rp, http, jwt, server, string, token_ok, userinfo_status, wait_for_alg};

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `latch key rotate <args>`; returns the new kid it names.
async fn rotate(app: &TestApp, args: &[&str]) -> String {
    let mut command = vec!["key", "rotate"];
    command.extend(args);
    let output = app.admin(&command).await;
    let kid = output.split_whitespace().skip_while(|word| *word != "key").nth(1);
    kid.unwrap_or_else(|| panic!("no kid in {output:?}")).to_owned()
}

/// `latch key list --json`.
async fn key_list(app: &TestApp) -> Vec<serde_json::Value> {
    let output = app.admin(&["key", "list", "--json"]).await;
    assert_no_private_material(&output);
    serde_json::from_str(&output).unwrap_or_else(|error| panic!("key list --json: {error}: {output}"))
}

fn listed<'a>(keys: &'a [serde_json::Value], kid: &str) -> &'a serde_json::Value {
    keys.iter().find(|key| key["kid"] == kid).unwrap_or_else(|| panic!("{kid} not listed: {keys:?}"))
}

/// No PKCS#8 or JWK private member: nothing long and base64-like, no `d`.
fn assert_no_private_material(output: &str) {
    let longest_run =
        output.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))).map(str::len).max().unwrap_or(0);
    assert!(longest_run < 100, "key output holds something as long as key material: {output}");
    for private in ["PRIVATE", "private_key", "\"d\""] {
        assert!(!output.contains(private), "{private} in {output}");
    }
}

async fn jwks_kids(rp: &Rp) -> Vec<String> {
    let response = http().get(rp.endpoint("jwks_uri")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: serde_json::Value = response.json().await.unwrap();
    jwks["keys"].as_array().expect("keys").iter().map(|key| string(key, "kid").to_owned()).collect()
}

/// Polls the JWKS until `kid` is published (on the server's next key
/// refresh); returns how long that took.
async fn wait_published(rp: &Rp, kid: &str, since: Instant) -> Duration {
    let published = poll_until(Duration::from_secs(3), async || {
        jwks_kids(rp).await.iter().any(|published| published == kid).then(|| since.elapsed())
    });
    published.await.unwrap_or_else(|| panic!("{kid} was never published"))
}

/// Moves the server's clock to `activates_at`, when the rotated key signs.
fn advance_to(app: &TestApp, activates_at: i64) {
    app.clock.advance((activates_at - app.clock.now()).max(0));
}

/// Tokens for the signed-in `browser`, without a page (prompt=none).
async fn silent_tokens(rp: &Rp, browser: &Browser) -> serde_json::Value {
    let mut params = rp.request("openid", "s");
    params.push(("prompt".into(), "none".into()));
    token_ok(rp.redeem(&rp.silent_code(browser, &params).await).await).await
}

fn kid_of(tokens: &serde_json::Value) -> String {
    let id_kid = string(&jwt(string(tokens, "id_token"), 0), "kid").to_owned();
    assert_eq!(jwt(string(tokens, "access_token"), 0)["kid"], id_kid.as_str(), "one key signs both tokens");
    id_kid
}

/// Whether `client`, with the JWKS it holds, accepts the ID token.
fn verifies(client: &Client, tokens: &serde_json::Value) -> bool {
    let id_token: CoreIdToken = string(tokens, "id_token").parse().expect("an ID token");
    id_token.claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(())).is_ok()
}

async fn rotation_publishes_first_signs_after_the_grace_and_keeps_the_old_key(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let browser = Browser::new();
    // An app that fetched discovery (and with it the JWKS) before the rotation.
    let cached = rp.client().await;
    let before = rp.tokens(&browser, "openid", "ada").await;
    let old_kid = kid_of(&before);

    let new_kid = rotate(&app, &["--grace", "3s"]).await;
    let rotated = Instant::now();
    assert_ne!(new_kid, old_kid);
    let during = silent_tokens(&rp, &browser).await;
    assert_eq!(kid_of(&during), old_kid, "the new key does not sign during the grace period");

    // Published at once, on the next key refresh; still not signing.
    let waited = wait_published(&rp, &new_kid, rotated).await;
    assert!(waited <= Duration::from_millis(1500), "the new kid took {waited:?} to be published");
    let published = silent_tokens(&rp, &browser).await;
    assert_eq!(kid_of(&published), old_kid, "published before it signs");
    let activates_at = listed(&key_list(&app).await, &new_kid)["activates_at"].as_i64().expect("activates_at");
    let keys = key_list(&app).await;
    assert_eq!(listed(&keys, &new_kid)["status"], "next", "{keys:?}");
    assert_eq!(listed(&keys, &old_kid)["status"], "retiring", "{keys:?}");
    // An app that fetches its metadata again now learns both keys.
    let refreshed = rp.client().await;

    advance_to(&app, activates_at);
    let after = silent_tokens(&rp, &browser).await;
    assert_eq!(kid_of(&after), new_kid, "after the grace period the new key signs");
    let kids = jwks_kids(&rp).await;
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid), "the old key stays published: {kids:?}");

    // The app with the cached JWKS keeps verifying what the old key signed…
    assert!(verifies(&cached, &before) && verifies(&cached, &during) && verifies(&cached, &published));
    // …and (having no idea of the new key) cannot verify a new token, while
    // the app that fetched again verifies old and new alike.
    assert!(!verifies(&cached, &after), "the cached client really holds the old JWKS");
    assert!(verifies(&refreshed, &after) && verifies(&refreshed, &before));
    // Latch itself accepts tokens of both keys.
    assert_eq!(userinfo_status(&rp, string(&before, "access_token")).await, StatusCode::OK);
    assert_eq!(userinfo_status(&rp, string(&after, "access_token")).await, StatusCode::OK);
}

async fn key_list_shows_statuses_never_private_keys_and_kids_are_never_reused(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rp = Rp::register(&app, "web", &[]).await;
    let keys = key_list(&app).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let first = string(&keys[0], "kid").to_owned();
    let mut fields: Vec<&String> = keys[0].as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["activates_at", "alg", "created_at", "kid", "retire_at", "status"], "{keys:?}");
    assert_eq!(keys[0]["status"], "active");
    assert_eq!(keys[0]["alg"], "RS256");
    assert!(keys[0]["retire_at"].is_null());

    // A rotation far ahead: the next key waits, the current one is retiring.
    let second = rotate(&app, &["--grace", "1h"]).await;
    let keys = key_list(&app).await;
    assert_eq!(listed(&keys, &second)["status"], "next", "{keys:?}");
    assert_eq!(listed(&keys, &first)["status"], "retiring", "{keys:?}");
    let next_activates = listed(&keys, &second)["activates_at"].as_i64().unwrap();
    assert!(next_activates >= unix_now() + 3500, "{keys:?}");
    let retire_at = listed(&keys, &first)["retire_at"].as_i64().expect("retire_at");
    assert!(retire_at > next_activates, "the old key outlives every token it signed: {keys:?}");

    // Refused rotations add nothing.
    for args in [&["--grace", "1s"][..], &["--alg", "HS256"][..], &["--grace", "soon"][..]] {
        let mut command = vec!["key", "rotate"];
        command.extend(args);
        let output = app.latch(&command, None).await;
        assert!(!output.status.success(), "latch key rotate {args:?} must be refused");
        assert!(!output.stderr.is_empty(), "and say why");
    }
    assert_eq!(key_list(&app).await.len(), 2);

    let third = rotate(&app, &["--grace", "2s"]).await;
    let mut kids = vec![first, second, third.clone()];
    let keys = key_list(&app).await;
    assert_eq!(keys.len(), 3);
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), 3, "every rotation makes a new kid: {keys:?}");
    wait_published(&rp, &third, Instant::now()).await;
    let mut published = jwks_kids(&rp).await;
    let count = published.len();
    published.sort();
    published.dedup();
    assert_eq!(published.len(), count, "JWKS kids are distinct");
    assert_eq!(published, kids, "all three are published");

    let table = app.admin(&["key", "list"]).await;
    assert_no_private_material(&table);
    for kid in &kids {
        assert!(table.contains(kid.as_str()), "{kid} in {table}");
    }
}

async fn rotating_one_algorithm_leaves_the_others_alone(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let rs = Rp::register(&app, "web", &[]).await;
    let es = Rp::register(&app, "edge", &["--signing-alg", "ES256"]).await;
    wait_for_alg(&es, "ES256").await;
    let browser = Browser::new();
    let rs_before = kid_of(&rs.tokens(&browser, "openid", "ada").await);
    let es_before = kid_of(&silent_tokens(&es, &browser).await);

    let new_es = rotate(&app, &["--alg", "ES256", "--grace", "2s"]).await;
    let keys = key_list(&app).await;
    assert_eq!(listed(&keys, &new_es)["alg"], "ES256");
    assert_eq!(listed(&keys, &rs_before)["status"], "active", "the RS256 key is untouched: {keys:?}");
    let activates_at = listed(&keys, &new_es)["activates_at"].as_i64().unwrap();
    // The server signs with a key once it holds it (its next key refresh).
    wait_published(&es, &new_es, Instant::now()).await;
    advance_to(&app, activates_at);
    let es_after = silent_tokens(&es, &browser).await;
    assert_eq!(kid_of(&es_after), new_es);
    assert_ne!(new_es, es_before);
    assert_eq!(jwt(string(&es_after, "id_token"), 0)["alg"], "ES256");
    assert_eq!(kid_of(&silent_tokens(&rs, &browser).await), rs_before, "RS256 apps sign as before");
    assert!(verifies(&es.client().await, &es_after));
}

on_every_backend!(
    rotation_publishes_first_signs_after_the_grace_and_keeps_the_old_key,
    key_list_shows_statuses_never_private_keys_and_kids_are_never_reused,
    rotating_one_algorithm_leaves_the_others_alone,
);
