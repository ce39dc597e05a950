//! Latch in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), signs a person in to a tiny relying party through Latch,
//! asks for consent, signs in again without a page (SSO), and signs out.
//!
//! The relying party is an axum server started here, using the `openidconnect`
//! crate as its client library (discovery, authorization URL with PKCE, code
//! exchange with `client_secret_basic`, ID token and nonce verification,
//! RP-initiated logout). Chromium reaches it as `http://rp.test:<port>`
//! (mapped to 127.0.0.1 with `--host-resolver-rules`) while Latch stays on
//! `http://127.0.0.1:<port>`: the two are different sites, as an app and its
//! identity provider usually are, so the browser applies its cross-site rules
//! (SameSite cookies on redirects and on the form_post POST) exactly as it
//! would in production.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).
//! Without them the tests print "SKIPPED (chromium not installed)" and pass,
//! except under CI (`CI` set), where they fail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::common::{AppCredentials, Backend, TestApp, poll_until};

const PASSWORD: &str = "correct horse battery staple";
/// The relying party's host name as the browser sees it.
const RP_HOST: &str = "rp.test";
/// How long the browser may take to reach a page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    FormPost,
    Query,
}

impl Mode {
    fn response_mode(self) -> &'static str {
        match self {
            Mode::FormPost => "form_post",
            Mode::Query => "query",
        }
    }

    /// How the browser delivers the authorization response to the callback.
    fn callback_method(self) -> &'static str {
        match self {
            Mode::FormPost => "POST",
            Mode::Query => "GET",
        }
    }
}

/// How the person fills in the sign-in form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignIn {
    /// Username and password on the first page.
    OnePage,
    /// The username alone, then the password on the next page.
    IdentifyFirst,
}

/// `response_mode=form_post`: login → consent (Allow) → the auto-submitted
/// form lands on the app → SSO → logout → the password is asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_post_login_consent_sso_logout() {
    run(Mode::FormPost, SignIn::OnePage, false).await
}

/// `response_mode=query`: login in two steps (username, then password) →
/// consent (Deny) → the app receives `access_denied`; then consent (Allow)
/// without a second login → SSO → logout → the password is asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_consent_denied_then_allowed_sso_logout() {
    run(Mode::Query, SignIn::IdentifyFirst, true).await
}

