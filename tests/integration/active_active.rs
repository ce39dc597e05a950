//! Active-active (issue 3): several `latch serve` processes — separate OS
//! processes, not routers in one test process — on one PostgreSQL database
//! and one public URL, as behind a load balancer. Any instance finishes any
//! flow; instances die, start together, and lose their database; and on
//! SQLite the server shares its file with admin commands run beside it.
//!
//! Requests go to each instance's own port while every URL Latch emits
//! (issuer, `iss`, discovery) names the shared public URL, which is the
//! first instance's address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, Nonce};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backchannel_logout::{Answer, EVENT, Receiver};
use crate::common::{
    Backend, drop_postgres_database, fresh_database, hidden_input, location, poll_until, query_param, run_latch,
};

const CALLBACK: &str = "https://app.example.com/oauth2/callback";
const PASSWORD: &str = "correct horse battery staple";
const SLUG: &str = "grafana";

// ---------------------------------------------------------------------------
// Processes: a deployment (one database, one public URL) and its instances.
// ---------------------------------------------------------------------------

/// A loopback port nobody listens on right now: bind port 0, note it, let go.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// One database and one public URL shared by every instance started from it.
/// Dropping it drops the PostgreSQL database (instances are dropped first:
/// keep it the last field of whatever holds both).
struct Deployment {
    backend: Backend,
    database_url: String,
    public_url: String,
    /// The port the public URL names: the first instance listens on it.
    public_port: u16,
    dir: tempfile::TempDir,
}

impl Deployment {
    /// A fresh database, or `None` when PostgreSQL is unreachable outside CI
    /// (`fresh_database` has printed why the test is skipped).
    async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database(backend, dir.path()).await?;
        let public_port = free_port();
        Some(Self { backend, database_url, public_url: format!("http://127.0.0.1:{public_port}"), public_port, dir })
    }

    fn issuer(&self) -> String {
        format!("{}/application/o/{SLUG}/", self.public_url)
    }

    /// Starts `latch serve` on `port` (not waiting for it to answer).
    fn spawn(&self, name: &str, port: u16) -> Instance {
        self.spawn_on(name, port, &self.database_url)
    }

    /// Like `spawn`, with another URL for the same database (through a proxy).
    fn spawn_on(&self, name: &str, port: u16, database_url: &str) -> Instance {
        Instance::spawn(name, port, database_url, &self.public_url, self.dir.path())
    }

    /// Starts `latch serve` on the public port and on a second port, and
    /// waits until both answer.
    async fn start_pair(&self) -> (Instance, Instance) {
        let mut a = self.spawn("a", self.public_port);
        let mut b = self.spawn("b", free_port());
        a.wait_ready().await;
        b.wait_ready().await;
        (a, b)
    }

    /// Runs an admin command against the deployment's database; it must succeed.
    async fn admin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = run_latch(&self.database_url, &self.public_url, args, stdin).await;
        assert!(
            output.status.success(),
            "latch {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn add_user(&self, username: &str) {
        let email = format!("{username}@example.com");
        self.admin(
            &["user", "add", username, "--email", &email, "--name", "Test User", "--password-stdin"],
            Some(PASSWORD),
        )
        .await;
    }

    /// Registers the confidential app `grafana` and the user `ada`.
    async fn setup(&self) -> Rp {
        self.add_user("ada").await;
        let json =
            self.admin(&["app", "add", SLUG, "--name", "Grafana", "--redirect-uri", CALLBACK, "--json"], None).await;
        let credentials: Value = serde_json::from_str(&json).expect("app add --json prints JSON");
        assert_eq!(credentials["issuer"], self.issuer());
        Rp {
            http: http_client(),
            client_id: credentials["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: credentials["client_secret"].as_str().expect("client_secret").to_owned(),
            issuer: self.issuer(),
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            drop_postgres_database(&self.database_url);
        }
    }
}

/// A `latch serve` process. Killed (SIGKILL) when dropped.
pub(crate) struct Instance {
    name: String,
    /// Where this process listens: requests go here. The URLs it emits
    /// name the deployment's public URL instead.
    base: String,
    child: Child,
    log_path: PathBuf,
}

impl Instance {
    pub(crate) fn spawn(name: &str, port: u16, database_url: &str, public_url: &str, dir: &Path) -> Self {
        let log_path = dir.join(format!("latch-{name}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LATCH_") {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("serve")
            .env("LATCH_DATABASE_URL", database_url)
            .env("LATCH_PUBLIC_URL", public_url)
            .env("LATCH_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCH_DATA_DIR", dir)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start latch serve");
        Self { name: name.to_owned(), base: format!("http://127.0.0.1:{port}"), child, log_path }
    }

    /// Polls until the server answers HTTP (any status: the JWKS of an app
    /// that may not exist yet), failing if it exits or takes over a minute.
    pub(crate) async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        let probe = format!("{}/application/o/{SLUG}/jwks/", self.base);
        let answered = poll_until(Duration::from_secs(60), async || {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("latch {} exited during start ({status}):\n{}", self.name, self.log());
            }
            http.get(&probe).send().await.ok().map(drop)
        })
        .await;
        assert!(answered.is_some(), "latch {} did not answer within 60 s:\n{}", self.name, self.log());
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends SIGKILL (without waiting for the process to go).
    pub(crate) fn sigkill(&mut self) {
        self.child.start_kill().expect("kill");
    }

    /// Sends SIGTERM, a clean stop (without waiting for the process to go).
    pub(crate) fn sigterm(&mut self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(status.success(), "kill -TERM {pid}");
    }

    pub(crate) async fn wait_exit(&mut self) -> ExitStatus {
        self.child.wait().await.expect("wait")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// Two instances of one deployment: `a` listens on the public URL's port.
/// Field order matters: instances die before the database is dropped.
struct Cluster {
    a: Instance,
    b: Instance,
    rp: Rp,
    deployment: Deployment,
}

impl Cluster {
    /// Two instances on a fresh PostgreSQL database with `ada` and `grafana`
    /// registered, or `None` (skip) without PostgreSQL.
    async fn start() -> Option<Self> {
        let deployment = Deployment::new(Backend::Postgres).await?;
        let rp = deployment.setup().await;
        let (a, b) = deployment.start_pair().await;
        Some(Self { a, b, rp, deployment })
    }

    fn logs(&self) -> String {
        format!("--- a ---\n{}\n--- b ---\n{}", self.a.log(), self.b.log())
    }
}

// ---------------------------------------------------------------------------
// Driving the protocol by hand, over plain HTTP.
// ---------------------------------------------------------------------------

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The relying party: the app's credentials and an HTTP client.
#[derive(Clone)]
struct Rp {
    http: reqwest::Client,
    client_id: String,
    client_secret: String,
    /// The issuer every instance must name: the public URL's.
    issuer: String,
}

/// Why a step failed: the instance could not be reached at all, or it
/// answered wrongly.
#[derive(Debug)]
enum Failure {
    Unreachable(String),
    Wrong(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "unreachable: {why}"),
            Self::Wrong(why) => write!(f, "wrong answer: {why}"),
        }
    }
}

/// Every status an instance answered, by instance base URL.
type Statuses = Vec<(String, u16)>;

async fn send(request: reqwest::RequestBuilder, base: &str, seen: &mut Statuses) -> Result<reqwest::Response, Failure> {
    let response = request.send().await.map_err(|error| Failure::Unreachable(format!("{base}: {error}")))?;
    seen.push((base.to_owned(), response.status().as_u16()));
    Ok(response)
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix(&prefix).map(|rest| rest.split(';').next().unwrap_or_default().to_owned()))
}

