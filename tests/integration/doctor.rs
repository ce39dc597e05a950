//! `latch doctor`, run as the real binary against real failing setups: an
//! app whose redirect URI or client secret is wrong (as a real OIDC client
//! sends them), PKCE, replayed codes and an issuer without its slash, two
//! servers on two databases behind one URL, a skewed clock, https
//! configured where plain http answers, and a clean setup.

use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, RedirectUrl};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::common::{
    AppCredentials, Backend, Browser, Options, PASSWORD, TestApp, assert_error_page, code_request, http, poll_until,
    query_param, run_latch, token_error, token_ok,
};
use crate::on_every_backend;

const REGISTERED: &str = "https://karakeep.example.com/api/auth/callback/authentik";
const SENT: &str = "https://karakeep.example.com/api/auth/callback/custom";

/// What `latch doctor --json` said, and whether it exited successfully.
struct Diagnosis {
    healthy: bool,
    problems: Vec<Value>,
}

impl Diagnosis {
    fn of_kind(&self, kind: &str) -> Option<&Value> {
        self.problems.iter().find(|problem| problem["kind"] == kind)
    }

    fn kinds(&self) -> Vec<&str> {
        self.problems.iter().filter_map(|problem| problem["kind"].as_str()).collect()
    }
}

/// `latch doctor --json <args>` against `database_url`, as configured with `public_url`.
async fn doctor(database_url: &str, public_url: &str, args: &[&str]) -> Diagnosis {
    let output = run_latch(database_url, public_url, &[&["doctor", "--json"], args].concat(), None).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("doctor --json: {error}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr))
    });
    let problems = answer["problems"].as_array().expect("problems").clone();
    for problem in &problems {
        for field in ["kind", "detail", "fix"] {
            assert!(problem[field].as_str().is_some_and(|text| !text.is_empty()), "{field}: {problem}");
        }
        assert!(problem.get("app").is_some(), "app is always present (null or a slug): {problem}");
    }
    assert_eq!(output.status.success(), problems.is_empty(), "exit status vs problems: {problems:?}");
    Diagnosis { healthy: output.status.success(), problems }
}

/// Runs the doctor until `found` holds of its diagnosis: the audit trail
/// and heartbeats are written in the background.
async fn doctor_until(app: &TestApp, args: &[&str], found: impl Fn(&Diagnosis) -> bool) -> Diagnosis {
    let mut last = None;
    let diagnosis = poll_until(Duration::from_secs(10), async || {
        let diagnosis = doctor(&app.database_url, &app.public_url, args).await;
        if found(&diagnosis) {
            return Some(diagnosis);
        }
        last = Some(diagnosis.problems);
        None
    })
    .await;
    diagnosis.unwrap_or_else(|| panic!("the doctor never found it; last said {last:?}"))
}

/// An OpenID Connect client as an app configures one: discovery, then its
/// credentials and the redirect URI it sends.
async fn oidc_client(
    credentials: &AppCredentials,
    secret: &str,
    redirect_uri: &str,
) -> CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
> {
    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(credentials.issuer.clone()).unwrap(), &http())
        .await
        .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(credentials.client_id.clone()),
        Some(ClientSecret::new(secret.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).unwrap())
}

async fn a_clean_setup_reports_no_problem(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("karakeep", &[REGISTERED], &[]).await;
    let code = Browser::new().code(&app, &code_request(&credentials.client_id, REGISTERED, "s"), "ada", PASSWORD).await;
    token_ok(app.redeem(&credentials, &code, REGISTERED, None).await).await;
    let diagnosis = doctor(&app.database_url, &app.base, &[]).await;
    assert!(diagnosis.healthy, "{:?}", diagnosis.problems);
    let text = app.admin(&["doctor"]).await;
    assert_eq!(text.trim(), "No problems found.");
    let scoped = doctor(&app.database_url, &app.base, &["--app", "karakeep"]).await;
    assert!(scoped.healthy, "{:?}", scoped.problems);
    let unknown = app.latch(&["doctor", "--app", "nope"], None).await;
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("\"nope\""));
}