async fn run(mode: Mode, sign_in: SignIn, deny_first: bool) {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let Some(latch) = TestApp::spawn(Backend::Sqlite).await else { return };
    latch.add_user("ada", PASSWORD, &[]).await;
    let rp = RelyingParty::start(&latch, mode).await;
    let driver = Chromedriver::start(&chromedriver);
    let browser = driver.session(&chromium).await;

    // Open the app: it sends the browser to Latch, which asks for a password.
    browser.goto(&rp.url("/")).await;
    browser.wait_for("the Latch login page", |url, _| url.starts_with(&latch.url("/login?"))).await;
    browser.find("#username").await.send_keys(&browser, "ada").await;
    if sign_in == SignIn::IdentifyFirst {
        browser.find("button[type=submit]").await.click(&browser).await;
        browser
            .wait_for("the password step", |url, source| {
                url.starts_with(&latch.url("/login")) && source.contains("Signing in as")
            })
            .await;
        let who = browser.find("p.who").await.text(&browser).await;
        assert_eq!(who, "Signing in as ada — not you?", "{}", browser.snapshot().await);
    }
    browser.find("#password").await.send_keys(&browser, PASSWORD).await;
    browser.find("button[type=submit]").await.click(&browser).await;

    // Signed in: Latch asks whether the app may have the requested scopes.
    consent_page(&browser, &latch).await;
    assert_session_cookie(&browser, &latch).await;

    if deny_first {
        browser.find("button[name=latch_consent][value=deny]").await.click(&browser).await;
        let source = browser
            .wait_for("the app's error page", |url, source| {
                url.starts_with(&rp.url("/callback")) && source.contains("Sign-in failed")
            })
            .await;
        assert!(source.contains("access_denied"), "{}", browser.snapshot().await);
        let seen = rp.last_callback();
        assert_eq!(seen.method, mode.callback_method(), "{seen:?}");
        assert_eq!(seen.params.get("error").map(String::as_str), Some("access_denied"), "{seen:?}");
        assert_eq!(seen.params.get("iss"), Some(&rp.issuer), "{seen:?}");
        assert!(seen.params.get("state").is_some_and(|state| rp.issued_state(state)), "{seen:?}");
        assert!(!seen.params.contains_key("code"), "{seen:?}");

        // Change of mind: the session is there, so only the consent page.
        browser.goto(&rp.url("/")).await;
        consent_page(&browser, &latch).await;
    }

    browser.find("button[name=latch_consent][value=allow]").await.click(&browser).await;
    hello(&browser, &rp).await;
    let seen = rp.last_callback();
    assert_eq!(seen.method, mode.callback_method(), "{seen:?}");
    assert!(seen.params.contains_key("code"), "{seen:?}");
    assert_eq!(seen.params.get("iss"), Some(&rp.issuer), "{seen:?}");
    assert_eq!(rp.sign_ins(), 1);

    // The app again: Latch's session and the recorded consent mean no page
    // at all on Latch, straight back to the app.
    browser.goto(&rp.url("/")).await;
    hello(&browser, &rp).await;
    assert_eq!(rp.sign_ins(), 2, "the second visit must sign in again through Latch, silently");
    assert_eq!(rp.last_callback().method, mode.callback_method());

    // Sign out: the app sends the browser to Latch's end-session endpoint,
    // which ends the session and returns to the app's registered /bye.
    browser.goto(&rp.url("/logout")).await;
    let source = browser
        .wait_for("the app's /bye page", |url, source| url.starts_with(&rp.url("/bye")) && source.contains("Bye"))
        .await;
    let logout_state = rp.logout_state().expect("the app started a logout");
    let landed = url::Url::parse(&browser.url().await).expect("URL");
    assert_eq!(crate::common::query_param(&landed, "state").as_deref(), Some(logout_state.as_str()));
    assert!(source.contains(&format!("state {logout_state}")), "{}", browser.snapshot().await);

    // The session is over: the app's next sign-in asks for the password.
    browser.goto(&rp.url("/")).await;
    browser.wait_for("the Latch login page", |url, _| url.starts_with(&latch.url("/login?"))).await;
    browser.find("#password").await;
    let cookies = browser.cookies().await;
    assert!(
        !cookies.iter().any(|cookie| cookie["name"] == "latch_session"),
        "the session cookie must be gone after logout: {cookies:?}"
    );
    assert_eq!(rp.sign_ins(), 2);

    // Nothing the browser did was refused by a Content-Security-Policy
    // (the form_post page's inline script runs only because its hash is allowed).
    let refused: Vec<String> = browser
        .console()
        .await
        .into_iter()
        .filter(|line| line.contains("Content Security Policy") && !line.contains("favicon"))
        .collect();
    assert!(refused.is_empty(), "the browser refused something: {refused:#?}");
    browser.quit().await;
}