fn session_cookie(session: &str) -> String {
    format!("latch_session={session}")
}

/// Signs in through the login form on `base`; returns the session cookie's
/// value and the response to the form post (a redirect to `next`).
async fn sign_in_with_next(
    http: &reqwest::Client,
    base: &str,
    next: &str,
    username: &str,
) -> Result<(String, reqwest::Response), Failure> {
    let mut seen = Vec::new();
    let url = url::Url::parse_with_params(&format!("{base}/login"), [("next", next)]).expect("login url");
    let form = send(http.get(url), base, &mut seen).await?;
    if form.status() != StatusCode::OK {
        return Err(Failure::Wrong(format!("{base}/login answered {}", form.status())));
    }
    let csrf_cookie =
        cookie_value(&form, "latch_csrf").ok_or_else(|| Failure::Wrong("no CSRF cookie on the login form".into()))?;
    let html = form.text().await.map_err(|error| Failure::Unreachable(error.to_string()))?;
    let csrf = hidden_input(&html, "csrf_token").ok_or_else(|| Failure::Wrong("no csrf_token in the form".into()))?;
    let next = hidden_input(&html, "next").ok_or_else(|| Failure::Wrong("no next in the form".into()))?;
    let post = http.post(format!("{base}/login")).header(COOKIE, format!("latch_csrf={csrf_cookie}")).form(&[
        ("csrf_token", csrf.as_str()),
        ("next", next.as_str()),
        ("username", username),
        ("password", PASSWORD),
    ]);
    let response = send(post, base, &mut seen).await?;
    if response.status() != StatusCode::SEE_OTHER {
        return Err(Failure::Wrong(format!("sign-in on {base} answered {}", response.status())));
    }
    let session = cookie_value(&response, "latch_session")
        .ok_or_else(|| Failure::Wrong(format!("sign-in on {base} set no session cookie")))?;
    Ok((session, response))
}

async fn sign_in(http: &reqwest::Client, base: &str, username: &str) -> String {
    match sign_in_with_next(http, base, "/", username).await {
        Ok((session, _)) => session,
        Err(failure) => panic!("sign-in as {username} on {base}: {failure}"),
    }
}

/// What the app got back from a successful authorization request.
#[derive(Debug)]
struct Authorized {
    code: String,
    nonce: String,
}

impl Rp {
    fn authorize_url(&self, base: &str, state: &str, nonce: &str) -> url::Url {
        url::Url::parse_with_params(
            &format!("{base}/application/o/authorize/"),
            [
                ("response_type", "code"),
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", CALLBACK),
                ("scope", "openid profile email"),
                ("state", state),
                ("nonce", nonce),
            ],
        )
        .expect("authorize url")
    }

    /// The raw answer of `base` to an authorization request carrying `session`.
    async fn authorize_raw(
        &self,
        base: &str,
        session: Option<&str>,
        seen: &mut Statuses,
    ) -> Result<(reqwest::Response, String, String), Failure> {
        let state = uuid::Uuid::new_v4().simple().to_string();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut request = self.http.get(self.authorize_url(base, &state, &nonce));
        if let Some(session) = session {
            request = request.header(COOKIE, session_cookie(session));
        }
        Ok((send(request, base, seen).await?, state, nonce))
    }

    /// Authorizes on `base` with an existing session: must redirect straight
    /// to the app with a code, its state, and the public issuer as `iss`.
    async fn authorize(&self, base: &str, session: &str, seen: &mut Statuses) -> Result<Authorized, Failure> {
        let (response, state, nonce) = self.authorize_raw(base, Some(session), seen).await?;
        let target = location(&response).unwrap_or_default();
        if response.status() != StatusCode::SEE_OTHER || !target.starts_with(CALLBACK) {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(Failure::Wrong(format!("authorize on {base}: {status} to {target:?}: {body}")));
        }
        let target = url::Url::parse(&target).expect("callback url");
        if query_param(&target, "state").as_deref() != Some(state.as_str()) {
            return Err(Failure::Wrong(format!("authorize on {base}: state lost in {target}")));
        }
        if query_param(&target, "iss").as_deref() != Some(self.issuer.as_str()) {
            return Err(Failure::Wrong(format!("authorize on {base}: iss is not the public issuer in {target}")));
        }
        let code = query_param(&target, "code").ok_or_else(|| Failure::Wrong(format!("no code in {target}")))?;
        Ok(Authorized { code, nonce })
    }

    fn basic_auth(&self) -> String {
        let encode = |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(&self.client_id), encode(&self.client_secret));
        format!("Basic {}", STANDARD.encode(pair))
    }

    /// The token endpoint's status and JSON body (client_secret_basic).
    async fn exchange_raw(&self, base: &str, code: &str, seen: &mut Statuses) -> Result<(StatusCode, Value), Failure> {
        let request = self
            .http
            .post(format!("{base}/application/o/token/"))
            .header(AUTHORIZATION, self.basic_auth())
            .form(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)]);
        let response = send(request, base, seen).await?;
        let status = response.status();
        let text = response.text().await.map_err(|error| Failure::Unreachable(format!("{base}: {error}")))?;
        let body = serde_json::from_str(&text)
            .map_err(|_| Failure::Wrong(format!("token on {base}: {status} with a body that is not JSON: {text}")))?;
        Ok((status, body))
    }

    /// Redeems the code on `base`; checks the ID token's issuer, audience and nonce.
    async fn exchange(&self, base: &str, authorized: &Authorized, seen: &mut Statuses) -> Result<Tokens, Failure> {
        let (status, body) = self.exchange_raw(base, &authorized.code, seen).await?;
        if status != StatusCode::OK {
            return Err(Failure::Wrong(format!("token on {base}: {status} {body}")));
        }
        let field = |name: &str| {
            body[name].as_str().map(str::to_owned).ok_or_else(|| Failure::Wrong(format!("no {name} in {body}")))
        };
        let tokens = Tokens { access_token: field("access_token")?, id_token: field("id_token")? };
        let claims = tokens.id_claims();
        let expected =
            [("iss", self.issuer.as_str()), ("aud", self.client_id.as_str()), ("nonce", authorized.nonce.as_str())];
        for (claim, value) in expected {
            if claims[claim] != value {
                return Err(Failure::Wrong(format!(
                    "token on {base}: ID token {claim} is {}, not {value}",
                    claims[claim]
                )));
            }
        }
        Ok(tokens)
    }

    async fn userinfo_raw(
        &self,
        base: &str,
        access_token: &str,
        seen: &mut Statuses,
    ) -> Result<reqwest::Response, Failure> {
        let request = self.http.get(format!("{base}/application/o/userinfo/")).bearer_auth(access_token);
        send(request, base, seen).await
    }

    /// Authorizes on `base` for `offline_access` with `session` and redeems
    /// the code there: the refresh token.
    async fn offline_refresh_token(&self, base: &str, session: &str) -> String {
        let mut url = self.authorize_url(base, "offline", "nonce");
        let params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if name == "scope" { "openid offline_access".into() } else { value.into_owned() };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(&params);
        let response = self.http.get(url).header(COOKIE, session_cookie(session)).send().await.expect("authorize");
        let target = url::Url::parse(&location(&response).expect("a redirect to the app")).expect("callback");
        let code = query_param(&target, "code").expect("code");
        let (status, body) = expect_ok(self.exchange_raw(base, &code, &mut Vec::new()).await, "token");
        assert_eq!(status, StatusCode::OK, "{body}");
        body["refresh_token"].as_str().expect("a refresh token").to_owned()
    }

    /// A refresh on `base`: the status and JSON body.
    async fn refresh_raw(&self, base: &str, refresh_token: &str) -> (StatusCode, Value) {
        let request = self
            .http
            .post(format!("{base}/application/o/token/"))
            .header(AUTHORIZATION, self.basic_auth())
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]);
        let response = request.send().await.expect("refresh request");
        (response.status(), response.json().await.expect("a JSON answer"))
    }

    /// UserInfo on `base`: must answer 200; returns the claims.
    async fn userinfo(&self, base: &str, access_token: &str, seen: &mut Statuses) -> Result<Value, Failure> {
        let response = self.userinfo_raw(base, access_token, seen).await?;
        let status = response.status();
        let text = response.text().await.map_err(|error| Failure::Unreachable(format!("{base}: {error}")))?;
        if status != StatusCode::OK {
            return Err(Failure::Wrong(format!("userinfo on {base}: {status} {text}")));
        }
        serde_json::from_str(&text).map_err(|_| Failure::Wrong(format!("userinfo on {base}: not JSON: {text}")))
    }

    /// session → authorize on `route[0]` → token on `route[1]` → userinfo on `route[2]`.
    async fn flow(&self, session: &str, route: [&str; 3], seen: &mut Statuses) -> Result<(), Failure> {
        let authorized = self.authorize(route[0], session, seen).await?;
        let tokens = self.exchange(route[1], &authorized, seen).await?;
        let claims = self.userinfo(route[2], &tokens.access_token, seen).await?;
        if claims["sub"] != tokens.id_claims()["sub"] {
            return Err(Failure::Wrong(format!("userinfo sub {} differs from the ID token's", claims["sub"])));
        }
        Ok(())
    }
}