async fn a_mismatched_redirect_and_a_wrong_secret_are_explained_until_fixed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("karakeep", &[REGISTERED], &[]).await;
    let secret = credentials.client_secret.clone().expect("confidential");

    // Karakeep calls back at /api/auth/callback/custom, the operator
    // registered …/authentik: the app's own OIDC client sends the request.
    let misconfigured = oidc_client(&credentials, &secret, SENT).await;
    let (url, _, _) = misconfigured
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .url();
    let browser = Browser::new();
    let message = assert_error_page(browser.visit(&app.base, url.as_str()).await).await;
    assert!(message.contains("/api/auth/callback/custom"), "{message}");

    // Another app's secret pasted in: the code is good, the secret is not.
    let wrong_secret = oidc_client(&credentials, "not-the-secret", REGISTERED).await;
    let code = browser.code(&app, &code_request(&credentials.client_id, REGISTERED, "s"), "ada", PASSWORD).await;
    let refused = wrong_secret.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http()).await;
    assert!(refused.is_err(), "a wrong secret must be refused");

    let diagnosis = doctor_until(&app, &[], |diagnosis| {
        diagnosis.of_kind("redirect_uri_mismatch").is_some() && diagnosis.of_kind("wrong_client_secret").is_some()
    })
    .await;
    assert!(!diagnosis.healthy);
    let mismatch = diagnosis.of_kind("redirect_uri_mismatch").unwrap();
    assert_eq!(mismatch["app"], "karakeep");
    let detail = mismatch["detail"].as_str().unwrap();
    assert!(
        detail.contains(r#"path "/api/auth/callback/custom" vs registered "/api/auth/callback/authentik""#),
        "{detail}"
    );
    let fix = mismatch["fix"].as_str().unwrap();
    assert_eq!(fix, format!("latch app update karakeep --redirect-uri {REGISTERED} --redirect-uri {SENT}"));
    let wrong = diagnosis.of_kind("wrong_client_secret").unwrap();
    assert_eq!(wrong["app"], "karakeep");
    assert!(wrong["fix"].as_str().unwrap().contains("latch app rotate-secret karakeep"), "{wrong}");
    let scoped = doctor(&app.database_url, &app.base, &["--app", "karakeep"]).await;
    assert_eq!(scoped.kinds().len(), 2, "{:?}", scoped.problems);

    // Apply the fix as printed; the app sends its right secret again, a
    // moment later. Both problems are gone.
    let args: Vec<&str> = fix.split(' ').skip(1).collect();
    app.admin(&args).await;
    app.clock.advance(1);
    let fixed = oidc_client(&credentials, &secret, SENT).await;
    let (url, _, _) =
        fixed.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random).url();
    let callback = browser.authorize(&app.base, url.as_str(), "ada", PASSWORD).await;
    assert!(callback.as_str().starts_with(SENT), "{callback}");
    let code = query_param(&callback, "code").expect("code");
    fixed.exchange_code(AuthorizationCode::new(code)).unwrap().request_async(&http()).await.expect("tokens");
    let healed = doctor_until(&app, &[], |diagnosis| diagnosis.healthy).await;
    assert_eq!(healed.problems, Vec::<Value>::new());
}