/// The device grant's page (RFC 8628 §3.3): a device asks for codes; a
/// person opens `/device`, signs in, types the user code in lower case
/// without its dash, sees which app asks for what, and approves; the
/// device's next poll gets tokens. A screenshot of the confirmation is kept
/// in `CARGO_TARGET_TMPDIR` as `device-confirmation.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_page_signs_in_and_approves_a_device() {
    let Some((chromium, chromedriver)) = browser_binaries() else { return };
    let Some(latch) = TestApp::spawn(Backend::Sqlite).await else { return };
    latch.add_user("ada", PASSWORD, &[]).await;
    let tv = latch.add_app("tv", &["https://tv.example.com/unused"], &["--device-code"]).await;
    let secret = tv.client_secret.as_deref().expect("a confidential app");
    let device = |path: &str, form: &[(&str, &str)]| {
        crate::common::http().post(latch.url(path)).basic_auth(&tv.client_id, Some(secret)).form(form).send()
    };
    let codes: Value = device("/application/o/device/", &[("scope", "openid profile email")])
        .await
        .expect("device authorization")
        .json()
        .await
        .expect("JSON");
    let user_code = codes["user_code"].as_str().expect("user_code").to_owned();
    let driver = Chromedriver::start(&chromedriver);
    let browser = driver.session(&chromium).await;

    browser.goto(codes["verification_uri"].as_str().expect("verification_uri")).await;
    browser.wait_for("the Latch login page", |url, _| url.starts_with(&latch.url("/login?"))).await;
    browser.find("#username").await.send_keys(&browser, "ada").await;
    browser.find("#password").await.send_keys(&browser, PASSWORD).await;
    browser.find("button[type=submit]").await.click(&browser).await;
    browser.wait_for("the code form", |url, source| url == latch.url("/device") && source.contains("Continue")).await;
    let typed = user_code.to_lowercase().replace('-', "");
    browser.find("input#user_code").await.send_keys(&browser, &typed).await;
    browser.find("button[type=submit]").await.click(&browser).await;

    browser.wait_for("the confirmation", |_, source| source.contains("value=\"approve\"")).await;
    assert_eq!(browser.find("h1").await.text(&browser).await, "Connect tv?");
    assert_eq!(browser.find("strong#user_code").await.text(&browser).await, user_code);
    let mut scopes = Vec::new();
    for item in browser.find_all("li").await {
        scopes.push(item.text(&browser).await);
    }
    scopes.sort();
    let expected =
        ["Your account identifier (openid)", "Your email address (email)", "Your name, username and groups (profile)"];
    assert_eq!(scopes, expected, "{}", browser.snapshot().await);
    let screenshot = browser.get("/screenshot").await.expect("screenshot");
    let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, screenshot.as_str().expect("base64"))
        .expect("PNG");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("device-confirmation.png");
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot of the confirmation: {}", path.display());

    browser.find("button[value=approve]").await.click(&browser).await;
    browser.wait_for("the approval", |_, source| source.contains("Device connected")).await;
    let grant = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", codes["device_code"].as_str().expect("device_code")),
    ];
    let tokens: Value = device("/application/o/token/", &grant).await.expect("poll").json().await.expect("JSON");
    assert!(tokens["id_token"].is_string(), "{tokens}");

    let refused: Vec<String> =
        browser.console().await.into_iter().filter(|line| line.contains("Content Security Policy")).collect();
    assert!(refused.is_empty(), "the browser refused something: {refused:#?}");
    browser.quit().await;
}

/// Waits for Latch's consent page and checks what it lists.
pub(crate) async fn consent_page(browser: &Browser, latch: &TestApp) {
    browser
        .wait_for("the Latch consent page", |url, source| {
            url.starts_with(&latch.url("/application/o/authorize/")) && source.contains("latch_consent")
        })
        .await;
    let heading = browser.find("h1").await.text(browser).await;
    assert_eq!(heading, "Allow Tiny RP?");
    let mut scopes = Vec::new();
    for item in browser.find_all("li").await {
        scopes.push(item.text(browser).await);
    }
    scopes.sort();
    let expected =
        ["Your account identifier (openid)", "Your email address (email)", "Your name, username and groups (profile)"];
    assert_eq!(scopes, expected, "{}", browser.snapshot().await);
}

/// Waits for the app's greeting after a successful callback.
async fn hello(browser: &Browser, rp: &RelyingParty) {
    browser
        .wait_for("the app's greeting", |url, source| {
            url.starts_with(&rp.url("/callback")) && (source.contains("Hello") || source.contains("failed"))
        })
        .await;
    let heading = browser.find("h1").await.text(browser).await;
    assert_eq!(heading, "Hello ada", "{}", browser.snapshot().await);
}

/// Latch's cookies as the browser stored them: HttpOnly, SameSite=Lax.
async fn assert_session_cookie(browser: &Browser, latch: &TestApp) {
    assert!(browser.url().await.starts_with(&latch.base));
    let cookies = browser.cookies().await;
    let session = cookies
        .iter()
        .find(|cookie| cookie["name"] == "latch_session")
        .unwrap_or_else(|| panic!("no latch_session cookie after signing in: {cookies:?}"));
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    assert_eq!(session["path"], "/", "{session}");
    assert_eq!(session["domain"], "127.0.0.1", "a host-only cookie: {session}");
    for cookie in &cookies {
        if cookie["name"].as_str().is_some_and(|name| name.starts_with("latch_")) {
            assert_eq!(cookie["httpOnly"], true, "{cookie}");
            assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
        }
    }
}