struct Tokens {
    access_token: String,
    id_token: String,
}

impl Tokens {
    /// The ID token's claims, unverified (tests that care verify separately).
    fn id_claims(&self) -> Value {
        jwt_payload(&self.id_token)
    }
}

fn jwt_payload(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWS has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url payload")).expect("JSON payload")
}

fn expect_ok<T>(result: Result<T, Failure>, what: &str) -> T {
    result.unwrap_or_else(|failure| panic!("{what}: {failure}"))
}

/// A small xorshift generator: the tests need a fair coin, not a crate.
struct Coin(u64);

impl Coin {
    fn seeded() -> Self {
        let seed = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
        Self(seed)
    }

    fn flip(&mut self) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 & 1 == 1
    }
}

async fn fetch_jwks(http: &reqwest::Client, base: &str) -> String {
    let response = http.get(format!("{base}/application/o/{SLUG}/jwks/")).send().await.expect("jwks");
    assert_eq!(response.status(), StatusCode::OK, "JWKS of {base}");
    response.text().await.expect("jwks body")
}

// ---------------------------------------------------------------------------
// 1–7: two instances, one PostgreSQL database.
// ---------------------------------------------------------------------------

/// 1. Sign in on A through the real login form; B honours the session
///    cookie: its authorization endpoint redirects straight to the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_one_instance_is_honoured_by_the_other() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let mut seen = Vec::new();

    // On A without a session: sent to the login page.
    let (response, _, _) = expect_ok(rp.authorize_raw(a, None, &mut seen).await, "authorize on A");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login = location(&response).expect("location");
    assert!(login.starts_with("/login?"), "{login}");
    let next = query_param(&url::Url::parse(&format!("{a}{login}")).unwrap(), "next").expect("next");
    let (session, signed_in) = expect_ok(sign_in_with_next(&rp.http, a, &next, "ada").await, "sign in on A");
    let back = location(&signed_in).expect("location");
    assert!(back.starts_with("/application/o/authorize/"), "{back}");

    // B, with A's cookie: a code, no login page.
    let response = rp.http.get(format!("{b}{back}")).header(COOKIE, session_cookie(&session)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response).expect("location");
    assert!(target.starts_with(CALLBACK), "B should redirect to the app, not to {target}");
    let target = url::Url::parse(&target).unwrap();
    assert!(query_param(&target, "code").is_some(), "{target}");
    assert_eq!(query_param(&target, "iss").as_deref(), Some(rp.issuer.as_str()));

    // And a fresh request on B with the cookie, completed on B.
    let authorized = expect_ok(rp.authorize(b, &session, &mut seen).await, "authorize on B with A's session");
    expect_ok(rp.exchange(b, &authorized, &mut seen).await, "token on B");

    // Control: without the cookie B asks for a sign-in.
    let (response, _, _) = expect_ok(rp.authorize_raw(b, None, &mut seen).await, "authorize on B");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).unwrap_or_default().starts_with("/login?"));
}

/// A sign-in that `prompt=login` demanded, made on A, answers its request
/// once, whichever instance sees the request first: the mark is in the
/// store, not in one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demanded_sign_in_answers_once_across_instances() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let session = sign_in(&rp.http, a, "ada").await;
    let mut url = rp.authorize_url(a, "step-up", "n");
    url.query_pairs_mut().append_pair("prompt", "login");
    let response = rp.http.get(url).header(COOKIE, session_cookie(&session)).send().await.unwrap();
    let login = location(&response).unwrap_or_default();
    assert!(login.starts_with("/login?"), "prompt=login asks for the password: {login}");
    let next = query_param(&url::Url::parse(&format!("{a}{login}")).unwrap(), "next").expect("next");
    let (fresh, signed_in) = expect_ok(sign_in_with_next(&rp.http, a, &next, "ada").await, "sign in on A");
    let repeated = location(&signed_in).expect("location");

    let on = |base: &str| rp.http.get(format!("{base}{repeated}")).header(COOKIE, session_cookie(&fresh)).send();
    let target = location(&on(b).await.unwrap()).unwrap_or_default();
    assert!(target.starts_with(CALLBACK) && target.contains("code="), "B answers with a code: {target}");
    let target = location(&on(a).await.unwrap()).unwrap_or_default();
    assert!(target.starts_with("/login?"), "A must not answer the same sign-in again: {target}");
}

/// A sign-in started on A (the username) is finished on B (the password):
/// the sign-in under way is in the store, not in A. B's session works on A,
/// the ID token names the method (`amr`), and the finished sign-in cannot
/// be finished again on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_on_one_instance_is_finished_on_the_other() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let mut seen = Vec::new();
    let (response, _, _) = expect_ok(rp.authorize_raw(a, None, &mut seen).await, "authorize on A");
    let login = location(&response).expect("location");
    let next = query_param(&url::Url::parse(&format!("{a}{login}")).unwrap(), "next").expect("next");

    let url = url::Url::parse_with_params(&format!("{a}/login"), [("next", &next)]).expect("login url");
    let form = rp.http.get(url).send().await.unwrap();
    let csrf_cookie = format!("latch_csrf={}", cookie_value(&form, "latch_csrf").expect("CSRF cookie"));
    let html = form.text().await.unwrap();
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token");
    let identify = [("csrf_token", csrf.as_str()), ("next", next.as_str()), ("username", "ada")];
    let identified = rp.http.post(format!("{a}/login")).header(COOKIE, &csrf_cookie).form(&identify).send();
    let identified = identified.await.unwrap();
    assert_eq!(identified.status(), StatusCode::OK, "identify on A");
    let cookies =
        format!("{csrf_cookie}; latch_signin={}", cookie_value(&identified, "latch_signin").expect("sign-in"));
    let page = identified.text().await.unwrap();
    assert!(page.contains("Signing in as <strong>ada</strong>"), "{page}");
    let field = |name: &str| hidden_input(&page, name).unwrap_or_else(|| panic!("{name} in {page}"));
    let prove = [("csrf_token", field("csrf_token")), ("next", field("next")), ("step", field("step"))];
    let prove = [&prove[..], &[("password", PASSWORD.to_owned())]].concat();

    let proved = rp.http.post(format!("{b}/login")).header(COOKIE, &cookies).form(&prove).send().await.unwrap();
    assert_eq!(proved.status(), StatusCode::SEE_OTHER, "password on B\n{}", cluster.logs());
    assert_eq!(location(&proved).as_deref(), Some(next.as_str()), "on to the authorization request");
    let session = cookie_value(&proved, "latch_session").expect("B starts the session");

    let authorized = expect_ok(rp.authorize(a, &session, &mut seen).await, "authorize on A with B's session");
    let tokens = expect_ok(rp.exchange(a, &authorized, &mut seen).await, "token on A");
    assert_eq!(tokens.id_claims()["amr"], serde_json::json!(["pwd"]));

    let again = rp.http.post(format!("{a}/login")).header(COOKIE, &cookies).form(&prove).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "B finished it: A starts over");
    assert_eq!(cookie_value(&again, "latch_session"), None);
}

