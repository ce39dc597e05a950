//! OpenID Connect Back-Channel Logout 1.0: when a session ends (sign-out at
//! the end-session endpoint, a password change, disabling the person), Latch
//! POSTs a signed logout token to the registered URI of every app that
//! received tokens in that session, and to no other. The apps here are a
//! receiver started by the test (an axum server on 127.0.0.1) that checks
//! each token against the app's JWKS with the `openidconnect` crate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKey, JsonWebKeyId};
use serde_json::Value;

use crate::common::{Backend, Browser, TestApp, hidden_input, jwt_part, poll_until, unescape_html};
use crate::forward_auth::{app_cookie, sign_in_directly};
use crate::on_every_backend;
use crate::relying_party::{Rp, http, server, string, token_ok};

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a test waits for a notice that must arrive: the worker polls
/// every 2 s, so this is generous.
const ARRIVAL: Duration = Duration::from_secs(10);

/// What the receiver answers a delivery with.
pub enum Answer {
    Status(StatusCode),
    /// Never answers (Latch's attempt times out).
    Hang,
    /// Calls back into Latch first, records the status, then answers 200.
    CallBack(Box<reqwest::RequestBuilder>),
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Path and query, exactly as requested.
    pub target: String,
    pub content_type: String,
    pub form: Vec<(String, String)>,
    /// The status of the call back into Latch, for `Answer::CallBack`.
    pub called_back: Option<StatusCode>,
}

impl Delivery {
    pub fn logout_token(&self) -> &str {
        let mut tokens = self.form.iter().filter(|(name, _)| name == "logout_token");
        let token = tokens.next().map(|(_, value)| value.as_str()).unwrap_or_else(|| panic!("{self:?}"));
        assert!(tokens.next().is_none(), "one logout_token: {self:?}");
        token
    }
}