// ---------------------------------------------------------------------------
// The relying party.

type RpClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

const RP_COOKIE: &str = "rp_session";

pub(crate) struct RelyingParty {
    state: Arc<RpState>,
    base: String,
    issuer: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RelyingParty {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct RpState {
    base: String,
    issuer: String,
    mode: Mode,
    client: RpClient,
    end_session: EndSessionUrl,
    http: reqwest::Client,
    /// Flows started at `/`, by `state`. Not in a cookie: the form_post
    /// callback is a cross-site POST, which carries no SameSite=Lax cookie
    /// (an app on https would use `SameSite=None; Secure` instead).
    pending: Mutex<HashMap<String, (Nonce, PkceCodeVerifier)>>,
    /// Every `state` the app ever sent.
    issued: Mutex<Vec<String>>,
    /// Signed-in browsers, by the `rp_session` cookie.
    sessions: Mutex<HashMap<String, CoreIdToken>>,
    callbacks: Mutex<Vec<Callback>>,
    sign_ins: Mutex<usize>,
    logout_state: Mutex<Option<String>>,
}

/// What arrived at `/callback`.
#[derive(Debug, Clone)]
struct Callback {
    method: &'static str,
    params: HashMap<String, String>,
}

impl RelyingParty {
    pub(crate) async fn start(latch: &TestApp, mode: Mode) -> Self {
        let (listener, base) = Self::bind().await;
        let (callback, bye) = (format!("{base}/callback"), format!("{base}/bye"));
        let added = latch
            .admin(&[
                "app",
                "add",
                "rp",
                "--name",
                "Tiny RP",
                "--redirect-uri",
                &callback,
                "--consent",
                "explicit",
                "--post-logout-redirect-uri",
                &bye,
                "--json",
            ])
            .await;
        let credentials: AppCredentials = serde_json::from_str(&added).expect("app add --json prints JSON");
        Self::serve(listener, base, credentials, mode).await
    }

    /// The relying party's listener and base URL (`http://rp.test:<port>`),
    /// for registering it before it serves.
    pub(crate) async fn bind() -> (tokio::net::TcpListener, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        (listener, format!("http://{RP_HOST}:{port}"))
    }

    /// Serves the relying party registered with `credentials`: its
    /// redirect URI is `<base>/callback`, its post-logout one `<base>/bye`.
    pub(crate) async fn serve(
        listener: tokio::net::TcpListener,
        base: String,
        credentials: AppCredentials,
        mode: Mode,
    ) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        let issuer = IssuerUrl::new(credentials.issuer.clone()).expect("issuer");
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http).await.expect("discovery");
        let end_session = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()
            .expect("discovery advertises end_session_endpoint");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(credentials.client_id),
            Some(ClientSecret::new(credentials.client_secret.expect("a confidential app"))),
        )
        .set_redirect_uri(RedirectUrl::new(format!("{base}/callback")).expect("redirect URI"));
        let state = Arc::new(RpState {
            base: base.clone(),
            issuer: credentials.issuer.clone(),
            mode,
            client,
            end_session,
            http,
            pending: Mutex::default(),
            issued: Mutex::default(),
            sessions: Mutex::default(),
            callbacks: Mutex::default(),
            sign_ins: Mutex::default(),
            logout_state: Mutex::default(),
        });
        let router = axum::Router::new()
            .route("/", axum::routing::get(rp_start))
            .route("/callback", axum::routing::get(rp_callback_get).post(rp_callback_post))
            .route("/logout", axum::routing::get(rp_logout))
            .route("/bye", axum::routing::get(rp_bye))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("relying party runs");
        });
        Self { state, base, issuer: credentials.issuer, server }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn last_callback(&self) -> Callback {
        self.state.callbacks.lock().unwrap().last().cloned().expect("the app received a callback")
    }

    fn issued_state(&self, state: &str) -> bool {
        self.state.issued.lock().unwrap().iter().any(|issued| issued == state)
    }

    pub(crate) fn sign_ins(&self) -> usize {
        *self.state.sign_ins.lock().unwrap()
    }

    fn logout_state(&self) -> Option<String> {
        self.state.logout_state.lock().unwrap().clone()
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body>{body}</body></html>",
        title = escape(title),
    );
    (status, Html(html)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `/`: starts a sign-in: state, nonce and PKCE, then off to Latch.
async fn rp_start(State(rp): State<Arc<RpState>>) -> Response {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .add_extra_param("response_mode", rp.mode.response_mode())
        .url();
    rp.pending.lock().unwrap().insert(state.secret().clone(), (nonce, verifier));
    rp.issued.lock().unwrap().push(state.secret().clone());
    Redirect::to(url.as_str()).into_response()
}

async fn rp_callback_get(State(rp): State<Arc<RpState>>, Query(params): Query<HashMap<String, String>>) -> Response {
    rp_callback(rp, "GET", params).await
}

async fn rp_callback_post(State(rp): State<Arc<RpState>>, Form(params): Form<HashMap<String, String>>) -> Response {
    rp_callback(rp, "POST", params).await
}

/// `/callback`: checks `state` and `iss`, redeems the code, verifies the ID
/// token and its nonce, and greets the person by name.
async fn rp_callback(rp: Arc<RpState>, method: &'static str, params: HashMap<String, String>) -> Response {
    rp.callbacks.lock().unwrap().push(Callback { method, params: params.clone() });
    let failed = |why: String| {
        page(StatusCode::BAD_REQUEST, "Sign-in failed", &format!("<h1>Sign-in failed</h1><p>{}</p>", escape(&why)))
    };
    let Some((nonce, verifier)) = params.get("state").and_then(|state| rp.pending.lock().unwrap().remove(state)) else {
        return failed(format!("unknown state: {params:?}"));
    };
    if params.get("iss").map(String::as_str) != Some(rp.issuer.as_str()) {
        return failed(format!("wrong iss: {params:?}"));
    }
    if let Some(error) = params.get("error") {
        return failed(format!("error={error} ({})", params.get("error_description").cloned().unwrap_or_default()));
    }
    let Some(code) = params.get("code") else { return failed(format!("no code: {params:?}")) };
    let request = match rp.client.exchange_code(AuthorizationCode::new(code.clone())) {
        Ok(request) => request,
        Err(error) => return failed(format!("no token endpoint: {error}")),
    };
    let tokens = match request.set_pkce_verifier(verifier).request_async(&rp.http).await {
        Ok(tokens) => tokens,
        Err(error) => return failed(format!("token exchange: {error:?}")),
    };
    let Some(id_token) = tokens.id_token() else { return failed("no ID token".into()) };
    let claims = match id_token.claims(&rp.client.id_token_verifier(), &nonce) {
        Ok(claims) => claims,
        Err(error) => return failed(format!("ID token: {error}")),
    };
    let Some(username) = claims.preferred_username().map(|name| name.as_str().to_owned()) else {
        return failed("no preferred_username".into());
    };
    let session = uuid::Uuid::new_v4().simple().to_string();
    rp.sessions.lock().unwrap().insert(session.clone(), id_token.clone());
    *rp.sign_ins.lock().unwrap() += 1;
    let cookie = format!("{RP_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax");
    let methods = claims.auth_method_refs().into_iter().flatten().map(|method| method.as_str()).collect::<Vec<_>>();
    let greeting = format!("<h1>Hello {}</h1><p id=\"amr\">{}</p>", escape(&username), escape(&methods.join(" ")));
    let mut response = page(StatusCode::OK, "Signed in", &greeting);
    response.headers_mut().insert(header::SET_COOKIE, cookie.parse().expect("cookie"));
    response
}

/// `/logout`: RP-initiated logout with the ID token as hint.
async fn rp_logout(State(rp): State<Arc<RpState>>, headers: HeaderMap) -> Response {
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == RP_COOKIE)
        .and_then(|(_, value)| rp.sessions.lock().unwrap().remove(value));
    let Some(id_token) = session else {
        return page(StatusCode::BAD_REQUEST, "Not signed in", "<h1>Not signed in</h1>");
    };
    let state = CsrfToken::new_random();
    *rp.logout_state.lock().unwrap() = Some(state.secret().clone());
    let url = LogoutRequest::from(rp.end_session.clone())
        .set_id_token_hint(&id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(format!("{}/bye", rp.base)).expect("URL"))
        .set_state(state)
        .http_get_url();
    Redirect::to(url.as_str()).into_response()
}