/// 2. A code issued by A is redeemed on B; A's UserInfo accepts the access
///    token B issued, for the same subject.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_one_instance_is_redeemed_on_the_other() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let mut seen = Vec::new();
    let session = sign_in(&rp.http, a, "ada").await;

    let authorized = expect_ok(rp.authorize(a, &session, &mut seen).await, "authorize on A");
    let tokens = expect_ok(rp.exchange(b, &authorized, &mut seen).await, "token on B");
    let sub = tokens.id_claims()["sub"].clone();
    assert!(sub.as_str().is_some_and(|sub| !sub.is_empty()), "{sub}");

    let on_a = expect_ok(rp.userinfo(a, &tokens.access_token, &mut seen).await, "userinfo on A");
    assert_eq!(on_a["sub"], sub);
    assert_eq!(on_a["preferred_username"], "ada");
    let on_b = expect_ok(rp.userinfo(b, &tokens.access_token, &mut seen).await, "userinfo on B");
    assert_eq!(on_b, on_a);
}

/// 3. Both instances publish the same JWKS (one key), and an ID token signed
///    by either verifies — with the `openidconnect` crate — against the
///    other's JWKS. Discovery, done against the public URL, names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_instances_publish_one_jwks_and_verify_each_others_tokens() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let mut seen = Vec::new();

    let jwks_a = fetch_jwks(&rp.http, a).await;
    let jwks_b = fetch_jwks(&rp.http, b).await;
    assert_eq!(jwks_a, jwks_b, "the instances publish different JWKS");
    let parsed: Value = serde_json::from_str(&jwks_a).unwrap();
    assert_eq!(parsed["keys"].as_array().map(Vec::len), Some(1), "{parsed}");

    let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(rp.issuer.clone()).unwrap(), &rp.http)
        .await
        .expect("discovery against the public URL");
    assert_eq!(
        metadata.jwks_uri().url().as_str(),
        format!("{}/application/o/{SLUG}/jwks/", cluster.deployment.public_url)
    );
    assert_eq!(
        metadata.token_endpoint().map(|url| url.url().as_str().to_owned()),
        Some(format!("{a}/application/o/token/"))
    );

    let session = sign_in(&rp.http, a, "ada").await;
    let mut issue = Vec::new();
    for base in [a, b] {
        let authorized = expect_ok(rp.authorize(base, &session, &mut seen).await, "authorize");
        let tokens = expect_ok(rp.exchange(base, &authorized, &mut seen).await, "token");
        issue.push((base.clone(), tokens.id_token, authorized.nonce));
    }
    for (issued_by, id_token, nonce) in &issue {
        for (verifier_base, jwks) in [(a, &jwks_a), (b, &jwks_b)] {
            let keys: CoreJsonWebKeySet = serde_json::from_str(jwks).expect("JWKS parses");
            let verifier = CoreIdTokenVerifier::new_confidential_client(
                ClientId::new(rp.client_id.clone()),
                ClientSecret::new(rp.client_secret.clone()),
                IssuerUrl::new(rp.issuer.clone()).unwrap(),
                keys,
            );
            let token: CoreIdToken = id_token.parse().expect("ID token parses");
            let claims = token.claims(&verifier, &Nonce::new(nonce.clone())).unwrap_or_else(|error| {
                panic!("ID token from {issued_by} does not verify with the JWKS of {verifier_base}: {error}")
            });
            assert_eq!(claims.issuer().as_str(), rp.issuer);
        }
    }
}

/// 4. The same code sent to A and B at the same moment, 100 times: exactly
///    one 200 and one 400 `invalid_grant` each time. The replay also
///    revokes what the winner was issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_one_code_on_both_instances_has_exactly_one_winner() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let session = sign_in(&rp.http, a, "ada").await;
    let mut wins = [0_usize; 2];
    for round in 0..100 {
        let mut seen = Vec::new();
        let issuer = if round % 2 == 0 { a } else { b };
        let authorized = expect_ok(rp.authorize(issuer, &session, &mut seen).await, "authorize");
        let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
        let (on_a, on_b) = tokio::join!(
            rp.exchange_raw(a, &authorized.code, &mut seen_a),
            rp.exchange_raw(b, &authorized.code, &mut seen_b)
        );
        let on_a = expect_ok(on_a, "token on A");
        let on_b = expect_ok(on_b, "token on B");
        let (winner, loser) = match (on_a.0, on_b.0) {
            (StatusCode::OK, _) => {
                wins[0] += 1;
                (on_a, on_b)
            }
            (_, StatusCode::OK) => {
                wins[1] += 1;
                (on_b, on_a)
            }
            _ => panic!("round {round}: nobody won: A {} {}, B {} {}", on_a.0, on_a.1, on_b.0, on_b.1),
        };
        assert_eq!(loser.0, StatusCode::BAD_REQUEST, "round {round}: both won or the loser got {loser:?}");
        assert_eq!(loser.1["error"], "invalid_grant", "round {round}: {}", loser.1);
        let access_token = winner.1["access_token"].as_str().expect("access_token");
        let response = expect_ok(rp.userinfo_raw(a, access_token, &mut seen).await, "userinfo");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "round {round}: the replay did not revoke the winner's token"
        );
    }
    eprintln!("race winners: A {} times, B {} times", wins[0], wins[1]);
}

/// 5. `latch user disable`, run as a separate process on the same database:
///    the user's tokens and session stop working on both instances at once
///    (and nobody else's do).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_locks_them_out_of_every_instance() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    cluster.deployment.add_user("bob").await;
    let mut seen = Vec::new();
    let session = sign_in(&rp.http, a, "ada").await;
    let bob = sign_in(&rp.http, b, "bob").await;

    // Tokens issued by each instance, and codes not yet redeemed.
    let mut access_tokens = Vec::new();
    for base in [a, b] {
        let authorized = expect_ok(rp.authorize(base, &session, &mut seen).await, "authorize");
        let tokens = expect_ok(rp.exchange(base, &authorized, &mut seen).await, "token");
        for check in [a, b] {
            expect_ok(rp.userinfo(check, &tokens.access_token, &mut seen).await, "userinfo before disabling");
        }
        access_tokens.push(tokens.access_token);
    }
    let pending_a = expect_ok(rp.authorize(a, &session, &mut seen).await, "authorize");
    let pending_b = expect_ok(rp.authorize(b, &session, &mut seen).await, "authorize");

    cluster.deployment.admin(&["user", "disable", "ada"], None).await;

    for base in [a, b] {
        for access_token in &access_tokens {
            let response = expect_ok(rp.userinfo_raw(base, access_token, &mut seen).await, "userinfo");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "userinfo on {base} after disabling");
            let challenge = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
        let (response, _, _) = expect_ok(rp.authorize_raw(base, Some(&session), &mut seen).await, "authorize");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "authorize on {base} after disabling");
        let target = location(&response).unwrap_or_default();
        assert!(target.starts_with("/login?"), "authorize on {base} with a disabled user's session went to {target}");
    }
    for (base, pending) in [(a, &pending_b), (b, &pending_a)] {
        let (status, body) = expect_ok(rp.exchange_raw(base, &pending.code, &mut seen).await, "token");
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    }
    for base in [a, b] {
        let failed = sign_in_with_next(&rp.http, base, "/", "ada").await;
        assert!(matches!(failed, Err(Failure::Wrong(_))), "a disabled user signed in on {base}");
    }

    // Control: another user is unaffected on both.
    for base in [a, b] {
        expect_ok(rp.flow(&bob, [base, base, base], &mut seen).await, "bob's flow");
    }
    assert!(seen.iter().all(|(_, status)| *status < 500), "5xx seen: {seen:?}");
}