async fn pkce_errors_replayed_codes_and_an_issuer_without_its_slash_are_explained(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.add_user("ada", PASSWORD, &[]).await;
    let credentials = app.add_app("karakeep", &[REGISTERED], &[]).await;
    let browser = Browser::new();

    // A code redeemed twice.
    let code = browser.code(&app, &code_request(&credentials.client_id, REGISTERED, "s1"), "ada", PASSWORD).await;
    token_ok(app.redeem(&credentials, &code, REGISTERED, None).await).await;
    token_error(app.redeem(&credentials, &code, REGISTERED, None).await, StatusCode::BAD_REQUEST, "invalid_grant")
        .await;

    // A code asked for with a challenge, redeemed with another verifier.
    let verifier = "a".repeat(43);
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let mut request = code_request(&credentials.client_id, REGISTERED, "s2");
    request.extend([("code_challenge", challenge), ("code_challenge_method", "S256")]);
    let code = browser.code(&app, &request, "ada", PASSWORD).await;
    let refused = app.redeem(&credentials, &code, REGISTERED, Some(&verifier)).await;
    token_error(refused, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // An app configured with the issuer minus its slash, fetching discovery
    // the RFC 8414 way.
    let path = "/.well-known/openid-configuration/application/o/karakeep";
    assert_eq!(http().get(app.url(path)).send().await.unwrap().status(), StatusCode::OK);

    let diagnosis = doctor_until(&app, &[], |diagnosis| diagnosis.problems.len() >= 3).await;
    assert_eq!(diagnosis.kinds(), ["pkce_error", "code_replayed", "issuer_without_slash"], "{:?}", diagnosis.problems);
    let pkce = diagnosis.of_kind("pkce_error").unwrap();
    assert!(pkce["detail"].as_str().unwrap().contains("code_verifier does not match the code_challenge"), "{pkce}");
    let slash = diagnosis.of_kind("issuer_without_slash").unwrap();
    assert!(slash["fix"].as_str().unwrap().contains(&format!("{} exactly", app.issuer("karakeep"))), "{slash}");
    assert!(diagnosis.problems.iter().all(|problem| problem["app"] == "karakeep"));
}

/// The seconds a `clock_skew` problem names.
fn skew_seconds(problem: &Value) -> Vec<f64> {
    let detail = problem["detail"].as_str().unwrap_or_default();
    detail.split_whitespace().filter_map(|word| word.parse().ok()).collect()
}

async fn a_skewed_clock_is_reported(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else { return };
    app.clock.advance(120);
    // Measured over a round trip to the database: 120 s give or take its
    // time, once a heartbeat has measured after the move (one measuring
    // across it reports the midpoint).
    let diagnosis = doctor_until(&app, &[], |diagnosis| {
        diagnosis
            .of_kind("clock_skew")
            .is_some_and(|skew| matches!(skew_seconds(skew)[..], [seconds] if (115.0..125.0).contains(&seconds)))
    })
    .await;
    assert!(!diagnosis.healthy);
    assert_eq!(diagnosis.kinds(), ["clock_skew"], "{:?}", diagnosis.problems);
    let skew = diagnosis.of_kind("clock_skew").unwrap();
    assert_eq!(skew["app"], Value::Null);
    assert!(skew["detail"].as_str().unwrap().contains("s ahead of the database"), "{skew}");
    assert!(skew["fix"].as_str().unwrap().contains("NTP"), "{skew}");
}

on_every_backend!(
    a_clean_setup_reports_no_problem,
    a_mismatched_redirect_and_a_wrong_secret_are_explained_until_fixed,
    pkce_errors_replayed_codes_and_an_issuer_without_its_slash_are_explained,
    a_skewed_clock_is_reported,
);

/// A load balancer: each connection to it goes to the next of `backends`.
async fn round_robin(listener: TcpListener, backends: Vec<String>) {
    for turn in 0.. {
        let Ok((mut client, _)) = listener.accept().await else { return };
        let backend = backends[turn % backends.len()].clone();
        tokio::spawn(async move {
            if let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_two_databases_behind_one_url_are_split_brain() {
    let balancer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", balancer.local_addr().unwrap());
    let options = || Options { public_url: Some(public_url.clone()), fresh_database: true, ..Options::default() };
    let a = TestApp::spawn_with(Backend::Sqlite, options()).await.unwrap();
    let b = TestApp::spawn_with(Backend::Sqlite, options()).await.unwrap();
    let backends = [&a, &b].map(|server| server.base.trim_start_matches("http://").to_owned());
    let balancing = tokio::spawn(round_robin(balancer, backends.to_vec()));
    // The operator set each host up alike, each with a database of its own.
    for server in [&a, &b] {
        let args = ["app", "add", "karakeep", "--name", "Karakeep", "--redirect-uri", REGISTERED];
        let output = run_latch(&server.database_url, &public_url, &args, None).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let database_of = async |server: &TestApp| {
        let response = http().get(server.url("/health/ready")).send().await.unwrap();
        response.headers()["latch-database-id"].to_str().unwrap().to_owned()
    };
    let (database_a, database_b) = (database_of(&a).await, database_of(&b).await);
    assert_ne!(database_a, database_b);

    let diagnosis = doctor(&a.database_url, &public_url, &[]).await;
    assert!(!diagnosis.healthy);
    assert_eq!(diagnosis.kinds(), ["split_brain"], "{:?}", diagnosis.problems);
    let detail = diagnosis.problems[0]["detail"].as_str().unwrap();
    assert!(detail.contains(&database_a) && detail.contains(&database_b), "{detail}");
    assert!(detail.contains("invalid_grant"), "{detail}");
    assert!(diagnosis.problems[0]["fix"].as_str().unwrap().contains("one PostgreSQL database"));
    balancing.abort();
}

/// Per-host state behind a load balancer, the classic way: the second host
/// got a copy of the first one's database (a restored backup), so both know
/// the app and publish the same keys, but a code issued on one is unknown
/// on the other. The app's `invalid_grant` is explained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_issued_on_another_copy_of_the_database_is_explained() {
    let balancer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public_url = format!("http://{}", balancer.local_addr().unwrap());
    let a_options = Options { public_url: Some(public_url.clone()), fresh_database: true, ..Options::default() };
    let a = TestApp::spawn_with(Backend::Sqlite, a_options).await.unwrap();
    let admin = async |args: &[&str], stdin| {
        let output = run_latch(&a.database_url, &public_url, args, stdin).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    admin(&["user", "add", "ada", "--email", "ada@example.com", "--password-stdin"], Some(PASSWORD)).await;
    let added = admin(&["app", "add", "karakeep", "--name", "Karakeep", "--redirect-uri", REGISTERED, "--json"], None);
    let credentials: AppCredentials = serde_json::from_str(&added.await).unwrap();
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.db");
    admin(&["backup", copy.to_str().unwrap()], None).await;
    let b_options = Options {
        public_url: Some(public_url.clone()),
        database_url: Some(format!("sqlite://{}", copy.display())),
        ..Options::default()
    };
    let b = TestApp::spawn_with(Backend::Sqlite, b_options).await.unwrap();
    let backends = [&a, &b].map(|server| server.base.trim_start_matches("http://").to_owned());
    let balancing = tokio::spawn(round_robin(balancer, backends.to_vec()));

    // The browser's requests went to a, the app's token request to b.
    let code = Browser::new().code(&a, &code_request(&credentials.client_id, REGISTERED, "s"), "ada", PASSWORD).await;
    let refused =
        token_error(b.redeem(&credentials, &code, REGISTERED, None).await, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(refused.await["error_description"].as_str().unwrap().contains("unknown"));

    let diagnosis = doctor_until(&b, &[], |diagnosis| diagnosis.of_kind("code_unknown").is_some()).await;
    let unknown = diagnosis.of_kind("code_unknown").unwrap();
    assert_eq!(unknown["app"], "karakeep");
    assert!(unknown["detail"].as_str().unwrap().contains("another database"), "{unknown}");
    assert!(unknown["fix"].as_str().unwrap().contains("one PostgreSQL database"), "{unknown}");
    balancing.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_public_url_answered_in_plain_http_is_reported() {
    let options = Options { https_public_url: true, ..Options::default() };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await.unwrap();
    let public_url = app.base.replacen("http://", "https://", 1);
    let diagnosis = doctor(&app.database_url, &public_url, &[]).await;
    assert_eq!(diagnosis.kinds(), ["https_served_over_http"], "{:?}", diagnosis.problems);
    assert!(diagnosis.problems[0]["detail"].as_str().unwrap().contains(&public_url));
}