/// `/bye`: where Latch returns the browser after logout.
async fn rp_bye(State(rp): State<Arc<RpState>>, Query(params): Query<HashMap<String, String>>) -> Response {
    let state = params.get("state").cloned().unwrap_or_default();
    if rp.logout_state.lock().unwrap().as_deref() != Some(state.as_str()) {
        return page(StatusCode::BAD_REQUEST, "Unexpected", &format!("<h1>Unexpected state {}</h1>", escape(&state)));
    }
    page(StatusCode::OK, "Bye", &format!("<h1>Bye</h1><p>state {}</p>", escape(&state)))
}

// ---------------------------------------------------------------------------
// Chromium and chromedriver.

/// `(chromium, chromedriver)`, or `None` (with a notice) when they are not
/// installed outside CI. Under CI they must be installed.
pub(crate) fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_binary("chromium");
    let chromedriver = find_binary("chromedriver");
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        (chromium, chromedriver) => {
            let missing = format!("chromium: {chromium:?}, chromedriver: {chromedriver:?}");
            if std::env::var_os("CI").is_some() {
                panic!("Chromium is required under CI ({missing}); .ci/run installs chromium and chromium-driver");
            }
            eprintln!("SKIPPED (chromium not installed): {missing}");
            None
        }
    }
}