/// 5b. Two replicas of an app present one refresh token to A and B at the
///     same moment, 50 times in a chain (issue 12): both get 200 and the
///     same next refresh token, nothing is taken for a replay, and the
///     family lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_token_on_both_instances_at_once_gets_one_successor() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    let session = sign_in(&rp.http, a, "ada").await;
    let mut token = rp.offline_refresh_token(b, &session).await;
    for round in 0..50 {
        let (on_a, on_b) = tokio::join!(rp.refresh_raw(a, &token), rp.refresh_raw(b, &token));
        for (name, (status, body)) in [("A", &on_a), ("B", &on_b)] {
            assert_eq!(*status, StatusCode::OK, "round {round} on {name}: {body}\n{}", cluster.logs());
        }
        assert_eq!(on_a.1["refresh_token"], on_b.1["refresh_token"], "round {round}: two successors");
        token = on_a.1["refresh_token"].as_str().expect("refresh_token").to_owned();
    }
    let (status, body) = rp.refresh_raw(b, &token).await;
    assert_eq!(status, StatusCode::OK, "the family lives on: {body}");
    let logs = cluster.logs();
    assert!(!logs.contains("replayed"), "a benign repeat was logged as a replay:\n{logs}");
    let repeats = logs.matches("presented again within the grace window").count();
    assert_eq!(repeats, 50, "one rotation and one repeat per round");
}

/// 5c. The device grant (RFC 8628) across instances: a device asks A for
///     codes and polls A while ada, signed in on B, types the user code and
///     approves there; the device's next poll, on B, redeems. Then, round
///     after round, one approved device code polled on A and B at the same
///     moment redeems exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_code_from_one_instance_is_approved_and_redeemed_on_the_other() {
    let Some(cluster) = Cluster::start().await else { return };
    let (rp, a, b) = (&cluster.rp, &cluster.a.base, &cluster.b.base);
    cluster.deployment.admin(&["app", "update", SLUG, "--device-code"], None).await;
    let session = sign_in(&rp.http, b, "ada").await;

    let codes = rp.device_codes(a).await;
    assert_eq!(codes["verification_uri"], format!("{}/device", cluster.deployment.public_url));
    let (status, body) = rp.device_poll(a, &codes).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("authorization_pending")), "{body}");
    approve_device(&rp.http, b, &session, &codes).await;
    let (status, body) = rp.device_poll(b, &codes).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", cluster.logs());
    assert_eq!(jwt_payload(body["id_token"].as_str().expect("id_token"))["iss"], rp.issuer);
    let (status, body) = rp.device_poll(a, &codes).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    let mut wins = [0_usize; 2];
    for round in 0..20 {
        let (asked, approved) = if round % 2 == 0 { (a, b) } else { (b, a) };
        let codes = rp.device_codes(asked).await;
        approve_device(&rp.http, approved, &session, &codes).await;
        let (on_a, on_b) = tokio::join!(rp.device_poll(a, &codes), rp.device_poll(b, &codes));
        let loser = match (on_a.0, on_b.0) {
            (StatusCode::OK, _) => {
                wins[0] += 1;
                on_b
            }
            (_, StatusCode::OK) => {
                wins[1] += 1;
                on_a
            }
            _ => panic!("round {round}: nobody won: A {on_a:?}, B {on_b:?}\n{}", cluster.logs()),
        };
        assert_eq!(
            (loser.0, loser.1["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "round {round}"
        );
    }
    eprintln!("device code race winners: A {} times, B {} times", wins[0], wins[1]);
}

impl Rp {
    /// New device codes from `base` (RFC 8628 §3.1).
    async fn device_codes(&self, base: &str) -> Value {
        let request = self
            .http
            .post(format!("{base}/application/o/device/"))
            .header(AUTHORIZATION, self.basic_auth())
            .form(&[("scope", "openid")]);
        let response = request.send().await.expect("device authorization");
        assert_eq!(response.status(), StatusCode::OK, "device authorization on {base}");
        response.json().await.expect("device authorization JSON")
    }

    /// One poll of `base`'s token endpoint with the device code of `codes`.
    async fn device_poll(&self, base: &str, codes: &Value) -> (StatusCode, Value) {
        let device_code = codes["device_code"].as_str().expect("device_code");
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)];
        let request =
            self.http.post(format!("{base}/application/o/token/")).header(AUTHORIZATION, self.basic_auth()).form(&form);
        let response = request.send().await.expect("device poll");
        (response.status(), response.json().await.expect("a JSON answer"))
    }
}

/// The person with `session` types the user code of `codes` at `base`'s
/// `/device` page and approves.
async fn approve_device(http: &reqwest::Client, base: &str, session: &str, codes: &Value) {
    let page =
        http.get(format!("{base}/device")).header(COOKIE, session_cookie(session)).send().await.expect("/device");
    assert_eq!(page.status(), StatusCode::OK, "/device on {base}");
    let csrf_cookie = cookie_value(&page, "latch_csrf").expect("CSRF cookie");
    let csrf = hidden_input(&page.text().await.expect("page"), "csrf_token").expect("csrf_token");
    let cookies = format!("{}; latch_csrf={csrf_cookie}", session_cookie(session));
    let user_code = codes["user_code"].as_str().expect("user_code");
    let mut form = vec![("csrf_token", csrf.as_str()), ("user_code", user_code)];
    for expected in ["Approve", "Device connected"] {
        let response =
            http.post(format!("{base}/device")).header(COOKIE, &cookies).form(&form).send().await.expect("post");
        let status = response.status();
        let html = response.text().await.expect("page");
        assert!(status == StatusCode::OK && html.contains(expected), "{base}/device: {status} {html}");
        form.push(("decision", "approve"));
    }
}

