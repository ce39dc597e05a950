//! The test harness: a Latch server on a random port with a fresh database
//! (a temporary SQLite file, or a new PostgreSQL database per test), admin
//! commands run through the real `latch` binary, and a cookie-keeping
//! browser that does not follow redirects on its own.

use std::process::Output;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Backend)` once per backend, as
/// `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// The server's PostgreSQL: `LATCH_TEST_POSTGRES_URL`, or the local default.
fn postgres_admin_url() -> String {
    std::env::var("LATCH_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A connection to the PostgreSQL server's admin database, or `None` (with
/// a notice) when it is unreachable outside CI. Under CI it must be reachable.
async fn postgres_admin() -> Option<sqlx::PgPool> {
    let admin_url = postgres_admin_url();
    let connection = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&admin_url)
        .await;
    match connection {
        Ok(pool) => Some(pool),
        Err(error) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED (PostgreSQL): no server at {admin_url}: {error}");
            None
        }
        Err(error) => panic!("PostgreSQL is required under CI but {admin_url} is unreachable: {error}"),
    }
}

fn postgres_url(name: &str) -> String {
    let mut url = url::Url::parse(&postgres_admin_url()).expect("postgres url");
    url.set_path(name);
    url.to_string()
}

/// Names carry the test process's id, so that a later run can drop what a
/// finished run left behind without touching a run still going.
fn database_name(kind: &str) -> String {
    format!("latch_{kind}_{}_{}", std::process::id(), uuid::Uuid::new_v4().simple())
}

/// A fresh, empty database for one test (nothing migrated, no key), or
/// `None` when PostgreSQL is unreachable outside CI.
pub async fn fresh_database(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}", dir.join("latch.db").display())),
        Backend::Postgres => {
            let pool = postgres_admin().await?;
            let name = database_name("test");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.expect("create test database");
            pool.close().await;
            Some(postgres_url(&name))
        }
    }
}

/// A database for one test, already migrated and holding a signing key:
/// a copy of a template made once per test process, which saves every test
/// the migrations and the RSA key generation.
pub async fn prepared_database(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => {
            let template = SQLITE_TEMPLATE.get_or_init(build_sqlite_template).await;
            let file = dir.join("latch.db");
            std::fs::copy(template, &file).expect("copy the SQLite template");
            Some(format!("sqlite://{}", file.display()))
        }
        Backend::Postgres => {
            let pool = postgres_admin().await?;
            let template = POSTGRES_TEMPLATE.get_or_init(|| build_postgres_template(&pool)).await;
            let name = database_name("test");
            sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&pool)
                .await
                .expect("copy the PostgreSQL template");
            pool.close().await;
            Some(postgres_url(&name))
        }
    }
}

static SQLITE_TEMPLATE: tokio::sync::OnceCell<std::path::PathBuf> = tokio::sync::OnceCell::const_new();
static POSTGRES_TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

/// Migrates the database and creates its first signing key, as a first
/// start of `latch serve` would, then closes every connection to it.
async fn prepare(database_url: &str) {
    let store = latch::store::Store::connect(database_url).await.expect("migrate the template");
    latch::oidc::keyring::Keys::load(&store, latch::clock::now()).await.expect("first signing key");
    store.close().await;
}

async fn build_sqlite_template() -> std::path::PathBuf {
    // Lives as long as the test process.
    let dir = Box::leak(Box::new(tempfile::tempdir().expect("template dir")));
    let file = dir.path().join("template.db");
    prepare(&format!("sqlite://{}", file.display())).await;
    file
}

async fn build_postgres_template(pool: &sqlx::PgPool) -> String {
    drop_databases_of_finished_runs(pool).await;
    let name = database_name("template");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(pool).await.expect("create the template database");
    prepare(&postgres_url(&name)).await;
    name
}

/// Test databases whose test process has ended (crashed, or killed before
/// its drops ran).
async fn drop_databases_of_finished_runs(pool: &sqlx::PgPool) {
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname ~ '^latch_(test|template)_[0-9]+_'")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    for (name,) in names {
        let pid = name.split('_').nth(2).unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(pool).await;
        }
    }
}

/// Drops a test database (best effort, in the background: a finished test
/// need not wait, and whatever is left is dropped by the next run).
pub fn drop_postgres_database(database_url: &str) {
    let Some(name) = url::Url::parse(database_url).ok().map(|url| url.path().trim_start_matches('/').to_owned()) else {
        return;
    };
    let admin_url = postgres_admin_url();
    // Drop runs outside any runtime we may block: use a thread of our own.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        runtime.block_on(async {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&admin_url).await.ok()?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await.ok()?;
            Some(())
        })
    });
}