/// `/usr/bin/<name>` (Debian's packages), else the first on `PATH`.
fn find_binary(name: &str) -> Option<PathBuf> {
    let debian = Path::new("/usr/bin").join(name);
    if debian.is_file() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|path| path.is_file())
}

/// A chromedriver child process in a process group of its own; dropping it
/// kills the group — chromedriver and every Chromium process it started —
/// also when a test panics.
pub(crate) struct Chromedriver {
    child: std::process::Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    pub(crate) fn start(binary: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = std::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--log-level=SEVERE")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let profile = tempfile::tempdir().expect("profile dir");
        Self { child, url: format!("http://127.0.0.1:{port}"), profile }
    }

    /// Waits for chromedriver, then opens a headless Chromium session.
    pub(crate) async fn session(&self, chromium: &Path) -> Browser {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
        let ready = poll_until(Duration::from_secs(20), async || {
            let response = http.get(format!("{}/status", self.url)).send().await.ok()?;
            let body = response.json::<Value>().await.ok()?;
            (body["value"]["ready"] == true).then_some(())
        });
        assert!(ready.await.is_some(), "chromedriver did not start on {}", self.url);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"implicit": 0, "pageLoad": PAGE_TIMEOUT.as_millis() as u64, "script": 10_000},
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    format!("--user-data-dir={}", self.profile.path().display()),
                    format!("--host-resolver-rules=MAP {RP_HOST} 127.0.0.1"),
                ],
            },
        }}});
        let response = http.post(format!("{}/session", self.url)).json(&capabilities).send().await;
        let body: Value = response.expect("new session").json().await.expect("JSON");
        let id = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver could not start Chromium: {body}"))
            .to_owned();
        Browser { http, session: format!("{}/session/{id}", self.url), console: Mutex::default() }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session (W3C protocol over HTTP).
pub(crate) struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    /// Console messages read so far (reading the log empties it).
    console: Mutex<Vec<String>>,
}