/// 6. Flows stream against both instances; A is killed with SIGKILL in the
///    middle. Every flow started after the kill completes on B, and B never
///    answers 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_instance_mid_stream_leaves_the_other_serving() {
    const LANES: usize = 2;
    const FLOWS_BEFORE_KILL: usize = 12;
    const FLOWS_AFTER_KILL_PER_LANE: usize = 20;
    let Some(mut cluster) = Cluster::start().await else { return };
    let rp = cluster.rp.clone();
    let (a, b) = (cluster.a.base.clone(), cluster.b.base.clone());
    let session = sign_in(&rp.http, &a, "ada").await;
    let killed = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));

    struct Outcome {
        after_kill: bool,
        result: Result<(), Failure>,
    }
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let (rp, a, b, session) = (rp.clone(), a.clone(), b.clone(), session.clone());
        let (killed, finished) = (killed.clone(), finished.clone());
        lanes.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut seen = Vec::new();
            let mut after = 0;
            for index in 0..1000 {
                let after_kill = killed.load(Ordering::SeqCst);
                // Alternate instances request by request until A is gone;
                // then the "load balancer" sends everything to B.
                let route = if after_kill {
                    [b.as_str(); 3]
                } else if (index + lane) % 2 == 0 {
                    [a.as_str(), b.as_str(), a.as_str()]
                } else {
                    [b.as_str(), a.as_str(), b.as_str()]
                };
                let result = rp.flow(&session, route, &mut seen).await;
                outcomes.push(Outcome { after_kill, result });
                finished.fetch_add(1, Ordering::SeqCst);
                if after_kill {
                    after += 1;
                    if after == FLOWS_AFTER_KILL_PER_LANE {
                        break;
                    }
                }
            }
            (outcomes, seen)
        }));
    }

    let going = poll_until(Duration::from_secs(60), async || {
        (finished.load(Ordering::SeqCst) >= FLOWS_BEFORE_KILL).then_some(())
    });
    assert!(going.await.is_some(), "the flows did not get going:\n{}", cluster.logs());
    cluster.a.sigkill();
    killed.store(true, Ordering::SeqCst);
    let status = cluster.a.wait_exit().await;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "A should have died of SIGKILL: {status}");

    let mut before_ok = 0;
    let mut cut_off = 0;
    let mut after_ok = 0;
    let mut problems = Vec::new();
    let mut statuses_b = Vec::new();
    for lane in lanes {
        let (outcomes, seen) = lane.await.expect("lane");
        statuses_b.extend(seen.into_iter().filter(|(base, _)| *base == b).map(|(_, status)| status));
        for outcome in outcomes {
            match (outcome.after_kill, outcome.result) {
                (true, Ok(())) => after_ok += 1,
                (false, Ok(())) => before_ok += 1,
                // Under way when A died: its requests to A fail, nothing else may.
                (false, Err(Failure::Unreachable(why))) if why.starts_with(&a) => cut_off += 1,
                (after_kill, Err(failure)) => problems.push(format!("after_kill={after_kill}: {failure}")),
            }
        }
    }
    eprintln!("flows: {before_ok} before the kill, {cut_off} cut off by it, {after_ok} after it");
    assert!(problems.is_empty(), "failed flows: {problems:#?}\n{}", cluster.logs());
    assert_eq!(after_ok, LANES * FLOWS_AFTER_KILL_PER_LANE);
    assert!(before_ok >= FLOWS_BEFORE_KILL - LANES, "{before_ok}");
    let errors: Vec<_> = statuses_b.iter().filter(|status| **status >= 500).collect();
    assert!(errors.is_empty(), "B answered 5xx: {errors:?}\n{}", cluster.b.log());
    assert!(cluster.b.is_running(), "B died");
}

/// 7. 1,000 complete flows (session → authorize → code → token), every
///    request sent to A or B at random, four flows at a time: no failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_flows_across_random_instances_all_succeed() {
    const LANES: usize = 4;
    const FLOWS: usize = 1000;
    let Some(cluster) = Cluster::start().await else { return };
    let rp = cluster.rp.clone();
    let (a, b) = (cluster.a.base.clone(), cluster.b.base.clone());
    let session = sign_in(&rp.http, &b, "ada").await;
    let mut lanes = Vec::new();
    for _ in 0..LANES {
        let (rp, a, b, session) = (rp.clone(), a.clone(), b.clone(), session.clone());
        lanes.push(tokio::spawn(async move {
            let mut coin = Coin::seeded();
            let mut pick = || if coin.flip() { a.as_str() } else { b.as_str() };
            let mut failures = Vec::new();
            let mut seen = Vec::new();
            for _ in 0..FLOWS / LANES {
                let (authorize_on, redeem_on) = (pick(), pick());
                let result = match rp.authorize(authorize_on, &session, &mut seen).await {
                    Ok(authorized) => rp.exchange(redeem_on, &authorized, &mut seen).await.map(|_| ()),
                    Err(failure) => Err(failure),
                };
                if let Err(failure) = result {
                    failures.push(format!("authorize on {authorize_on}, token on {redeem_on}: {failure}"));
                }
            }
            let on_a = seen.iter().filter(|(base, _)| *base == a).count();
            (failures, on_a, seen.len())
        }));
    }
    let mut failures = Vec::new();
    let (mut on_a, mut total) = (0, 0);
    for lane in lanes {
        let (lane_failures, lane_on_a, lane_total) = lane.await.expect("lane");
        failures.extend(lane_failures);
        on_a += lane_on_a;
        total += lane_total;
    }
    assert!(
        failures.is_empty(),
        "{} of {FLOWS} flows failed, e.g. {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(total, 2 * FLOWS);
    assert!(on_a > 0 && on_a < total, "requests were not spread: {on_a} of {total} on A");
}

// ---------------------------------------------------------------------------
// 8–10: starting together, losing the database, SQLite beside admin commands.
// ---------------------------------------------------------------------------

/// 8. Two instances started at the same moment on an empty database: both
///    start, and exactly one signing key results, published by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_starting_together_on_an_empty_database_agree_on_one_key() {
    for round in 0..3 {
        let Some(deployment) = Deployment::new(Backend::Postgres).await else { return };
        let mut a = deployment.spawn("a", deployment.public_port);
        let mut b = deployment.spawn("b", free_port());
        a.wait_ready().await;
        b.wait_ready().await;
        let rp = deployment.setup().await;
        assert!(a.is_running() && b.is_running(), "round {round}: an instance died");
        let jwks_a = fetch_jwks(&rp.http, &a.base).await;
        let jwks_b = fetch_jwks(&rp.http, &b.base).await;
        assert_eq!(jwks_a, jwks_b, "round {round}: the instances publish different keys");
        let jwks: Value = serde_json::from_str(&jwks_a).unwrap();
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "round {round}: {jwks}");

        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&deployment.database_url)
            .await
            .expect("connect to the test database");
        let (keys,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signing_keys").fetch_one(&pool).await.unwrap();
        let (migrations, failed): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(*) FILTER (WHERE NOT success) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        assert_eq!(keys, 1, "round {round}: {keys} signing keys stored");
        assert!(migrations > 0 && failed == 0, "round {round}: {migrations} migrations recorded, {failed} failed");

        // The key signs for both: a token from B verifies with A's JWKS.
        let mut seen = Vec::new();
        let session = sign_in(&rp.http, &a.base, "ada").await;
        let authorized = expect_ok(rp.authorize(&a.base, &session, &mut seen).await, "authorize");
        let tokens = expect_ok(rp.exchange(&b.base, &authorized, &mut seen).await, "token");
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD.decode(tokens.id_token.split('.').next().unwrap()).expect("header"),
        )
        .unwrap();
        assert_eq!(header["kid"], jwks["keys"][0]["kid"], "round {round}");
        drop((a, b));
    }
}

/// A TCP proxy in front of PostgreSQL with an outage switch. Down, it
/// closes every live connection and either refuses new ones (closed port,
/// as while PostgreSQL restarts) or accepts and at once hangs up on them.
struct PgProxy {
    port: u16,
    up: watch::Sender<bool>,
    /// Accepting on the port; `None` while the port is closed.
    acceptor: Option<JoinHandle<()>>,
    upstream: SocketAddr,
}