/// Asks `probe` until it answers `Some`, and returns that answer; `None`
/// once `within` has passed. For what another process or a background task
/// does in its own time (a server or proxy starting, a batch of audit
/// events being written, a key refresh): never for a time rule, which the
/// test moves the server's clock through instead. Asks again at once at
/// first, then backs off to every 100 ms.
pub async fn poll_until<T>(within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + within;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(answer) = probe().await {
            return Some(answer);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

pub struct TestApp {
    pub base: String,
    /// The configured `public_url`: `base` unless `Options` said otherwise.
    pub public_url: String,
    pub database_url: String,
    pub backend: Backend,
    /// The server's clock: `clock.advance(seconds)` instead of sleeping.
    pub clock: latch::clock::Clock,
    /// `ldap://127.0.0.1:<port>`, when `Options::ldap`.
    pub ldap_url: Option<String>,
    /// `ldaps://127.0.0.1:<port>`, when `Options::ldap_tls`.
    pub ldaps_url: Option<String>,
    /// The first-run setup link the server made at start (no one is an
    /// administrator in a fresh database).
    pub setup_url: Option<String>,
    server: JoinHandle<()>,
    /// Whether dropping it drops the PostgreSQL database: a database given
    /// in `Options` or shared with `another_instance` belongs to another.
    owns_database: bool,
    dir: tempfile::TempDir,
}

/// Settings a test may change before the server starts.
#[derive(Default)]
pub struct Options {
    pub code_ttl: Option<&'static str>,
    pub access_token_ttl: Option<&'static str>,
    /// `public_url` is `https://` + the listening address (the server still
    /// speaks plain HTTP there): for what Latch does differently under
    /// https, such as its cookies, seen in the headers it sends.
    pub https_public_url: bool,
    pub login_max_failures: Option<&'static str>,
    pub login_lockout: Option<&'static str>,
    /// Another `public_url` than the listening address: a load balancer's
    /// in front of several servers.
    pub public_url: Option<String>,
    /// A new, empty database (its own signing key and database id) rather
    /// than a copy of the prepared template.
    pub fresh_database: bool,
    /// An existing database (a copy of another server's, as a restored
    /// backup) rather than a new one.
    pub database_url: Option<String>,
    /// Serve LDAP on a free port, base `dc=example,dc=com`.
    pub ldap: bool,
    /// Also LDAPS and StartTLS, with a certificate for 127.0.0.1 made by
    /// `openssl` (`TestApp::ldap_ca` names it).
    pub ldap_tls: bool,
    /// `public_url` is `http://localhost:<port>` (the server listens on
    /// 127.0.0.1): a domain, which passkeys need for their RP ID.
    pub localhost_public_url: bool,
    /// Mail through this SMTP server (`smtp_url`).
    pub smtp_url: Option<String>,
    /// `require_mfa`: `true` or `false`.
    pub require_mfa: Option<&'static str>,
    /// `mfa_enrolment`: `open` or `closed`.
    pub mfa_enrolment: Option<&'static str>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        // A database given belongs to another `TestApp` (or to the test), which drops it.
        let shared = options.database_url.is_some();
        let database_url = match options.database_url.clone() {
            Some(database_url) => database_url,
            None if options.fresh_database => fresh_database(backend, dir.path()).await?,
            None => prepared_database(backend, dir.path()).await?,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let public_url = match options.public_url.clone() {
            Some(public_url) => public_url,
            None if options.https_public_url => base.replacen("http://", "https://", 1),
            None if options.localhost_public_url => base.replacen("127.0.0.1", "localhost", 1),
            None => base.clone(),
        };
        let mut app = Self::start(backend, database_url, public_url, listener, dir, &options).await;
        app.owns_database = !shared;
        Some(app)
    }

    /// A second server on this one's database and public URL, as a second
    /// instance behind a load balancer (on SQLite, a second server on the
    /// same file). Its own directory; the database stays this app's.
    pub async fn another_instance(&self) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let options = Options::default();
        let mut other =
            Self::start(self.backend, self.database_url.clone(), self.public_url.clone(), listener, dir, &options)
                .await;
        // Only the first instance drops the PostgreSQL database.
        other.owns_database = false;
        other
    }

    async fn start(
        backend: Backend,
        database_url: String,
        public_url: String,
        listener: TcpListener,
        dir: tempfile::TempDir,
        options: &Options,
    ) -> Self {
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let tls = options.ldap_tls.then(|| test_certificate(dir.path()));
        let args = latch::config::ConfigArgs {
            public_url: Some(public_url.clone()),
            database_url: Some(database_url.clone()),
            data_dir: Some(dir.path().display().to_string()),
            code_ttl: options.code_ttl.map(Into::into),
            access_token_ttl: options.access_token_ttl.map(Into::into),
            login_max_failures: options.login_max_failures.map(Into::into),
            login_lockout: options.login_lockout.map(Into::into),
            ldap_listen: (options.ldap || options.ldap_tls).then(|| "127.0.0.1:0".into()),
            ldaps_listen: tls.as_ref().map(|_| "127.0.0.1:0".into()),
            ldap_tls_cert: tls.as_ref().map(|(cert, _)| cert.display().to_string()),
            ldap_tls_key: tls.as_ref().map(|(_, key)| key.display().to_string()),
            ldap_base_dn: Some("dc=example,dc=com".into()),
            smtp_url: options.smtp_url.clone(),
            require_mfa: options.require_mfa.map(Into::into),
            mfa_enrolment: options.mfa_enrolment.map(Into::into),
            ..Default::default()
        };
        let config = args.load().expect("config");
        let server = latch::server::Server::with_listener(&config, listener).await.expect("server starts");
        let clock = server.clock();
        let ldap_url = server.ldap_addr().map(|address| format!("ldap://{address}"));
        let ldaps_url = server.ldaps_addr().map(|address| format!("ldaps://{address}"));
        let setup_url = server.setup_link().map(|link| link.url.clone());
        let server = tokio::spawn(async move {
            server.run(std::future::pending()).await.expect("server runs");
        });
        Self {
            base,
            public_url,
            database_url,
            backend,
            clock,
            ldap_url,
            ldaps_url,
            setup_url,
            server,
            owns_database: true,
            dir,
        }
    }

    /// The certificate the LDAP listeners present (`Options::ldap_tls`).
    pub fn ldap_ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ldap-cert.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn issuer(&self, slug: &str) -> String {
        self.url(&format!("/application/o/{slug}/"))
    }

    /// Runs `latch <args>` against this app's database, with `stdin`.
    pub async fn latch(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_latch(&self.database_url, &self.public_url, args, stdin).await
    }

    /// Like `latch`, but the command must succeed; returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> String {
        let output = self.latch(args, None).await;
        assert!(output.status.success(), "latch {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub async fn add_user(&self, username: &str, password: &str, groups: &[&str]) {
        let email = format!("{username}@example.com");
        let mut args = vec!["user", "add", username, "--email", &email, "--name", "Test User", "--password-stdin"];
        for group in groups {
            args.extend(["--group", group]);
        }
        let output = self.latch(&args, Some(password)).await;
        assert!(output.status.success(), "user add failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Registers an app and returns its credentials as `app add --json` prints them.
    pub async fn add_app(&self, slug: &str, redirect_uris: &[&str], extra: &[&str]) -> AppCredentials {
        let mut args = vec!["app", "add", slug, "--name", slug, "--json"];
        for uri in redirect_uris {
            args.extend(["--redirect-uri", uri]);
        }
        args.extend(extra);
        serde_json::from_str(&self.admin(&args).await).expect("app add --json prints JSON")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if self.backend == Backend::Postgres && self.owns_database {
            drop_postgres_database(&self.database_url);
        }
    }
}

/// A self-signed certificate and key for 127.0.0.1 in `dir`, made with
/// the `openssl` command.
fn test_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("ldap-cert.pem"), dir.join("ldap-key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(made.status.success(), "openssl failed: {}", String::from_utf8_lossy(&made.stderr));
    (cert, key)
}

pub async fn run_latch(database_url: &str, public_url: &str, args: &[&str], stdin: Option<&str>) -> Output {
    run_latch_with_env(database_url, public_url, args, stdin, &[]).await
}

/// `run_latch` with these environment variables set as well.
pub async fn run_latch_with_env(
    database_url: &str,
    public_url: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_latch"))
        .args(args)
        .env("LATCH_DATABASE_URL", database_url)
        .env("LATCH_PUBLIC_URL", public_url)
        .envs(env.iter().copied())
        // The base DN the test servers serve (`Options::ldap`).
        .env("LATCH_LDAP_BASE_DN", "dc=example,dc=com")
        .env_remove("LATCH_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run latch");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    child.wait_with_output().await.expect("latch output")
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub issuer: String,
    pub discovery_url: String,
}

/// A browser: keeps cookies as browsers do, lets the test follow redirects.
pub struct Browser {
    pub client: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { client }
    }

    /// Follows redirects while they stay on Latch (`base`); returns the last
    /// response, which is a page on Latch or a redirect away from it.
    pub async fn visit(&self, base: &str, url: &str) -> reqwest::Response {
        let mut url = url.to_owned();
        for _ in 0..10 {
            let response = self.client.get(&url).send().await.expect("request");
            match location(&response) {
                Some(next) if response.status().is_redirection() => {
                    let next = absolute(base, &next);
                    if !next.starts_with(base) {
                        return response;
                    }
                    url = next;
                }
                _ => return response,
            }
        }
        panic!("too many redirects from {url}");
    }

    /// Starts at an authorization URL and, if Latch asks, signs in. Returns
    /// the URL Latch finally sends the browser to (the app's callback).
    pub async fn authorize(&self, base: &str, authorize_url: &str, username: &str, password: &str) -> url::Url {
        let response = self.visit(base, authorize_url).await;
        let response = if response.status() == StatusCode::OK {
            let page_url = response.url().to_string();
            let html = response.text().await.expect("login page");
            let login = self.submit_login(base, &page_url, &html, username, password).await;
            assert_eq!(login.status(), StatusCode::SEE_OTHER, "sign-in should redirect: {}", login.status());
            let next = absolute(base, &location(&login).expect("location"));
            self.visit(base, &next).await
        } else {
            response
        };
        if !response.status().is_redirection() {
            panic!(
                "expected a redirect to the app, got {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        url::Url::parse(&absolute(base, &location(&response).expect("location"))).expect("callback url")
    }

    /// Fills in and posts the login form found in `html`.
    pub async fn submit_login(
        &self,
        base: &str,
        _page_url: &str,
        html: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let csrf = hidden_input(html, "csrf_token").expect("csrf_token in login form");
        let next = hidden_input(html, "next").expect("next in login form");
        self.client
            .post(format!("{base}/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("next", next.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .expect("login post")
    }
}

pub fn location(response: &reqwest::Response) -> Option<String> {
    response.headers().get(LOCATION).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

pub fn absolute(base: &str, location: &str) -> String {
    if location.starts_with('/') { format!("{base}{location}") } else { location.to_owned() }
}

/// The value of `<input type="hidden" name="…" value="…">`, unescaped.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape_html(&html[start..end]))
}

/// Undoes HTML escaping: named entities and decimal or hex character references.
pub fn unescape_html(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16).ok().and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(character) => {
                out.push(character);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A query parameter of a URL.
pub fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

// ---- Helpers for the protocol tests: one place that knows how a request
// ---- looks on the wire, so each test reads as what it sends and expects.

pub const PASSWORD: &str = "correct horse battery staple";
pub const CALLBACK: &str = "https://app.example.com/oauth2/callback";

/// A client that does not follow redirects and keeps no cookies: an app's backend.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

impl TestApp {
    /// `/application/o/authorize/?<params>`, form-encoded.
    pub fn authorize_url(&self, params: &[(&str, &str)]) -> String {
        let query = serde_urlencoded::to_string(params).expect("encode query");
        self.url(&format!("/application/o/authorize/?{query}"))
    }

    /// POSTs `form` to the token endpoint, with `client_secret_basic` when
    /// `basic` is given.
    pub async fn token(&self, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> reqwest::Response {
        let request = http().post(self.url("/application/o/token/")).form(form);
        let request = match basic {
            Some((id, secret)) => request.basic_auth(id, Some(secret)),
            None => request,
        };
        request.send().await.expect("token request")
    }

    /// Exchanges `code` as the app in `credentials` would: `client_secret_basic`
    /// for a confidential client, `client_id` in the body for a public one.
    pub async fn redeem(
        &self,
        credentials: &AppCredentials,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
        form.extend(verifier.map(|verifier| ("code_verifier", verifier)));
        match &credentials.client_secret {
            Some(secret) => self.token(Some((&credentials.client_id, secret)), &form).await,
            None => {
                form.push(("client_id", &credentials.client_id));
                self.token(None, &form).await
            }
        }
    }

    /// GET userinfo with `Authorization: Bearer`.
    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        http().get(self.url("/application/o/userinfo/")).bearer_auth(access_token).send().await.expect("userinfo")
    }
}

/// The parameters of an ordinary code request, `scope=openid profile email`.
pub fn code_request<'a>(client_id: &'a str, redirect_uri: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile email"),
        ("state", state),
    ]
}

impl Browser {
    /// Opens the login page and signs in; returns the answer to the POST.
    pub async fn sign_in(&self, base: &str, username: &str, password: &str) -> reqwest::Response {
        let page = self.client.get(format!("{base}/login")).send().await.expect("login page");
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("login page");
        self.submit_login(base, "", &html, username, password).await
    }

    /// Runs the authorization request `params` (signing in if asked) and
    /// returns the code Latch sends back.
    pub async fn code(&self, app: &TestApp, params: &[(&str, &str)], username: &str, password: &str) -> String {
        let callback = self.authorize(&app.base, &app.authorize_url(params), username, password).await;
        query_param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"))
    }
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect()
}

pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// A successful token response: 200, `Cache-Control: no-store`, JSON.
pub async fn token_ok(response: reqwest::Response) -> serde_json::Value {
    let status = response.status();
    let cache_control = header(&response, "cache-control");
    let body: serde_json::Value = response.json().await.expect("token response is JSON");
    assert_eq!(status, StatusCode::OK, "token request failed: {body}");
    assert_eq!(cache_control.as_deref(), Some("no-store"), "token response must not be cached");
    assert!(body["access_token"].is_string(), "{body}");
    body
}

/// A token-endpoint error (RFC 6749 §5.2): the status, JSON with `error`,
/// `Cache-Control: no-store`, and no `"` or `\` in the description.
pub async fn token_error(response: reqwest::Response, status: StatusCode, error: &str) -> serde_json::Value {
    let actual = response.status();
    let cache_control = header(&response, "cache-control");
    let content_type = header(&response, "content-type").unwrap_or_default();
    let text = response.text().await.expect("body");
    assert_eq!(actual, status, "expected {status} {error}, got {actual}: {text}");
    assert!(content_type.starts_with("application/json"), "content type {content_type:?}: {text}");
    assert_eq!(cache_control.as_deref(), Some("no-store"), "error responses must not be cached either");
    let body: serde_json::Value = serde_json::from_str(&text).expect("error body is JSON");
    assert_eq!(body["error"], error, "{body}");
    assert_rfc6749_text(&body["error"]);
    assert_rfc6749_text(&body["error_description"]);
    body
}

/// `error` and `error_description` use only %x20-21 / %x23-5B / %x5D-7E.
pub fn assert_rfc6749_text(value: &serde_json::Value) {
    match value {
        serde_json::Value::Null => {}
        serde_json::Value::String(text) => assert!(
            text.chars().all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
            "not allowed in an OAuth error text: {text:?}"
        ),
        other => panic!("error texts are strings, got {other}"),
    }
}

/// The decoded header (`0`) or payload (`1`) of a compact JWS.
pub fn jwt_part(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("JWS part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The text of the `role="alert"` element of a page (an error message), unescaped.
pub fn alert_text(html: &str) -> Option<String> {
    let start = html.find("role=\"alert\">")? + "role=\"alert\">".len();
    let end = html[start..].find("</")? + start;
    Some(unescape_html(html[start..end].trim()))
}

/// A redirect away from Latch to `redirect_uri` carrying an authorization
/// error: `error`, a description, the `state` sent, `iss`, and no `code`.
pub fn assert_error_redirect(response: &reqwest::Response, redirect_uri: &str, error: &str, state: &str, issuer: &str) {
    assert!(response.status().is_redirection(), "expected a redirect, got {}", response.status());
    let target = url::Url::parse(&location(response).expect("Location")).expect("absolute Location");
    let registered = url::Url::parse(redirect_uri).expect("registered URI");
    assert_eq!(
        (target.scheme(), target.host_str(), target.port(), target.path()),
        (registered.scheme(), registered.host_str(), registered.port(), registered.path()),
        "the error must go to the registered redirect URI: {target}"
    );
    assert_eq!(query_param(&target, "error").as_deref(), Some(error), "{target}");
    let description = query_param(&target, "error_description").unwrap_or_default();
    assert!(!description.is_empty(), "no error_description: {target}");
    assert_rfc6749_text(&serde_json::Value::String(description));
    assert_eq!(query_param(&target, "state").as_deref(), Some(state), "{target}");
    assert_eq!(query_param(&target, "iss").as_deref(), Some(issuer), "{target}");
    assert_eq!(query_param(&target, "code"), None, "an error carries no code: {target}");
}

/// An HTML error page (400), never a redirect: returns its message, unescaped.
pub async fn assert_error_page(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(location(&response), None, "an error page must never redirect");
    let content_type = header(&response, "content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "content type {content_type:?}");
    let html = response.text().await.expect("page");
    alert_text(&html).unwrap_or_else(|| panic!("no error message on the page: {html}"))
}