/// A web element reference.
pub(crate) struct Element(String);

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// Sends a command; returns its `value`, or the WebDriver error.
    pub(crate) async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let request = self.http.request(method.clone(), format!("{}{path}", self.session));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.send().await.map_err(|error| format!("{method} {path}: {error}"))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|error| format!("{method} {path}: {error}"))?;
        if status.is_success() {
            Ok(body["value"].clone())
        } else {
            Err(format!("{method} {path}: {status} {}: {}", body["value"]["error"], body["value"]["message"]))
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Value, String> {
        self.command(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        self.command(reqwest::Method::POST, path, Some(body)).await
    }

    pub(crate) async fn goto(&self, url: &str) {
        if let Err(error) = self.post("/url", json!({ "url": url })).await {
            panic!("navigating to {url}: {error}\n{}", self.snapshot().await);
        }
    }

    pub(crate) async fn url(&self) -> String {
        self.get("/url").await.ok().and_then(|url| url.as_str().map(str::to_owned)).unwrap_or_default()
    }

    pub(crate) async fn source(&self) -> String {
        self.get("/source").await.ok().and_then(|source| source.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Polls until `done(url, page source)`; returns the page source.
    pub(crate) async fn wait_for(&self, what: &str, done: impl Fn(&str, &str) -> bool) -> String {
        let reached = poll_until(PAGE_TIMEOUT, async || {
            let (url, source) = (self.url().await, self.source().await);
            done(&url, &source).then_some(source)
        });
        match reached.await {
            Some(source) => source,
            None => panic!("the browser did not reach {what}\n{}", self.snapshot().await),
        }
    }

    /// The first element matching `css`, waiting for it to appear.
    pub(crate) async fn find(&self, css: &str) -> Element {
        let query = json!({"using": "css selector", "value": css});
        let mut last_error = String::new();
        let found = poll_until(PAGE_TIMEOUT, async || {
            self.post("/element", query.clone()).await.map_err(|error| last_error = error).ok()
        });
        match found.await {
            Some(element) => Element(element[ELEMENT_KEY].as_str().expect("element reference").to_owned()),
            None => panic!("no element {css}: {last_error}\n{}", self.snapshot().await),
        }
    }

    pub(crate) async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.post("/elements", json!({"using": "css selector", "value": css})).await;
        let found = found.unwrap_or_else(|error| panic!("finding {css}: {error}"));
        found
            .as_array()
            .expect("array")
            .iter()
            .map(|element| Element(element[ELEMENT_KEY].as_str().expect("element reference").to_owned()))
            .collect()
    }

    /// Every cookie visible to the current page, as WebDriver reports them
    /// (`name`, `value`, `httpOnly`, `sameSite`, `secure`, …).
    pub(crate) async fn cookies(&self) -> Vec<Value> {
        let cookies = self.get("/cookie").await.unwrap_or_else(|error| panic!("cookies: {error}"));
        cookies.as_array().cloned().unwrap_or_default()
    }

    /// The browser console so far: CSP violations, script errors, failed loads.
    pub(crate) async fn console(&self) -> Vec<String> {
        if let Ok(Value::Array(entries)) = self.post("/se/log", json!({"type": "browser"})).await {
            let mut console = self.console.lock().unwrap();
            console.extend(entries.iter().map(|entry| format!("{} {}", entry["level"], entry["message"])));
        }
        self.console.lock().unwrap().clone()
    }

    /// Where the browser is and what it shows, for failure messages.
    pub(crate) async fn snapshot(&self) -> String {
        let console = self.console().await.join("\n  ");
        format!("URL: {}\nconsole:\n  {console}\npage source:\n{}", self.url().await, self.source().await)
    }

    pub(crate) async fn quit(&self) {
        let _ = self.command(reqwest::Method::DELETE, "", None).await;
    }
}

impl Element {
    pub(crate) async fn send_keys(&self, browser: &Browser, text: &str) {
        let path = format!("/element/{}/value", self.0);
        if let Err(error) = browser.post(&path, json!({ "text": text })).await {
            panic!("typing: {error}\n{}", browser.snapshot().await);
        }
    }

    pub(crate) async fn click(&self, browser: &Browser) {
        if let Err(error) = browser.post(&format!("/element/{}/click", self.0), json!({})).await {
            panic!("clicking: {error}\n{}", browser.snapshot().await);
        }
    }

    pub(crate) async fn text(&self, browser: &Browser) -> String {
        let text = browser.get(&format!("/element/{}/text", self.0)).await;
        text.ok().and_then(|text| text.as_str().map(str::to_owned)).unwrap_or_default()
    }
}