impl PgProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (up, _) = watch::channel(true);
        let acceptor = Some(Self::accept(listener, up.subscribe(), upstream));
        Self { port, up, acceptor, upstream }
    }

    fn accept(listener: TcpListener, state: watch::Receiver<bool>, upstream: SocketAddr) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let mut state = state.clone();
                if !*state.borrow_and_update() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                    let outage = async {
                        loop {
                            let up = *state.borrow_and_update();
                            if !up || state.changed().await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = outage => {}
                    }
                    // Dropping both ends closes them.
                });
            }
        })
    }

    /// Closes every connection; new ones are refused (port closed).
    fn refuse(&mut self) {
        self.up.send_replace(false);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }

    /// Closes every connection; new ones are accepted and closed at once.
    fn hang_up(&mut self) {
        self.up.send_replace(false);
    }

    async fn restore(&mut self) {
        self.up.send_replace(true);
        if self.acceptor.is_none() {
            // The aborted acceptor drops its listener; rebind the same port.
            let port = self.port;
            let bound = poll_until(Duration::from_secs(5), async || TcpListener::bind(("127.0.0.1", port)).await.ok());
            let listener = bound.await.unwrap_or_else(|| panic!("cannot reopen the proxy port {port}"));
            self.acceptor = Some(Self::accept(listener, self.up.subscribe(), self.upstream));
        }
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.up.send_replace(false);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.abort();
        }
    }
}

/// What the requests during an outage carry, prepared while the database is up.
struct Held {
    session: String,
    /// An unredeemed code: it must still be good once the database is back.
    code: String,
    access_token: String,
    /// The login form's CSRF cookie and field (double submit, not stored).
    csrf: (String, String),
}

/// One database-backed request of each kind, sent together; each answer
/// with the time it took, or why none came within 8 s.
async fn database_requests(
    rp: &Rp,
    base: &str,
    held: &Held,
) -> Vec<(&'static str, Result<(StatusCode, Duration), String>)> {
    let bound = Duration::from_secs(8);
    let timed = |name: &'static str, request: reqwest::RequestBuilder| async move {
        let started = Instant::now();
        let answer = match tokio::time::timeout(bound, request.send()).await {
            Err(_) => Err(format!("no answer within {bound:?} (a hang)")),
            Ok(Err(error)) => Err(format!("transport error: {error}")),
            Ok(Ok(response)) => Ok((response.status(), started.elapsed())),
        };
        (name, answer)
    };
    let http = &rp.http;
    let token_form = [("grant_type", "authorization_code"), ("code", held.code.as_str()), ("redirect_uri", CALLBACK)];
    let login_form = [("csrf_token", held.csrf.1.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    let (jwks, discovery, token, userinfo, authorize, login) = tokio::join!(
        timed("jwks", http.get(format!("{base}/application/o/{SLUG}/jwks/"))),
        timed("discovery", http.get(format!("{base}/application/o/{SLUG}/.well-known/openid-configuration"))),
        timed(
            "token",
            http.post(format!("{base}/application/o/token/")).header(AUTHORIZATION, rp.basic_auth()).form(&token_form)
        ),
        timed("userinfo", http.get(format!("{base}/application/o/userinfo/")).bearer_auth(&held.access_token)),
        timed("authorize", http.get(rp.authorize_url(base, "s", "n")).header(COOKIE, session_cookie(&held.session))),
        timed(
            "login",
            http.post(format!("{base}/login")).header(COOKIE, format!("latch_csrf={}", held.csrf.0)).form(&login_form)
        ),
    );
    vec![jwks, discovery, token, userinfo, authorize, login]
}

/// The login form's CSRF cookie and hidden field, from `base`.
async fn login_csrf(http: &reqwest::Client, base: &str) -> (String, String) {
    let form = http.get(format!("{base}/login")).send().await.expect("login form");
    assert_eq!(form.status(), StatusCode::OK);
    let cookie = cookie_value(&form, "latch_csrf").expect("CSRF cookie");
    let field = hidden_input(&form.text().await.expect("login form"), "csrf_token").expect("csrf_token");
    (cookie, field)
}

/// 9. Latch reaches PostgreSQL through a proxy that is cut twice (port
///    closed, then connections hung up on). During each outage requests that
///    need the database answer 503 within 8 s and the process lives on; once
///    the proxy is back, the same requests succeed without a restart — the
///    code held over the outage is still good. Then the connections are cut
///    under load: only 503s, no hang, and every later flow succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_answers_503_and_recovers_without_a_restart() {
    let Some(deployment) = Deployment::new(Backend::Postgres).await else { return };
    let rp = deployment.setup().await;
    let direct = url::Url::parse(&deployment.database_url).expect("database url");
    let host = direct.host_str().expect("database host").to_owned();
    let upstream = tokio::net::lookup_host((host.as_str(), direct.port().unwrap_or(5432)))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address");
    let mut proxy = PgProxy::start(upstream).await;
    let mut proxied = direct.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.port)).unwrap();
    let mut latch = deployment.spawn_on("latch", deployment.public_port, proxied.as_str());
    latch.wait_ready().await;
    let base = latch.base.clone();
    let session = sign_in(&rp.http, &base, "ada").await;
    let mut seen = Vec::new();

    for outage in ["port closed", "connections hung up on"] {
        let code = expect_ok(rp.authorize(&base, &session, &mut seen).await, "authorize before the outage").code;
        let other = expect_ok(rp.authorize(&base, &session, &mut seen).await, "authorize before the outage");
        let tokens = expect_ok(rp.exchange(&base, &other, &mut seen).await, "token before the outage");
        expect_ok(rp.userinfo(&base, &tokens.access_token, &mut seen).await, "userinfo before the outage");
        let csrf = login_csrf(&rp.http, &base).await;
        let held = Held { session: session.clone(), code, access_token: tokens.access_token, csrf };

        if outage == "port closed" {
            proxy.refuse();
        } else {
            proxy.hang_up();
        }
        // With connections hung up on, twice: the first finds dead pooled
        // connections, the second none. (A closed port costs the pool's
        // acquire timeout per attempt, so once.)
        let attempts = if outage == "port closed" { 1 } else { 2 };
        for attempt in 0..attempts {
            let answers = database_requests(&rp, &base, &held).await;
            for (name, answer) in answers {
                match answer {
                    Ok((StatusCode::SERVICE_UNAVAILABLE, elapsed)) => {
                        eprintln!("{outage}, attempt {attempt}: {name} answered 503 after {elapsed:?}");
                    }
                    // An app seen in the last second needs no database for
                    // its public documents (see oidc::discovery::KnownApps).
                    Ok((StatusCode::OK, elapsed)) if matches!(name, "jwks" | "discovery") => {
                        eprintln!("{outage}, attempt {attempt}: {name} answered from memory after {elapsed:?}");
                    }
                    Ok((status, elapsed)) => panic!(
                        "{outage}, attempt {attempt}: {name} answered {status} after {elapsed:?}, expected 503\n{}",
                        latch.log()
                    ),
                    Err(why) => panic!("{outage}, attempt {attempt}: {name}: {why}\n{}", latch.log()),
                }
            }
            assert!(latch.is_running(), "{outage}: latch died during the outage:\n{}", latch.log());
        }

        proxy.restore().await;
        let answers = database_requests(&rp, &base, &held).await;
        for (name, answer) in answers {
            let expected = if matches!(name, "authorize" | "login") { StatusCode::SEE_OTHER } else { StatusCode::OK };
            match answer {
                Ok((status, _)) if status == expected => {}
                other => {
                    panic!("{outage}: after recovery {name} answered {other:?}, expected {expected}\n{}", latch.log())
                }
            }
        }
        expect_ok(rp.flow(&session, [base.as_str(); 3], &mut seen).await, "a flow after recovery");
    }

    // Third: connections cut while flows are in flight. Requests caught by
    // the cut may fail, but only with 503 and never by hanging; flows
    // started after the proxy is back all succeed.
    let restored = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut lanes = Vec::new();
    for _ in 0..2 {
        let (rp, base, session) = (rp.clone(), base.clone(), session.clone());
        let (restored, finished) = (restored.clone(), finished.clone());
        lanes.push(tokio::spawn(async move {
            let (mut seen, mut problems, mut after, mut cut) = (Vec::new(), Vec::new(), 0, 0);
            while after < 10 {
                let after_restore = restored.load(Ordering::SeqCst);
                let started = Instant::now();
                match rp.flow(&session, [base.as_str(); 3], &mut seen).await {
                    Ok(()) => {}
                    Err(Failure::Wrong(why)) if !after_restore && why.contains("503") => cut += 1,
                    Err(failure) => problems.push(format!("after_restore={after_restore}: {failure}")),
                }
                if started.elapsed() > Duration::from_secs(8) {
                    problems.push(format!("a flow took {:?}", started.elapsed()));
                }
                after += usize::from(after_restore);
                finished.fetch_add(1, Ordering::SeqCst);
            }
            (seen, problems, cut)
        }));
    }
    let wait_for = |count: usize| {
        let finished = finished.clone();
        async move {
            let done =
                poll_until(Duration::from_secs(30), async || (finished.load(Ordering::SeqCst) >= count).then_some(()));
            assert!(done.await.is_some(), "the flows stalled");
        }
    };
    wait_for(6).await;
    proxy.hang_up();
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore().await;
    restored.store(true, Ordering::SeqCst);
    for lane in lanes {
        let (lane_seen, problems, cut) = lane.await.expect("lane");
        eprintln!("cut under load: {cut} flows of a lane failed with 503 during the cut");
        assert!(problems.is_empty(), "cut under load: {problems:#?}\n{}", latch.log());
        let errors: Vec<_> = lane_seen.iter().filter(|(_, status)| *status >= 500 && *status != 503).collect();
        assert!(errors.is_empty(), "cut under load: answers other than 503 among the 5xx: {errors:?}\n{}", latch.log());
    }
    assert!(latch.is_running());
}