/// An app's back-channel logout endpoint: records every POST and answers
/// as told (200 once the queue of answers is empty).
pub struct Receiver {
    pub base: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::new()));
        let (log, queue) = (deliveries.clone(), answers.clone());
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (log, queue) = (log.clone(), queue.clone());
            async move {
                let answer = queue.lock().unwrap().pop_front();
                let called_back = match &answer {
                    Some(Answer::CallBack(request)) => {
                        let request = request.try_clone().expect("a request without a streamed body");
                        Some(request.send().await.map(|response| response.status()).unwrap_or(StatusCode::BAD_GATEWAY))
                    }
                    _ => None,
                };
                let content_type =
                    headers.get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
                let target = uri.path_and_query().map(ToString::to_string).unwrap_or_default();
                let form = serde_urlencoded::from_bytes(&body).unwrap_or_default();
                log.lock().unwrap().push(Delivery { target, content_type, form, called_back });
                match answer {
                    Some(Answer::Status(status)) => status,
                    Some(Answer::Hang) => std::future::pending().await,
                    _ => StatusCode::OK,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, deliveries, answers, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn answer(&self, answer: Answer) {
        self.answers.lock().unwrap().push_back(answer);
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// The deliveries to `target` once there are `count` of them; fails
    /// after `ARRIVAL`.
    pub async fn wait_for(&self, target: &str, count: usize) -> Vec<Delivery> {
        self.wait_for_within(target, count, ARRIVAL).await
    }

    pub async fn wait_for_within(&self, target: &str, count: usize, limit: Duration) -> Vec<Delivery> {
        let deliveries = poll_until(limit, async || {
            let to_target: Vec<Delivery> =
                self.deliveries().into_iter().filter(|delivery| delivery.target == target).collect();
            (to_target.len() >= count).then_some(to_target)
        })
        .await;
        deliveries
            .unwrap_or_else(|| panic!("{count} deliveries to {target} expected, got (all): {:?}", self.deliveries()))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Notices the store still holds (undelivered, or being attempted).
async fn notices_waiting(app: &TestApp) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(&app.database_url).await.expect("connect");
    let row = sqlx::query("SELECT COUNT(*) AS waiting FROM logout_notices").fetch_one(&mut connection).await.unwrap();
    let waiting = row.try_get("waiting").unwrap();
    connection.close().await.unwrap();
    waiting
}

/// Waits until every notice is delivered (or dropped): after that, no
/// other delivery can come, since notices are enqueued with the session's end.
async fn wait_until_all_delivered(app: &TestApp) {
    let delivered = poll_until(ARRIVAL, async || (notices_waiting(app).await == 0).then_some(())).await;
    assert!(delivered.is_some(), "notices still waiting");
}

/// Checks a logout token as an app must (Back-Channel Logout §2.6): signed
/// by a key of the app's JWKS (verified with `openidconnect`), `typ`
/// `logout+jwt`, `iss` and `aud` the app's, fresh `iat`, short `exp`, a
/// `jti`, the back-channel logout event, and no `nonce`. Returns the claims.
pub async fn verify_logout_token(rp: &Rp, token: &str) -> Value {
    let header = jwt_part(token, 0);
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    assert_eq!(header["alg"], "RS256", "{header}");
    let jwks: CoreJsonWebKeySet =
        http().get(rp.endpoint("jwks_uri")).send().await.unwrap().json().await.expect("JWKS parses");
    let kid = JsonWebKeyId::new(header["kid"].as_str().expect("kid").to_owned());
    let key = jwks.keys().iter().find(|key| key.key_id() == Some(&kid)).expect("the kid is in the app's JWKS");
    let (signed, signature) = token.rsplit_once('.').unwrap();
    key.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        signed.as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
    .expect("the logout token's signature verifies with the app's JWKS");
    let claims = jwt_part(token, 1);
    assert_eq!(claims["iss"], rp.issuer.as_str(), "{claims}");
    assert_eq!(claims["aud"], rp.client_id(), "{claims}");
    let now = latch::clock::now();
    let iat = claims["iat"].as_i64().expect("iat");
    let exp = claims["exp"].as_i64().expect("exp");
    assert!((iat - now).abs() < 3600, "iat near the server's clock: {claims}");
    assert!(exp > iat && exp - iat <= 300, "a short-lived token: {claims}");
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16), "{claims}");
    assert_eq!(claims["events"], serde_json::json!({ EVENT: {} }), "{claims}");
    assert!(claims.get("nonce").is_none(), "a logout token never has a nonce: {claims}");
    claims
}

/// The ID token claims of a token response.
fn id_claims(tokens: &Value) -> Value {
    jwt_part(string(tokens, "id_token"), 1)
}

/// Ends the browser's session at `rp`'s end-session endpoint, with an ID
/// token naming the person (so Latch does not ask first).
async fn end_session(rp: &Rp, browser: &Browser, tokens: &Value) -> reqwest::Response {
    let hint = [("id_token_hint", string(tokens, "id_token"))];
    let response = browser.client.get(rp.endpoint("end_session_endpoint")).query(&hint).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the signed-out page");
    response
}

async fn backchannel_rp(app: &TestApp, slug: &str, uri: &str) -> Rp {
    Rp::register(app, slug, &["--backchannel-logout-uri", uri]).await
}

async fn sign_out_notifies_every_app_of_the_session_and_no_other(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    // The registered URI is used exactly, query included.
    let web = backchannel_rp(&app, "web", &receiver.url("/web/logout?tenant=a&x=1")).await;
    let wiki = backchannel_rp(&app, "wiki", &receiver.url("/wiki/logout")).await;
    let elsewhere = backchannel_rp(&app, "elsewhere", &receiver.url("/elsewhere/logout")).await;
    let plain = Rp::register(&app, "plain", &[]).await;
    assert_eq!(web.discovery["backchannel_logout_supported"], true);
    assert_eq!(web.discovery["backchannel_logout_session_supported"], true);

    let browser = Browser::new();
    let web_tokens = web.tokens(&browser, "openid profile", "ada").await;
    let wiki_tokens = wiki.tokens(&browser, "openid offline_access", "ada").await;
    plain.tokens(&browser, "openid", "ada").await;
    // The same person, in another session: only that session's apps hear of it.
    let other_session = elsewhere.tokens(&Browser::new(), "openid", "ada").await;

    let (web_id, wiki_id) = (id_claims(&web_tokens), id_claims(&wiki_tokens));
    let sid = web_id["sid"].as_str().expect("an ID token carries sid").to_owned();
    assert_eq!(wiki_id["sid"], sid.as_str(), "one session, one sid");
    // A refresh keeps naming the session.
    let refreshed = token_ok(wiki.refresh(string(&wiki_tokens, "refresh_token")).await).await;
    assert_eq!(id_claims(&refreshed)["sid"], sid.as_str());
    assert_ne!(id_claims(&other_session)["sid"], sid.as_str(), "each session its own sid");

    end_session(&web, &browser, &web_tokens).await;
    let delivered = receiver.wait_for("/web/logout?tenant=a&x=1", 1).await;
    let to_wiki = receiver.wait_for("/wiki/logout", 1).await;
    wait_until_all_delivered(&app).await;
    assert_eq!(receiver.deliveries().len(), 2, "only the session's apps with a URI: {:?}", receiver.deliveries());
    for (rp, delivery, id) in [(&web, &delivered[0], &web_id), (&wiki, &to_wiki[0], &wiki_id)] {
        assert_eq!(delivery.content_type, "application/x-www-form-urlencoded");
        let claims = verify_logout_token(rp, delivery.logout_token()).await;
        assert_eq!(claims["sid"], sid.as_str(), "{claims}");
        assert_eq!(claims["sub"], id["sub"], "{claims}");
    }
}

/// Sessions ended by an administrator (`user disable`, `user passwd`, run
/// as another process) are delivered by the running server's worker too.
async fn admin_commands_that_end_sessions_notify_the_apps(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let web = backchannel_rp(&app, "web", &receiver.url("/logout")).await;

    let tokens = web.tokens(&Browser::new(), "openid", "ada").await;
    let output = app.latch(&["user", "passwd", "ada", "--password-stdin"], Some("a new passphrase for ada")).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let claims = verify_logout_token(&web, receiver.wait_for("/logout", 1).await[0].logout_token()).await;
    assert_eq!(claims["sid"], id_claims(&tokens)["sid"]);
    assert_eq!(claims["sub"], id_claims(&tokens)["sub"]);

    let first = web.tokens(&Browser::new(), "openid", "grace").await;
    let second = web.tokens(&Browser::new(), "openid", "grace").await;
    app.admin(&["user", "disable", "grace"]).await;
    let delivered = receiver.wait_for("/logout", 3).await;
    let mut sids = Vec::new();
    for delivery in &delivered[1..] {
        let claims = verify_logout_token(&web, delivery.logout_token()).await;
        assert_eq!(claims["sub"], id_claims(&first)["sub"]);
        sids.push(claims["sid"].as_str().unwrap().to_owned());
    }
    sids.sort();
    let mut expected = [&first, &second].map(|tokens| id_claims(tokens)["sid"].as_str().unwrap().to_owned());
    expected.sort();
    assert_eq!(sids, expected, "one notice per ended session");
}

/// A failed delivery is tried again after the backoff (10 s, on the
/// server's clock), with a new token; a success ends the retries.
async fn a_failed_delivery_is_retried_with_a_fresh_token(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let web = backchannel_rp(&app, "web", &receiver.url("/logout")).await;
    receiver.answer(Answer::Status(StatusCode::INTERNAL_SERVER_ERROR));
    let browser = Browser::new();
    let tokens = web.tokens(&browser, "openid", "ada").await;
    end_session(&web, &browser, &tokens).await;
    receiver.wait_for("/logout", 1).await;
    assert_eq!(notices_waiting(&app).await, 1, "the failed notice waits for its retry");

    app.clock.advance(11);
    let delivered = receiver.wait_for("/logout", 2).await;
    wait_until_all_delivered(&app).await;
    let (first, second) = (delivered[0].logout_token(), delivered[1].logout_token());
    assert_ne!(first, second, "a token is minted per attempt");
    let claims = verify_logout_token(&web, second).await;
    assert_eq!(claims["sid"], id_claims(&tokens)["sid"]);
    assert_eq!(receiver.deliveries().len(), 2);
}

/// An app that never answers delays neither the sign-out nor the other
/// apps' notices.
async fn a_hanging_app_delays_neither_the_sign_out_nor_other_apps(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let slow = backchannel_rp(&app, "slow", &receiver.url("/slow")).await;
    let fast = backchannel_rp(&app, "fast", &receiver.url("/fast")).await;
    receiver.answer(Answer::Hang);
    let browser = Browser::new();
    let tokens = slow.tokens(&browser, "openid", "ada").await;
    // The slow app is signed in first, so its notice is claimed first.
    fast.tokens(&browser, "openid", "ada").await;

    let started = Instant::now();
    end_session(&slow, &browser, &tokens).await;
    assert!(started.elapsed() < Duration::from_secs(2), "sign-out took {:?}", started.elapsed());
    receiver.wait_for("/slow", 1).await;
    receiver.wait_for("/fast", 1).await;
    assert!(started.elapsed() < Duration::from_secs(8), "the fast app waited for the slow one");
}

/// The app may call back into Latch while it handles a notice (here: it
/// gets a token with the client credentials grant, a write): Latch holds no
/// database lock while it delivers (SQLite has one writer), so the call
/// succeeds and the delivery completes.
async fn an_app_may_call_back_into_latch_while_notified(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let web =
        Rp::register(&app, "web", &["--backchannel-logout-uri", &receiver.url("/logout"), "--client-credentials"])
            .await;
    let browser = Browser::new();
    let tokens = web.tokens(&browser, "openid", "ada").await;
    let call_back = http()
        .post(web.endpoint("token_endpoint"))
        .basic_auth(web.client_id(), web.credentials.client_secret.as_deref())
        .form(&[("grant_type", "client_credentials")]);
    receiver.answer(Answer::CallBack(Box::new(call_back)));
    end_session(&web, &browser, &tokens).await;
    let delivered = receiver.wait_for("/logout", 1).await;
    assert_eq!(delivered[0].called_back, Some(StatusCode::OK), "the call back into Latch during delivery");
    wait_until_all_delivered(&app).await;
}

/// `--backchannel-logout-uri` takes absolute http(s) URLs (plain http on
/// loopback too), shows in `app show`, and an empty value removes it.
async fn the_backchannel_logout_uri_is_validated_shown_and_cleared(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    for bad in
        ["/relative", "ftp://host/logout", "com.example.app:/logout", "http://host/logout#top", "http://u:p@host/"]
    {
        let output = app
            .latch(
                &[
                    "app",
                    "add",
                    "bad",
                    "--name",
                    "Bad",
                    "--redirect-uri",
                    "https://a.example/cb",
                    "--backchannel-logout-uri",
                    bad,
                ],
                None,
            )
            .await;
        assert!(!output.status.success(), "{bad} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("back-channel logout URI"), "{bad}: {stderr}");
    }
    let uri = "http://127.0.0.1:8080/oidc/backchannel?tenant=home";
    backchannel_rp(&app, "web", uri).await;
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", "web", "--json"]).await).unwrap();
    assert_eq!(shown["options"]["backchannel_logout_uri"], uri, "{shown}");
    app.admin(&["app", "update", "web", "--backchannel-logout-uri", ""]).await;
    let shown: Value = serde_json::from_str(&app.admin(&["app", "show", "web", "--json"]).await).unwrap();
    assert_eq!(shown["options"]["backchannel_logout_uri"], Value::Null, "{shown}");
}

/// Signing out through forward auth (`/outpost.goauthentik.io/sign_out`,
/// confirmed by POST) ends the Latch session like the end-session endpoint,
/// so an OIDC app of the same session hears of it.
async fn forward_auth_sign_out_notifies_the_sessions_oidc_apps(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let web = backchannel_rp(&app, "web", &receiver.url("/web/logout")).await;
    app.admin(&["app", "add", "kuma", "--name", "kuma", "--proxy", "--external-url", "https://kuma.example.com"]).await;
    let browser = Browser::new();
    let sid = id_claims(&web.tokens(&browser, "openid", "ada").await)["sid"].as_str().expect("sid").to_owned();
    let signed_in = sign_in_directly(&app, &browser, "https://kuma.example.com/").await;
    // The app's cookie, as the proxy passes it on (it is scoped to the
    // app's host, so the test's browser keeps no copy).
    let cookie = app_cookie(&signed_in).split(';').next().expect("name=value").to_owned();

    let (client, sign_out) = (http(), app.url("/outpost.goauthentik.io/sign_out"));
    let html = client.get(&sign_out).header("Cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let action = unescape_html(html.split("action=\"").nth(1).expect("a form").split('"').next().unwrap());
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token on the sign-out page");
    let form = [("csrf_token", csrf.as_str()), ("latch_logout", "yes")];
    let response = client.post(app.url(&action)).header("Cookie", &cookie).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the signed-out page");

    let delivered = receiver.wait_for("/web/logout", 1).await;
    let claims = verify_logout_token(&web, delivered[0].logout_token()).await;
    assert_eq!(claims["sid"], sid.as_str(), "{claims}");
}

/// A browser holds one session. Signing in again in it starts a new one,
/// and the one it replaces, which signing out can no longer reach, must not
/// live on with its apps signed in. The same person signing in again
/// (`prompt=login`) continues it: one `sid`, and signing out tells every app
/// of both sign-ins and ends their tokens. Someone else signing in ends it
/// at once, as a sign-out would.
async fn a_sign_in_that_replaces_a_session_leaves_nothing_signed_in(backend: Backend) {
    let Some(app) = server(backend).await else { return };
    let receiver = Receiver::start().await;
    let web = backchannel_rp(&app, "web", &receiver.url("/web/logout")).await;
    let wiki = backchannel_rp(&app, "wiki", &receiver.url("/wiki/logout")).await;

    let browser = Browser::new();
    let web_tokens = web.tokens(&browser, "openid offline_access", "ada").await;
    let mut again = wiki.request("openid offline_access", "again");
    again.push(("prompt".into(), "login".into()));
    let wiki_tokens = token_ok(wiki.redeem(&wiki.code(&browser, &again, "ada").await).await).await;
    let sid = id_claims(&web_tokens)["sid"].as_str().expect("sid").to_owned();
    assert_eq!(id_claims(&wiki_tokens)["sid"], sid.as_str(), "the same person's sign-in continues the session");

    end_session(&wiki, &browser, &wiki_tokens).await;
    let to_web = receiver.wait_for("/web/logout", 1).await;
    assert_eq!(verify_logout_token(&web, to_web[0].logout_token()).await["sid"], sid.as_str());
    receiver.wait_for("/wiki/logout", 1).await;
    let refused = web.refresh(string(&web_tokens, "refresh_token")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "web's tokens end with the sign-out");

    // grace signs in where ada was signed in: ada's session ends then.
    let shared = Browser::new();
    let ada_tokens = web.tokens(&shared, "openid offline_access", "ada").await;
    let response = shared.sign_in(&app.base, "grace", crate::relying_party::PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_web = receiver.wait_for("/web/logout", 2).await;
    assert_eq!(verify_logout_token(&web, to_web[1].logout_token()).await["sid"], id_claims(&ada_tokens)["sid"]);
    let refused = web.refresh(string(&ada_tokens, "refresh_token")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "ada's tokens end when grace signs in");
}

on_every_backend!(
    sign_out_notifies_every_app_of_the_session_and_no_other,
    forward_auth_sign_out_notifies_the_sessions_oidc_apps,
    a_sign_in_that_replaces_a_session_leaves_nothing_signed_in,
    admin_commands_that_end_sessions_notify_the_apps,
    a_failed_delivery_is_retried_with_a_fresh_token,
    a_hanging_app_delays_neither_the_sign_out_nor_other_apps,
    an_app_may_call_back_into_latch_while_notified,
    the_backchannel_logout_uri_is_validated_shown_and_cleared,
);