/// 9. Back-channel logout outlives the instance that took it up: A claims
///    the notice of a sign-out on A and is killed while the app has not
///    answered; once A's claim runs out (15 s), B delivers the notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_notice_whose_instance_dies_is_delivered_by_the_other() {
    let Some(mut cluster) = Cluster::start().await else { return };
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Hang);
    let uri = receiver.url("/logout");
    cluster.deployment.admin(&["app", "update", SLUG, "--backchannel-logout-uri", &uri], None).await;
    let (rp, a) = (cluster.rp.clone(), cluster.a.base.clone());
    let mut seen = Vec::new();
    let session = sign_in(&rp.http, &a, "ada").await;
    let authorized = expect_ok(rp.authorize(&a, &session, &mut seen).await, "authorize");
    let tokens = expect_ok(rp.exchange(&a, &authorized, &mut seen).await, "token");
    let signed_out = rp
        .http
        .get(format!("{a}/application/o/{SLUG}/end-session/"))
        .query(&[("id_token_hint", &tokens.id_token)])
        .header(COOKIE, session_cookie(&session))
        .send()
        .await
        .expect("end-session");
    assert_eq!(signed_out.status(), StatusCode::OK);
    receiver.wait_for("/logout", 1).await;
    cluster.a.sigkill();
    cluster.a.wait_exit().await;

    let delivered = receiver.wait_for_within("/logout", 2, Duration::from_secs(40)).await;
    let claims = jwt_payload(delivered[1].logout_token());
    let id_claims = tokens.id_claims();
    assert_eq!((&claims["sub"], &claims["sid"]), (&id_claims["sub"], &id_claims["sid"]), "{}", cluster.logs());
    assert!(claims["events"].get(EVENT).is_some(), "{claims}");
    assert!(cluster.b.log().contains("back-channel logout delivered"), "{}", cluster.logs());
}

/// 10. SQLite: a `latch serve` process and admin commands run beside it on
///     one file. 30 × (`user add`, `group add-member`) while flows and
///     sign-ins run against the server: every command and every flow
///     succeeds, and nothing says "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_serves_while_admin_commands_write_beside_it() {
    const USERS: usize = 30;
    let deployment = Deployment::new(Backend::Sqlite).await.expect("SQLite is always available");
    deployment.admin(&["group", "add", "staff"], None).await;
    let rp = deployment.setup().await;
    let mut latch = deployment.spawn("latch", deployment.public_port);
    latch.wait_ready().await;
    let base = latch.base.clone();
    let session = sign_in(&rp.http, &base, "ada").await;

    let done = Arc::new(AtomicBool::new(false));
    // Two lanes of flows, so the server writes from two connections too.
    let mut lanes = Vec::new();
    for lane in 0..2 {
        let (rp, base, session, done) = (rp.clone(), base.clone(), session.clone(), done.clone());
        lanes.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut failures = Vec::new();
            let mut count = 0;
            while !done.load(Ordering::SeqCst) || count < 10 {
                // Every fifth flow signs in afresh: a session row written too.
                let session = if (count + lane) % 5 == 4 {
                    match sign_in_with_next(&rp.http, &base, "/", "ada").await {
                        Ok((session, _)) => session,
                        Err(failure) => {
                            failures.push(format!("sign-in: {failure}"));
                            session.clone()
                        }
                    }
                } else {
                    session.clone()
                };
                if let Err(failure) = rp.flow(&session, [base.as_str(); 3], &mut seen).await {
                    failures.push(failure.to_string());
                }
                count += 1;
            }
            (count, failures, seen)
        }));
    }

    let mut command_failures = Vec::new();
    for index in 0..USERS {
        let username = format!("user{index:02}");
        let email = format!("{username}@example.com");
        let commands: [(Vec<&str>, Option<&str>); 2] = [
            (vec!["user", "add", &username, "--email", &email, "--password-stdin"], Some(PASSWORD)),
            (vec!["group", "add-member", "staff", &username], None),
        ];
        for (args, stdin) in commands {
            let output = run_latch(&deployment.database_url, &deployment.public_url, &args, stdin).await;
            if !output.status.success() {
                command_failures.push(format!("latch {args:?}: {}", String::from_utf8_lossy(&output.stderr)));
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let (mut count, mut failures, mut seen) = (0, Vec::new(), Vec::new());
    for lane in lanes {
        let (lane_count, lane_failures, lane_seen) = lane.await.expect("flows");
        count += lane_count;
        failures.extend(lane_failures);
        seen.extend(lane_seen);
    }
    eprintln!("{count} flows ran beside {} admin commands", 2 * USERS);

    assert!(command_failures.is_empty(), "admin commands failed: {command_failures:#?}");
    assert!(failures.is_empty(), "{} of {count} flows failed: {failures:#?}\n{}", failures.len(), latch.log());
    assert!(seen.iter().all(|(_, status)| *status < 500), "5xx seen");
    let log = latch.log();
    assert!(!log.to_lowercase().contains("locked"), "the server's log mentions a lock:\n{log}");
    assert!(latch.is_running());

    // Everything the commands wrote is there, and the server sees it.
    let groups: Value = serde_json::from_str(&deployment.admin(&["group", "list", "--json"], None).await).unwrap();
    let members = groups.as_array().and_then(|groups| groups.iter().find(|group| group["name"] == "staff"));
    assert_eq!(members.and_then(|group| group["members"].as_array()).map(Vec::len), Some(USERS), "{groups}");
    let newest = sign_in(&rp.http, &base, &format!("user{:02}", USERS - 1)).await;
    let mut seen = Vec::new();
    expect_ok(rp.flow(&newest, [base.as_str(); 3], &mut seen).await, "the newest user's flow");
}
