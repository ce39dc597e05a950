//! Production readiness (issue 6), as operators and clients see it: real
//! `latch serve` processes driven over HTTP, and the `latch` binary for
//! admin commands.
//!
//! - sign-in throttling per username and per client address, lifted by
//!   `latch user unlock` or by time, with `X-Forwarded-For` believed only
//!   from a trusted proxy, and holding across two instances on PostgreSQL;
//! - `/metrics` as OpenMetrics text whose counters follow the traffic, on
//!   the main address or its own; `/health/live` and `/health/ready` while
//!   the database is cut and mended through a TCP proxy;
//! - SIGTERM under load; backup and restore; the audit trail; request logs
//!   that never carry a secret.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::common::{
    Backend, Options, TestApp, alert_text, drop_postgres_database, fresh_database, hidden_input, location, poll_until,
    query_param, run_latch,
};
use crate::on_every_backend;
use crate::relying_party::confirm_sign_out;

const PASSWORD: &str = "correct horse battery staple";
const CALLBACK: &str = "https://app.example.com/oauth2/callback";
const USER_AGENT: &str = "latch-operations-test/1.0";

// ---------------------------------------------------------------------------
// Processes: a site (one database, one public URL) and its `latch serve`s.
// ---------------------------------------------------------------------------

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// One database, one data directory and one public URL, shared by every
/// `latch serve` started from it. Dropping it drops a PostgreSQL database.
struct Site {
    backend: Backend,
    database_url: String,
    public_url: String,
    /// The port the public URL names.
    port: u16,
    /// Holds `data/` (the SQLite file, `LATCH_DATA_DIR`) and the logs.
    dir: tempfile::TempDir,
}

impl Site {
    /// A fresh database, or `None` when PostgreSQL is unreachable outside CI.
    async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database(backend, &dir.path().join("data")).await?;
        let port = free_port();
        Some(Self { backend, database_url, public_url: format!("http://127.0.0.1:{port}"), port, dir })
    }

    async fn sqlite() -> Self {
        Self::new(Backend::Sqlite).await.expect("SQLite is always available")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `latch serve` on the public port with extra `env`, once it answers.
    async fn start(&self, env: &[(&str, &str)]) -> Latch {
        self.start_on(self.port, &self.database_url, env).await
    }

    /// `latch serve` on `port`, reaching the database at `database_url`.
    async fn start_on(&self, port: u16, database_url: &str, env: &[(&str, &str)]) -> Latch {
        let mut latch = Latch::spawn(port, database_url, &self.public_url, &self.data_dir(), self.dir.path(), env);
        latch.wait_live().await;
        latch
    }

    async fn latch(&self, args: &[&str]) -> Output {
        run_latch(&self.database_url, &self.public_url, args, None).await
    }

    /// Runs an admin command that must succeed; returns its stdout.
    async fn admin(&self, args: &[&str]) -> String {
        let output = self.latch(args).await;
        assert!(output.status.success(), "latch {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn add_user(&self, username: &str) {
        let email = format!("{username}@example.com");
        let args = ["user", "add", username, "--email", &email, "--password-stdin"];
        let output = run_latch(&self.database_url, &self.public_url, &args, Some(PASSWORD)).await;
        assert!(output.status.success(), "user add failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Registers a confidential app redirecting to `CALLBACK`.
    async fn add_app(&self, slug: &str) -> Rp {
        let json = self.admin(&["app", "add", slug, "--name", slug, "--redirect-uri", CALLBACK, "--json"]).await;
        let credentials: Value = serde_json::from_str(&json).expect("app add --json prints JSON");
        Rp {
            client_id: credentials["client_id"].as_str().expect("client_id").to_owned(),
            client_secret: credentials["client_secret"].as_str().expect("client_secret").to_owned(),
        }
    }

    /// `latch events --json <filters>`, parsed.
    async fn events(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["events", "--json"];
        if !filters.contains(&"--limit") {
            args.extend(["--limit", "1000"]);
        }
        args.extend_from_slice(filters);
        let json = self.admin(&args).await;
        match serde_json::from_str(&json) {
            Ok(Value::Array(events)) => events,
            other => panic!("latch events --json printed {other:?}: {json}"),
        }
    }

    /// The events once those the server queues (written in batches) are
    /// in: polls until `done` holds, for at most 10 s.
    async fn events_until(&self, filters: &[&str], done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let within = Duration::from_secs(10);
        match poll_until(within, async || Some(self.events(filters).await).filter(|events| done(events))).await {
            Some(events) => events,
            None => self.events(filters).await,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            drop_postgres_database(&self.database_url);
        }
    }
}

/// A `latch serve` process; killed when dropped.
struct Latch {
    base: String,
    child: Child,
    log_path: PathBuf,
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

impl Latch {
    /// Starts `latch serve` with only the given settings: no `LATCH_*` and
    /// no `RUST_LOG` from the test's environment.
    fn spawn(
        port: u16,
        database_url: &str,
        public_url: &str,
        data_dir: &Path,
        log_dir: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let log_path = log_dir.join(format!("latch-{}.log", STARTED.fetch_add(1, Ordering::SeqCst)));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("LATCH_") || key_text == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        let child = command
            .arg("serve")
            .env("LATCH_DATABASE_URL", database_url)
            .env("LATCH_PUBLIC_URL", public_url)
            .env("LATCH_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCH_DATA_DIR", data_dir)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start latch serve");
        Self { base: format!("http://127.0.0.1:{port}"), child, log_path }
    }

    /// Polls `/health/live` until it answers 200; fails if the process
    /// exits or takes over a minute.
    async fn wait_live(&mut self) {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        let live = poll_until(Duration::from_secs(60), async || {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("latch serve exited during start ({status}):\n{}", self.log());
            }
            let response = http.get(self.url("/health/live")).send().await;
            response.is_ok_and(|response| response.status() == StatusCode::OK).then_some(())
        })
        .await;
        assert!(live.is_some(), "latch serve did not answer within 60 s:\n{}", self.log());
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends SIGTERM, as systemd, Kubernetes or `docker stop` do.
    fn terminate(&self) {
        let pid = self.child.id().expect("the process is running");
        let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for the process to exit, for at most `limit`.
    async fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait"),
            Err(_) => panic!("latch serve still running {limit:?} after SIGTERM:\n{}", self.log()),
        }
    }

    /// Stops the process with SIGTERM; it must exit 0 within 12 s.
    async fn stop(&mut self) {
        self.terminate();
        let status = self.exit_within(Duration::from_secs(12)).await;
        assert!(status.success(), "latch serve exited with {status} after SIGTERM:\n{}", self.log());
    }
}

// ---------------------------------------------------------------------------
// Browsers and apps, by hand over HTTP.
// ---------------------------------------------------------------------------

/// A browser: keeps cookies, does not follow redirects, names itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// What a sign-in attempt showed the person.
#[derive(Debug)]
struct Attempt {
    status: StatusCode,
    message: Option<String>,
    signed_in: bool,
}

impl Attempt {
    /// Refused exactly as a wrong password is (`wrong`): same status, same
    /// message, no session.
    fn assert_refused_like(&self, wrong: &Attempt, what: &str) {
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "a wrong password is 401: {wrong:?}");
        assert!(wrong.message.as_deref().is_some_and(|message| !message.is_empty()), "{wrong:?}");
        assert_eq!(self.status, wrong.status, "{what}: {self:?}");
        assert_eq!(self.message, wrong.message, "{what}: the message must not differ from a wrong password's");
        assert!(!self.signed_in, "{what}: a session cookie was set");
    }

    fn assert_signed_in(&self, what: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{what}: {self:?}");
        assert!(self.signed_in, "{what}: no session cookie");
    }
}

/// Opens the login form on `base` and posts it from `client`, with an
/// `X-Forwarded-For` header on the post when given.
async fn sign_in_with(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Attempt {
    let page = client.get(format!("{base}/login")).send().await.expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = hidden_input(&page.text().await.expect("login page"), "csrf_token").expect("csrf_token");
    let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", username), ("password", password)];
    let mut post = client.post(format!("{base}/login")).form(&form);
    if let Some(address) = forwarded_for {
        post = post.header("x-forwarded-for", address);
    }
    let response = post.send().await.expect("login POST");
    let status = response.status();
    let signed_in = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|cookie| cookie.starts_with("latch_session=") && !cookie.starts_with("latch_session=;"));
    let message = alert_text(&response.text().await.unwrap_or_default());
    Attempt { status, message, signed_in }
}

/// One sign-in attempt from a fresh browser.
async fn attempt(base: &str, username: &str, password: &str) -> Attempt {
    sign_in_with(&browser(), base, username, password, None).await
}

async fn attempt_via(base: &str, username: &str, password: &str, forwarded_for: &str) -> Attempt {
    sign_in_with(&browser(), base, username, password, Some(forwarded_for)).await
}

/// A registered confidential app.
#[derive(Clone, Debug)]
struct Rp {
    client_id: String,
    client_secret: String,
}

impl Rp {
    /// Runs an authorization request in a signed-in `browser`; returns the code.
    async fn code(&self, browser: &reqwest::Client, base: &str, scope: &str) -> String {
        let url = url::Url::parse_with_params(
            &format!("{base}/application/o/authorize/"),
            [
                ("response_type", "code"),
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", CALLBACK),
                ("scope", scope),
                ("state", "s"),
                ("nonce", "n"),
            ],
        )
        .expect("authorize url");
        let response = browser.get(url).send().await.expect("authorize");
        let target = location(&response).unwrap_or_default();
        assert!(
            response.status() == StatusCode::SEE_OTHER && target.starts_with(CALLBACK),
            "expected a redirect to the app, got {} {target}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        let target = url::Url::parse(&target).expect("callback URL");
        query_param(&target, "code").unwrap_or_else(|| panic!("no code in {target}"))
    }

    /// The token endpoint's answer to `form`, with `client_secret_basic`.
    async fn token(&self, base: &str, form: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{base}/application/o/token/"))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    async fn exchange(&self, base: &str, code: &str) -> reqwest::Response {
        self.token(base, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CALLBACK)]).await
    }
}

/// The token response's JSON, after checking it is a 200.
async fn tokens(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("token response is JSON");
    assert_eq!(status, StatusCode::OK, "token request failed: {body}");
    body
}

fn string<'a>(json: &'a Value, field: &str) -> &'a str {
    json[field].as_str().unwrap_or_else(|| panic!("no {field} in {json}"))
}

/// The `kid`s of an app's JWKS.
async fn jwks_kids(base: &str, slug: &str) -> BTreeSet<String> {
    let jwks: Value = reqwest::get(format!("{base}/application/o/{slug}/jwks/"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JWKS is JSON");
    let keys = jwks["keys"].as_array().unwrap_or_else(|| panic!("no keys in {jwks}"));
    keys.iter().map(|key| string(key, "kid").to_owned()).collect()
}

// ---------------------------------------------------------------------------
// (a) Sign-in throttling.
// ---------------------------------------------------------------------------

/// Three failures lock a username; a locked username is refused exactly
/// like a wrong password, even with the right one (whatever the case of
/// the name), while others sign in; `latch user unlock` lifts the lock.
async fn guessing_a_password_locks_the_username_until_unlocked(backend: Backend) {
    let Some(site) = Site::new(backend).await else { return };
    site.add_user("ada").await;
    site.add_user("bob").await;
    let latch = site.start(&[("LATCH_LOGIN_MAX_FAILURES", "3"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "6")]).await;

    // Case and spaces do not buy an attacker more guesses.
    let wrong = attempt(&latch.base, "ada", "guess 1").await;
    for (username, guess) in [("Ada", "guess 2"), (" ADA", "guess 3")] {
        attempt(&latch.base, username, guess).await.assert_refused_like(&wrong, "a wrong guess");
    }

    let right = attempt(&latch.base, "ada", PASSWORD).await;
    right.assert_refused_like(&wrong, "the right password during the lock");
    attempt(&latch.base, "ada", "guess 4").await.assert_refused_like(&wrong, "a wrong guess during the lock");
    attempt(&latch.base, "bob", "bob's guess").await.assert_refused_like(&wrong, "bob's wrong guess");
    attempt(&latch.base, "bob", PASSWORD).await.assert_signed_in("another user during ada's lock");
    attempt(&latch.base, "ada", PASSWORD).await.assert_refused_like(&wrong, "the right password, still locked");

    let unlocked = site.admin(&["user", "unlock", "ada"]).await;
    assert!(unlocked.contains("Unlocked ada"), "{unlocked}");
    attempt(&latch.base, "ada", PASSWORD).await.assert_signed_in("after latch user unlock");
    let bob = site.admin(&["user", "unlock", "bob"]).await;
    assert!(bob.contains("no failed sign-ins"), "a good sign-in clears the failures: {bob}");
}

on_every_backend!(guessing_a_password_locks_the_username_until_unlocked);

/// Adds `usernames` (with `PASSWORD`): the first alone (it creates the
/// schema, which two processes must not race on in a new SQLite file), the
/// rest a few at a time.
async fn add_users(site: &Site, usernames: &[String]) {
    let Some((first, rest)) = usernames.split_first() else { return };
    site.add_user(first).await;
    for chunk in rest.chunks(4) {
        let mut adding = tokio::task::JoinSet::new();
        for username in chunk {
            let (database_url, public_url) = (site.database_url.clone(), site.public_url.clone());
            let email = format!("{username}@example.com");
            let username = username.clone();
            adding.spawn(async move {
                let args = ["user", "add", &username, "--email", &email, "--password-stdin"];
                run_latch(&database_url, &public_url, &args, Some(PASSWORD)).await
            });
        }
        for output in adding.join_all().await {
            assert!(output.status.success(), "user add failed: {}", String::from_utf8_lossy(&output.stderr));
        }
    }
}

/// Posts every `(username, password)` sign-in at the same moment (after
/// each browser has opened its form), to `bases` in turn; the statuses.
async fn sign_in_together(bases: &[&str], attempts: &[(String, String)]) -> Vec<StatusCode> {
    let barrier = Arc::new(tokio::sync::Barrier::new(attempts.len()));
    let mut sign_ins = Vec::new();
    for (index, (username, password)) in attempts.iter().enumerate() {
        let base = bases[index % bases.len()].to_owned();
        let (username, password, barrier) = (username.clone(), password.clone(), barrier.clone());
        sign_ins.push(tokio::spawn(async move {
            let client = browser();
            let page = client.get(format!("{base}/login")).send().await.expect("login page");
            let csrf = hidden_input(&page.text().await.expect("page"), "csrf_token").expect("csrf_token");
            let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", &username), ("password", &password)];
            barrier.wait().await;
            client.post(format!("{base}/login")).form(&form).send().await.expect("login POST").status()
        }));
    }
    let mut statuses = Vec::new();
    for sign_in in sign_ins {
        statuses.push(sign_in.await.expect("sign-in"));
    }
    statuses
}

/// Password checks (`outcome="failure"`) and refusals without one
/// (`outcome="locked"`), summed over the instances at `bases`.
async fn checked_and_locked(bases: &[&str]) -> (f64, f64) {
    let (mut checked, mut locked) = (0.0, 0.0);
    for base in bases {
        let samples = scrape(&format!("{base}/metrics")).await;
        checked += metric(&samples, "latch_logins_total", &[("outcome", "failure")]);
        locked += metric(&samples, "latch_logins_total", &[("outcome", "locked")]);
    }
    (checked, locked)
}

/// A script that sends its guesses all at once gets no more password
/// checks than one that sends them in turn: with a limit of 3, a burst of
/// 12 concurrent wrong guesses has at most 3 passwords checked (the others
/// are refused as locked), as `latch_logins_total` shows.
async fn a_burst_of_concurrent_guesses_gets_no_more_checks_than_the_limit(backend: Backend) {
    let Some(site) = Site::new(backend).await else { return };
    site.add_user("ada").await;
    let latch = site.start(&[("LATCH_LOGIN_MAX_FAILURES", "3"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "100")]).await;
    let guesses: Vec<_> = (0..12).map(|index| ("ada".to_owned(), format!("guess {index}"))).collect();
    for status in sign_in_together(&[&latch.base], &guesses).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (checked, locked) = checked_and_locked(&[&latch.base]).await;
    assert_eq!(checked + locked, 12.0);
    assert!(checked <= 3.0, "{checked} of 12 concurrent guesses had their password checked (limit 3)");
}

on_every_backend!(a_burst_of_concurrent_guesses_gets_no_more_checks_than_the_limit);

/// Sixty right-password sign-ins for one person at the same moment (a
/// script, or many tabs restored at once), with the default limits (5 per
/// username, 20 per address): every one succeeds.
async fn simultaneous_right_passwords_for_one_user_all_succeed(backend: Backend) {
    let Some(site) = Site::new(backend).await else { return };
    site.add_user("ada").await;
    let latch = site.start(&[]).await;
    let sign_ins = vec![("ada".to_owned(), PASSWORD.to_owned()); 60];
    let statuses = sign_in_together(&[&latch.base], &sign_ins).await;
    let refused = statuses.iter().filter(|status| **status != StatusCode::SEE_OTHER).count();
    assert_eq!(refused, 0, "{refused} of 60 right-password sign-ins were refused: {statuses:?}");
}

on_every_backend!(simultaneous_right_passwords_for_one_user_all_succeed);

/// Thirty people behind one address (an office NAT) signing in at the same
/// moment with their right passwords, beyond the default per-address limit
/// of 20: every one succeeds, and nobody is locked out afterwards. With a
/// limit of 1 per username, two tabs of one person both succeed too.
async fn people_signing_in_at_once_behind_one_address_all_succeed(backend: Backend) {
    let Some(site) = Site::new(backend).await else { return };
    let people: Vec<String> = (0..30).map(|index| format!("user{index}")).collect();
    add_users(&site, &people).await;
    let mut latch = site.start(&[]).await;
    let sign_ins: Vec<_> = people.iter().map(|person| (person.clone(), PASSWORD.to_owned())).collect();
    let statuses = sign_in_together(&[&latch.base], &sign_ins).await;
    let refused = statuses.iter().filter(|status| **status != StatusCode::SEE_OTHER).count();
    assert_eq!(refused, 0, "{refused} of 30 people signing in at once were refused: {statuses:?}");

    latch.stop().await;
    let latch = site.start(&[("LATCH_LOGIN_MAX_FAILURES", "1"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "4")]).await;
    let tabs: Vec<_> = people[..8].iter().chain(&people[..2]).map(|p| (p.clone(), PASSWORD.to_owned())).collect();
    let statuses = sign_in_together(&[&latch.base], &tabs).await;
    assert!(statuses.iter().all(|status| *status == StatusCode::SEE_OTHER), "limits 1 and 4: {statuses:?}");
    for person in &people[..8] {
        attempt(&latch.base, person, PASSWORD).await.assert_signed_in(&format!("{person}, after the rush"));
    }
}

on_every_backend!(people_signing_in_at_once_behind_one_address_all_succeed);

/// A visitor who hangs up mid-check keeps no slot: twenty sign-ins for one
/// person dropped 5 to 100 ms after they were sent (limit 2) leave
/// the right password signing in at once, not after the slots' 5-minute
/// lease.
async fn sign_ins_dropped_mid_check_free_their_slots(backend: Backend) {
    let Some(site) = Site::new(backend).await else { return };
    site.add_user("ada").await;
    let latch = site.start(&[("LATCH_LOGIN_MAX_FAILURES", "2")]).await;
    let mut dropped = tokio::task::JoinSet::new();
    for index in 0..20 {
        let base = latch.base.clone();
        let patience = Duration::from_millis(5 + 5 * index);
        dropped.spawn(async move {
            let client = browser();
            let page = client.get(format!("{base}/login")).send().await.expect("login page");
            let csrf = hidden_input(&page.text().await.expect("page"), "csrf_token").expect("csrf_token");
            let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
            let post = client.post(format!("{base}/login")).form(&form).timeout(patience);
            post.send().await.is_err()
        });
    }
    let hung_up = dropped.join_all().await.into_iter().filter(|hung_up| *hung_up).count();
    assert!(hung_up >= 5, "only {hung_up} of 20 sign-ins were dropped before their answer");
    let started = Instant::now();
    attempt(&latch.base, "ada", PASSWORD).await.assert_signed_in("after the dropped sign-ins");
    assert!(started.elapsed() < Duration::from_secs(10), "the sign-in waited {:?} for slots", started.elapsed());
}

on_every_backend!(sign_ins_dropped_mid_check_free_their_slots);

/// The lock ends by itself after `LATCH_LOGIN_LOCKOUT`. A lock of a
/// minute, so that the real seconds a loaded machine spends hashing the
/// guesses cannot end it early; the test moves the clock through it.
async fn a_lock_ends_by_itself(backend: Backend) {
    let options = Options { login_max_failures: Some("2"), login_lockout: Some("60s"), ..Default::default() };
    let Some(latch) = TestApp::spawn_with(backend, options).await else { return };
    latch.add_user("ada", PASSWORD, &[]).await;
    let wrong = attempt(&latch.base, "ada", "guess 1").await;
    attempt(&latch.base, "ada", "guess 2").await.assert_refused_like(&wrong, "a wrong guess");
    attempt(&latch.base, "ada", PASSWORD).await.assert_refused_like(&wrong, "the right password during the lock");
    latch.clock.advance(30);
    attempt(&latch.base, "ada", PASSWORD).await.assert_refused_like(&wrong, "the right password 30 s into the lock");
    // Locks end on a whole second: 60 s after the lock at the latest.
    latch.clock.advance(31);
    attempt(&latch.base, "ada", PASSWORD).await.assert_signed_in("after the lockout");
}

on_every_backend!(a_lock_ends_by_itself);

/// Failures from one address add up across usernames; `X-Forwarded-For`
/// from a peer that is not a trusted proxy is ignored (rotating it does not
/// help), and the audit trail records the socket's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_spans_usernames_and_ignores_forwarded_for_from_untrusted_peers() {
    let site = Site::sqlite().await;
    site.add_user("carol").await;
    let latch = site.start(&[("LATCH_LOGIN_MAX_FAILURES", "3"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "4")]).await;
    let wrong = attempt_via(&latch.base, "user0", "guess", "198.51.100.0").await;
    for index in 1..4 {
        let (username, forged) = (format!("user{index}"), format!("198.51.100.{index}"));
        attempt_via(&latch.base, &username, "guess", &forged).await.assert_refused_like(&wrong, "a wrong guess");
    }
    // Four failures from 127.0.0.1, one per username: the address is locked.
    attempt_via(&latch.base, "carol", PASSWORD, "198.51.100.99")
        .await
        .assert_refused_like(&wrong, "the right password from a locked address, with a new X-Forwarded-For");
    attempt(&latch.base, "carol", PASSWORD).await.assert_refused_like(&wrong, "the right password, locked address");

    let failures = site
        .events_until(&[], |events| events.iter().filter(|event| event["kind"] == "login_failure").count() >= 6)
        .await;
    let addresses: BTreeSet<&str> = failures
        .iter()
        .filter(|event| event["kind"] == "login_failure")
        .map(|event| event["ip"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(addresses, BTreeSet::from(["127.0.0.1"]), "the audit trail must record the socket's address");
}

/// From a trusted proxy, the address in `X-Forwarded-For` is the client's:
/// guesses from one forwarded address lock that address only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_a_trusted_proxy_is_the_client_address() {
    let site = Site::sqlite().await;
    site.add_user("carol").await;
    let latch = site
        .start(&[
            ("LATCH_LOGIN_MAX_FAILURES", "3"),
            ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "4"),
            ("LATCH_TRUSTED_PROXIES", "127.0.0.1"),
        ])
        .await;
    let attacker = "203.0.113.7";
    // Guesses from many forwarded addresses: none reaches the limit.
    let wrong = attempt_via(&latch.base, "user0", "guess", "198.51.100.0").await;
    for index in 1..6 {
        let (username, client) = (format!("user{index}"), format!("198.51.100.{index}"));
        attempt_via(&latch.base, &username, "guess", &client).await.assert_refused_like(&wrong, "a wrong guess");
    }
    // Guesses from one forwarded address: that address is locked.
    for index in 0..4 {
        let username = format!("other{index}");
        attempt_via(&latch.base, &username, "guess", attacker).await.assert_refused_like(&wrong, "a wrong guess");
    }
    attempt_via(&latch.base, "carol", PASSWORD, attacker)
        .await
        .assert_refused_like(&wrong, "the right password from the locked forwarded address");
    attempt_via(&latch.base, "carol", PASSWORD, "203.0.113.8").await.assert_signed_in("from another client address");
    // A proxy appends the address it saw: the nearest untrusted one counts.
    attempt_via(&latch.base, "carol", PASSWORD, &format!("198.51.100.77, {attacker}"))
        .await
        .assert_refused_like(&wrong, "the locked address behind a forged first hop");

    let failures = site
        .events_until(&[], |events| events.iter().filter(|event| event["kind"] == "login_failure").count() >= 11)
        .await;
    let from_attacker =
        failures.iter().filter(|event| event["kind"] == "login_failure" && event["ip"] == attacker).count();
    assert!(from_attacker >= 4, "the audit trail must record the forwarded address: {failures:#?}");
}

// ---------------------------------------------------------------------------
// (b) Throttling across two instances on one PostgreSQL database.
// ---------------------------------------------------------------------------

/// Guesses spread over two `latch serve` processes add up: the username,
/// then the address, are locked on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_spread_over_two_instances_are_throttled_the_same() {
    let Some(site) = Site::new(Backend::Postgres).await else { return };
    site.add_user("ada").await;
    site.add_user("carol").await;
    let limits = [("LATCH_LOGIN_MAX_FAILURES", "4"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "6")];
    let a = site.start(&limits).await;
    let b = site.start_on(free_port(), &site.database_url, &limits).await;
    let both = [a.base.as_str(), b.base.as_str()];

    // Two guesses on each: per instance, that would stay under the limit of four.
    let wrong = attempt(both[0], "ada", "guess 0").await;
    for index in 1..4 {
        let guess = format!("guess {index}");
        attempt(both[index % 2], "ada", &guess).await.assert_refused_like(&wrong, "a wrong guess");
    }
    for base in both {
        attempt(base, "ada", PASSWORD).await.assert_refused_like(&wrong, &format!("the right password on {base}"));
    }
    site.admin(&["user", "unlock", "ada"]).await;
    attempt(both[1], "ada", PASSWORD).await.assert_signed_in("after unlock, on the other instance");

    // The address has four failures; one more on each instance makes six.
    attempt(both[0], "user1", "guess").await.assert_refused_like(&wrong, "a wrong guess");
    attempt(both[1], "user2", "guess").await.assert_refused_like(&wrong, "a wrong guess");
    for base in both {
        attempt(base, "carol", PASSWORD)
            .await
            .assert_refused_like(&wrong, &format!("the right password from a locked address on {base}"));
    }
}

/// Two instances on one database share the slots: twelve concurrent
/// guesses split over both get at most the limit (3) of password checks in
/// all, while sixty right passwords for one person and thirty people
/// behind one address, split over both at once, all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sign_ins_over_two_instances_share_the_limits() {
    let Some(site) = Site::new(Backend::Postgres).await else { return };
    let people: Vec<String> = (0..30).map(|index| format!("user{index}")).collect();
    add_users(&site, &people).await;
    site.add_user("ada").await;
    site.add_user("eve").await;
    let limits = [("LATCH_LOGIN_MAX_FAILURES", "3"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "20")];
    let a = site.start(&limits).await;
    let b = site.start_on(free_port(), &site.database_url, &limits).await;
    let both = [a.base.as_str(), b.base.as_str()];

    let guesses: Vec<_> = (0..12).map(|index| ("eve".to_owned(), format!("guess {index}"))).collect();
    assert!(sign_in_together(&both, &guesses).await.iter().all(|status| *status == StatusCode::UNAUTHORIZED));
    let (checked, locked) = checked_and_locked(&both).await;
    assert_eq!(checked + locked, 12.0);
    assert!(checked <= 3.0, "{checked} of 12 guesses over two instances had their password checked (limit 3)");

    // The address's 3 failures leave it 17 slots for everyone else.
    let sign_ins = vec![("ada".to_owned(), PASSWORD.to_owned()); 60];
    let statuses = sign_in_together(&both, &sign_ins).await;
    assert!(statuses.iter().all(|status| *status == StatusCode::SEE_OTHER), "one person, 60 at once: {statuses:?}");
    let sign_ins: Vec<_> = people.iter().map(|person| (person.clone(), PASSWORD.to_owned())).collect();
    let statuses = sign_in_together(&both, &sign_ins).await;
    assert!(statuses.iter().all(|status| *status == StatusCode::SEE_OTHER), "30 people, one address: {statuses:?}");
}

// ---------------------------------------------------------------------------
// (c) Metrics.
// ---------------------------------------------------------------------------

/// One sample of an exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

const METRIC_TYPES: [&str; 8] =
    ["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"];

/// Checks `text` the way a Prometheus scraper reading OpenMetrics would:
/// `# TYPE`/`# HELP`/`# UNIT` comments, then `name{labels} value` lines of
/// declared families, names `latch_…` (or the standard `process_…`),
/// `# EOF` at the end; counters non-negative; histogram buckets cumulative
/// with the `+Inf` bucket equal to `_count`.
fn parse_openmetrics(text: &str) -> Result<Vec<Sample>, String> {
    let body = text.strip_suffix("# EOF\n").or_else(|| text.strip_suffix("# EOF")).ok_or("no \"# EOF\" at the end")?;
    let mut families: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: {line:?}", index + 1);
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (keyword, name, rest) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next());
            check_metric_name(name).map_err(at)?;
            match keyword {
                "TYPE" => {
                    let kind = rest.unwrap_or_default();
                    if !METRIC_TYPES.contains(&kind) {
                        return Err(at(format!("unknown type {kind:?}")));
                    }
                    if families.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(at("family declared twice".into()));
                    }
                }
                "HELP" | "UNIT" => {}
                _ => return Err(at("unknown comment".into())),
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let kind = family_kind(&sample.name, &families).ok_or_else(|| at("a sample of no declared family".into()))?;
        if kind == "counter" && (sample.value < 0.0 || !sample.value.is_finite()) {
            return Err(at("a counter must be a non-negative number".into()));
        }
        samples.push(sample);
    }
    check_histograms(&samples)?;
    Ok(samples)
}

fn check_metric_name(name: &str) -> Result<(), String> {
    let valid = name.chars().next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        return Err(format!("invalid metric name {name:?}"));
    }
    if !(name.starts_with("latch_") || name.starts_with("process_")) {
        return Err(format!("{name:?} is neither latch_… nor a standard metric"));
    }
    Ok(())
}

/// The type of the family a sample name belongs to, if declared.
fn family_kind<'a>(name: &str, families: &'a HashMap<String, String>) -> Option<&'a str> {
    const SUFFIXES: [(&str, &[&str]); 6] = [
        ("_total", &["counter"]),
        ("_created", &["counter", "histogram", "summary"]),
        ("_bucket", &["histogram", "gaugehistogram"]),
        ("_count", &["histogram", "summary"]),
        ("_sum", &["histogram", "summary"]),
        ("_info", &["info"]),
    ];
    if let Some(kind) = families.get(name).filter(|kind| matches!(kind.as_str(), "gauge" | "unknown" | "stateset")) {
        return Some(kind);
    }
    SUFFIXES.iter().find_map(|(suffix, kinds)| {
        let kind = families.get(name.strip_suffix(suffix)?)?;
        kinds.contains(&kind.as_str()).then_some(kind.as_str())
    })
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    check_metric_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let equals = inner.find('=').ok_or("a label without '='")?;
            let label = &inner[..equals];
            let label_ok = label.chars().next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !label_ok {
                return Err(format!("invalid label name {label:?}"));
            }
            let quoted = inner[equals + 1..].strip_prefix('"').ok_or("a label value must be quoted")?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    None | Some((_, '\n')) => return Err("unterminated label value".into()),
                    Some((position, '"')) => break position,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, escaped @ ('\\' | '"'))) => value.push(escaped),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.iter().any(|(seen, _)| seen == label) {
                return Err(format!("label {label} given twice"));
            }
            labels.push((label.to_owned(), value));
            inner = &quoted[end + 1..];
            if let Some(after) = inner.strip_prefix(',') {
                inner = after;
                if inner.starts_with('}') {
                    return Err("a trailing comma".into());
                }
            } else if !inner.starts_with('}') {
                return Err("expected ',' or '}' after a label".into());
            }
        }
    }
    let mut fields = rest.strip_prefix(' ').ok_or("no space before the value")?.split(' ');
    let raw = fields.next().unwrap_or_default();
    let value = match raw {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit() || ".eE+-".contains(c)) => {
            raw.parse().map_err(|_| format!("bad value {raw:?}"))?
        }
        _ => return Err(format!("bad value {raw:?}")),
    };
    match (fields.next(), fields.next()) {
        (None, _) => {}
        (Some(timestamp), None) if timestamp.parse::<f64>().is_ok() => {}
        _ => return Err("extra fields after the value".into()),
    }
    Ok(Sample { name: name.to_owned(), labels, value })
}

/// Every histogram series: buckets non-decreasing in `le`, the `+Inf` bucket
/// present and equal to `_count`.
fn check_histograms(samples: &[Sample]) -> Result<(), String> {
    /// A histogram series: the family and its labels other than `le`.
    type Series = (String, Vec<(String, String)>);
    let mut series: HashMap<Series, Vec<(f64, f64)>> = HashMap::new();
    for sample in samples {
        let Some(family) = sample.name.strip_suffix("_bucket") else { continue };
        let le = sample.labels.iter().find(|(name, _)| name == "le").ok_or(format!("{} without le", sample.name))?;
        let bound =
            if le.1 == "+Inf" { f64::INFINITY } else { le.1.parse().map_err(|_| format!("bad le {:?}", le.1))? };
        let rest: Vec<_> = sample.labels.iter().filter(|(name, _)| name != "le").cloned().collect();
        series.entry((family.to_owned(), rest)).or_default().push((bound, sample.value));
    }
    for ((family, labels), mut buckets) in series {
        buckets.sort_by(|left, right| left.0.total_cmp(&right.0));
        if buckets.windows(2).any(|pair| pair[1].1 < pair[0].1) {
            return Err(format!("{family}{labels:?}: buckets are not cumulative"));
        }
        let count = samples
            .iter()
            .find(|sample| sample.name == format!("{family}_count") && sample.labels == labels)
            .ok_or(format!("{family}{labels:?}: no _count"))?;
        match buckets.last() {
            Some((bound, value)) if bound.is_infinite() && *value == count.value => {}
            _ => return Err(format!("{family}{labels:?}: the +Inf bucket must equal _count")),
        }
    }
    Ok(())
}

/// The sum of the samples named `name` whose labels include `labels` (0 if none).
fn metric(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|sample| sample.name == name)
        .filter(|sample| labels.iter().all(|(key, value)| sample.labels.iter().any(|(k, v)| k == key && v == value)))
        .map(|sample| sample.value)
        .sum()
}

/// Scrapes `url`: 200, an OpenMetrics content type, text that parses.
async fn scrape(url: &str) -> Vec<Sample> {
    let response = reqwest::get(url).await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text") || content_type.starts_with("text/plain"),
        "content type {content_type:?}"
    );
    let text = response.text().await.expect("metrics text");
    parse_openmetrics(&text).unwrap_or_else(|why| panic!("/metrics is not valid OpenMetrics text: {why}\n{text}"))
}

#[test]
fn the_metrics_check_refuses_what_a_scraper_would() {
    let good = "# TYPE latch_x counter\nlatch_x_total{a=\"1\"} 2\n# EOF\n";
    assert_eq!(parse_openmetrics(good).map(|samples| samples.len()), Ok(1));
    for bad in [
        "# TYPE latch_x counter\nlatch_x_total 2\n",
        "latch_x_total 2\n# EOF\n",
        "# TYPE latch_x counter\nlatch_x 2\n# EOF\n",
        "# TYPE other counter\nother_total 2\n# EOF\n",
        "# TYPE latch_x counter\nlatch_x_total{a=1} 2\n# EOF\n",
        "# TYPE latch_x counter\nlatch_x_total{a=\"1\",} 2\n# EOF\n",
        "# TYPE latch_x counter\nlatch_x_total two\n# EOF\n",
        "# TYPE latch_x counter\nlatch_x_total -1\n# EOF\n",
        "# TYPE latch_x gauge\nlatch_x 1\n\n# EOF\n",
        "# TYPE latch_h histogram\nlatch_h_bucket{le=\"1\"} 2\nlatch_h_bucket{le=\"+Inf\"} 1\nlatch_h_count 1\n# EOF\n",
    ] {
        assert!(parse_openmetrics(bad).is_err(), "accepted {bad:?}");
    }
}

/// `/metrics` is valid OpenMetrics text, and sign-ins, token requests and
/// their failures move the counters by exactly what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_their_counters_follow_the_traffic() {
    let site = Site::sqlite().await;
    site.add_user("ada").await;
    let rp = site.add_app("grafana").await;
    let latch = site.start(&[]).await;
    let before = scrape(&latch.url("/metrics")).await;
    assert!(metric(&before, "latch_build_info", &[("version", env!("CARGO_PKG_VERSION"))]) == 1.0, "{before:?}");

    let browser = browser();
    let refused = sign_in_with(&browser, &latch.base, "ada", "wrong password", None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    sign_in_with(&browser, &latch.base, "ada", PASSWORD, None).await.assert_signed_in("ada");
    let code = rp.code(&browser, &latch.base, "openid profile").await;
    tokens(rp.exchange(&latch.base, &code).await).await;
    assert_eq!(rp.exchange(&latch.base, &code).await.status(), StatusCode::BAD_REQUEST, "a replayed code");
    reqwest::get(latch.url("/application/o/grafana/jwks/")).await.expect("jwks");
    reqwest::get(latch.url("/no/such/page/ada")).await.expect("an unknown path");

    let after = scrape(&latch.url("/metrics")).await;
    let moved = |name: &str, labels: &[(&str, &str)]| metric(&after, name, labels) - metric(&before, name, labels);
    let token_ok = [("endpoint", "/application/o/token/"), ("method", "POST"), ("status", "200")];
    let token_bad = [("endpoint", "/application/o/token/"), ("method", "POST"), ("status", "400")];
    assert_eq!(moved("latch_http_requests_total", &token_ok), 1.0, "token 200s");
    assert_eq!(moved("latch_http_requests_total", &token_bad), 1.0, "token 400s");
    assert_eq!(moved("latch_http_request_duration_seconds_count", &token_ok), 1.0, "token latency observations");
    assert!(moved("latch_http_request_duration_seconds_sum", &token_ok) > 0.0, "token latency");
    let login_posts = [("endpoint", "/login"), ("method", "POST")];
    assert_eq!(moved("latch_http_requests_total", &login_posts), 2.0, "login posts");
    assert_eq!(moved("latch_logins_total", &[("outcome", "failure")]), 1.0, "failed sign-ins");
    assert_eq!(moved("latch_logins_total", &[("outcome", "success")]), 1.0, "sign-ins");
    assert_eq!(moved("latch_tokens_issued_total", &[("grant", "authorization_code")]), 1.0, "tokens issued");
    assert!(metric(&after, "latch_active_sessions", &[]) >= 1.0, "active sessions");
    assert!(metric(&after, "latch_db_pool_connections", &[]) >= 1.0, "pool connections");
    // Endpoints are route patterns, never raw paths: no unbounded label values.
    let jwks = [("endpoint", "/application/o/{slug}/jwks/"), ("status", "200")];
    assert_eq!(moved("latch_http_requests_total", &jwks), 1.0, "JWKS under its route pattern");
    let raw: Vec<_> = after
        .iter()
        .filter(|sample| sample.labels.iter().any(|(_, value)| value.contains("grafana") || value.contains("ada")))
        .collect();
    assert!(raw.is_empty(), "label values taken from the request: {raw:?}");
}

/// With `LATCH_METRICS_LISTEN`, `/metrics` is served there and is gone
/// (404) from the main address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_an_address_of_their_own() {
    let site = Site::sqlite().await;
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let latch = site.start(&[("LATCH_METRICS_LISTEN", &metrics_address)]).await;
    let main = reqwest::get(latch.url("/metrics")).await.expect("main /metrics");
    assert_eq!(main.status(), StatusCode::NOT_FOUND, "/metrics must not be on the main address");
    let samples = scrape(&format!("http://{metrics_address}/metrics")).await;
    let live = [("endpoint", "/health/live"), ("status", "200")];
    assert!(metric(&samples, "latch_http_requests_total", &live) >= 1.0, "main-address traffic is counted");
    assert!(metric(&samples, "latch_http_requests_total", &[("status", "404")]) >= 1.0, "the 404 is counted");
}

// ---------------------------------------------------------------------------
// (d) Health, with the database cut through a proxy.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    /// Connections are closed, new ones hung up on at once.
    Down,
    /// Connections stay open but nothing passes: a hung database.
    Stalled,
}

/// A TCP proxy in front of PostgreSQL that the test cuts and mends; the
/// real PostgreSQL is never touched.
struct DbProxy {
    port: u16,
    link: watch::Sender<Link>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl DbProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (link, _) = watch::channel(Link::Up);
        let state = link.subscribe();
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let mut state = state.clone();
                tokio::spawn(async move { Self::carry(inbound, upstream, &mut state).await });
            }
        });
        Self { port, link, acceptor }
    }

    async fn carry(mut inbound: TcpStream, upstream: SocketAddr, link: &mut watch::Receiver<Link>) {
        let now = *link.borrow_and_update();
        if now == Link::Up {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                _ = link.wait_for(|link| *link != Link::Up) => {}
            }
        }
        if *link.borrow() == Link::Stalled {
            let _ = link.wait_for(|link| *link != Link::Stalled).await;
        }
        // Dropping the sockets closes them.
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.set(Link::Down);
        self.acceptor.abort();
    }
}

/// `/health/ready` answers with its status and how long it took.
async fn ready(http: &reqwest::Client, latch: &Latch) -> (StatusCode, Duration) {
    let started = Instant::now();
    let response = http.get(latch.url("/health/ready")).send().await.expect("/health/ready answers");
    (response.status(), started.elapsed())
}

/// `/health/live` is 200 throughout; `/health/ready` is 503 (within a few
/// seconds) while the database is unreachable or hangs, and 200 again by
/// itself once it is back, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_without_the_database_and_recovers_by_itself() {
    let Some(site) = Site::new(Backend::Postgres).await else { return };
    let direct = url::Url::parse(&site.database_url).expect("database url");
    let host = direct.host_str().expect("database host").to_owned();
    let upstream = tokio::net::lookup_host((host.as_str(), direct.port().unwrap_or(5432)))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address");
    let proxy = DbProxy::start(upstream).await;
    let mut proxied = direct.clone();
    proxied.set_host(Some("127.0.0.1")).expect("host");
    proxied.set_port(Some(proxy.port)).expect("port");
    let mut latch = site.start_on(site.port, proxied.as_str(), &[]).await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");

    let live = http.get(latch.url("/health/live")).send().await.expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.text().await.expect("live body"), "ok");
    assert_eq!(ready(&http, &latch).await.0, StatusCode::OK, "ready with the database up");

    for outage in [Link::Down, Link::Stalled] {
        proxy.set(outage);
        for _ in 0..2 {
            let (status, took) = ready(&http, &latch).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{outage:?}: ready answered {status}");
            assert!(took < Duration::from_secs(5), "{outage:?}: ready took {took:?}");
        }
        let live = http.get(latch.url("/health/live")).send().await.expect("live during the outage");
        assert_eq!(live.status(), StatusCode::OK, "{outage:?}: the process itself is alive");

        proxy.set(Link::Up);
        let back = poll_until(Duration::from_secs(20), async || {
            (ready(&http, &latch).await.0 == StatusCode::OK).then_some(())
        });
        assert!(back.await.is_some(), "{outage:?}: still not ready 20 s after the database came back");
        assert!(latch.is_running(), "{outage:?}: latch died:\n{}", latch.log());
    }
}

// ---------------------------------------------------------------------------
// (e) SIGTERM under load.
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Outcome {
    /// A whole response: status and a body read to its end.
    Complete(StatusCode),
    /// No response at all (refused, or closed before any answer).
    NoAnswer(String),
    /// A response that broke off after it began.
    Broken(String),
}

async fn outcome(request: reqwest::RequestBuilder) -> Outcome {
    match request.send().await {
        Err(error) => Outcome::NoAnswer(format!("{error:?}")),
        Ok(response) => {
            let status = response.status();
            match response.bytes().await {
                Ok(_) => Outcome::Complete(status),
                Err(error) => Outcome::Broken(format!("{status}: {error:?}")),
            }
        }
    }
}

/// A sign-in: the form, then the (slow: argon2) post.
async fn sign_in_outcome(client: &reqwest::Client, base: &str) -> Outcome {
    let page = match client.get(format!("{base}/login")).send().await {
        Err(error) => return Outcome::NoAnswer(format!("{error:?}")),
        Ok(page) => page,
    };
    let status = page.status();
    let html = match page.text().await {
        Ok(html) => html,
        Err(error) => return Outcome::Broken(format!("{status}: {error:?}")),
    };
    let Some(csrf) = hidden_input(&html, "csrf_token") else { return Outcome::Complete(status) };
    let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    outcome(client.post(format!("{base}/login")).form(&form)).await
}

/// Under a stream of concurrent requests (sign-ins among them), SIGTERM
/// lets in-flight requests finish: every answer is whole and none is a
/// 5xx; sign-ins posted before the signal all succeed; the process stops
/// accepting and exits 0 within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_response_and_exits_zero() {
    let site = Site::sqlite().await;
    site.add_user("ada").await;
    site.add_app("grafana").await;
    // Bursts of sign-ins of one user are the load here, not guesses: the
    // throttle (which charges attempts before checking them) must not refuse them.
    let limits = [("LATCH_LOGIN_MAX_FAILURES", "1000"), ("LATCH_LOGIN_MAX_FAILURES_PER_IP", "1000")];
    let mut latch = site.start(&limits).await;
    let base = latch.base.clone();
    let terminated = Arc::new(AtomicBool::new(false));

    // Lanes of quick requests and of sign-ins, until the server is gone.
    let mut lanes = Vec::new();
    // Lanes that have had an answer: the load is on once all have.
    let lanes_answered = Arc::new(AtomicUsize::new(0));
    for lane in 0..5 {
        let (base, terminated, lanes_answered) = (base.clone(), terminated.clone(), lanes_answered.clone());
        lanes.push(tokio::spawn(async move {
            let client = browser();
            let paths = ["/login", "/application/o/grafana/jwks/", "/health/ready", "/metrics"];
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(40);
            for round in 0.. {
                let sent_after_sigterm = terminated.load(Ordering::SeqCst);
                let result = if lane < 2 {
                    sign_in_outcome(&client, &base).await
                } else {
                    outcome(client.get(format!("{base}{}", paths[round % paths.len()]))).await
                };
                let gone = sent_after_sigterm && matches!(result, Outcome::NoAnswer(_));
                seen.push((sent_after_sigterm, result));
                if round == 0 {
                    lanes_answered.fetch_add(1, Ordering::SeqCst);
                }
                if gone || Instant::now() > deadline {
                    break;
                }
            }
            seen
        }));
    }

    // Sign-ins in flight at the moment of the signal: each browser has
    // its form (and an open connection); all post at once, then SIGTERM.
    let burst = 10;
    let barrier = Arc::new(tokio::sync::Barrier::new(burst + 1));
    let mut in_flight = Vec::new();
    for _ in 0..burst {
        let (base, barrier) = (base.clone(), barrier.clone());
        in_flight.push(tokio::spawn(async move {
            let client = browser();
            let page = client.get(format!("{base}/login")).send().await.expect("login page");
            let csrf = hidden_input(&page.text().await.expect("page"), "csrf_token").expect("csrf_token");
            barrier.wait().await;
            let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
            let result = outcome(client.post(format!("{base}/login")).form(&form)).await;
            (result, Instant::now())
        }));
    }
    let under_way = poll_until(Duration::from_secs(20), async || {
        (lanes_answered.load(Ordering::SeqCst) == lanes.len()).then_some(())
    });
    assert!(under_way.await.is_some(), "the lanes of requests did not get going:\n{}", latch.log());
    barrier.wait().await;
    // Long enough for the server to read the posts, too short to hash ten passwords.
    tokio::time::sleep(Duration::from_millis(50)).await;
    terminated.store(true, Ordering::SeqCst);
    let signalled = Instant::now();
    latch.terminate();
    let status = latch.exit_within(Duration::from_secs(12)).await;
    let took = signalled.elapsed();

    let (mut problems, mut finished_after_signal) = (Vec::new(), 0);
    for (index, sign_in) in in_flight.into_iter().enumerate() {
        let (result, answered) = sign_in.await.expect("sign-in task");
        finished_after_signal += usize::from(answered > signalled);
        match result {
            Outcome::Complete(StatusCode::SEE_OTHER) => {}
            other => problems.push(format!("sign-in {index} posted before SIGTERM: {other:?}")),
        }
    }
    let (mut complete, mut before, mut refused_after) = (0, 0, 0);
    // Requests sent just before the signal on a kept-alive connection the
    // server then closed as idle get no answer: a client retries those.
    let mut unanswered_before = Vec::new();
    for lane in lanes {
        for (after, result) in lane.await.expect("lane") {
            match result {
                Outcome::Complete(status) if status.is_server_error() => {
                    problems.push(format!("a {status} (after SIGTERM: {after})"));
                }
                Outcome::Complete(_) => {
                    complete += 1;
                    before += usize::from(!after);
                }
                Outcome::Broken(why) => problems.push(format!("a response broke off (after SIGTERM: {after}): {why}")),
                Outcome::NoAnswer(_) if after => refused_after += 1,
                Outcome::NoAnswer(why) => unanswered_before.push(why),
            }
        }
    }
    eprintln!(
        "{complete} whole responses ({before} sent before SIGTERM); {refused_after} refused after; \
         {} unanswered as the signal came {unanswered_before:?}; {finished_after_signal} of {burst} sign-ins \
         finished after the signal; exit in {took:?}",
        unanswered_before.len()
    );
    assert!(problems.is_empty(), "{problems:#?}\n{}", latch.log());
    assert!(finished_after_signal > 0, "no sign-in was still in flight at SIGTERM: the test proved nothing");
    assert!(before >= 20, "too little load before SIGTERM to prove anything: {before}");
    assert!(status.success(), "latch serve exited with {status}:\n{}", latch.log());
    assert!(took < Duration::from_secs(11), "shutdown took {took:?}, beyond the 10 s grace period");
    assert!(reqwest::get(format!("{base}/health/live")).await.is_err(), "still accepting after exit");
    assert!(latch.log().contains("latch stopped"), "{}", latch.log());
}

// ---------------------------------------------------------------------------
// (f) Backup and restore.
// ---------------------------------------------------------------------------

/// Signs ada in on `base` and exchanges a code as `rp`; returns the tokens.
async fn full_sign_in(base: &str, rp: &Rp) -> Value {
    let browser = browser();
    sign_in_with(&browser, base, "ada", PASSWORD, None).await.assert_signed_in("ada");
    let code = rp.code(&browser, base, "openid profile email").await;
    tokens(rp.exchange(base, &code).await).await
}

fn failed_with(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a failure, got success: {}", String::from_utf8_lossy(&output.stdout));
    for part in expected {
        assert!(stderr.contains(part), "expected {part:?} in: {stderr}");
    }
}

/// `latch backup` while the server runs; the data directory wiped;
/// `latch restore`; the same user signs in, the same client exchanges a
/// code, the JWKS has the same keys. Restore refuses a file that is not a
/// Latch backup, and an existing database without `--force`, leaving it intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_wipe_restore_and_everything_still_works() {
    let site = Site::sqlite().await;
    site.add_user("ada").await;
    let rp = site.add_app("grafana").await;
    let mut latch = site.start(&[]).await;
    let kids = jwks_kids(&latch.base, "grafana").await;
    full_sign_in(&latch.base, &rp).await;

    let outside = tempfile::tempdir().expect("temp dir");
    let backup = outside.path().join("latch-backup.db");
    let backup_arg = backup.display().to_string();
    // A sign-in writes while the backup is taken.
    let backup_args = ["backup", backup_arg.as_str()];
    let (made, _) = tokio::join!(site.latch(&backup_args), full_sign_in(&latch.base, &rp));
    assert!(made.status.success(), "backup failed: {}", String::from_utf8_lossy(&made.stderr));
    assert!(backup.is_file());
    latch.stop().await;

    std::fs::remove_dir_all(site.data_dir()).expect("wipe the data directory");
    let database = site.data_dir().join("latch.db");

    // Not Latch backups: a text file, and an SQLite database of something else.
    let text = outside.path().join("notes.txt");
    std::fs::write(&text, "not a database\n").expect("write");
    let foreign = outside.path().join("other.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", foreign.display())).await.expect("sqlite");
    sqlx::query("CREATE TABLE things (id INTEGER PRIMARY KEY)").execute(&pool).await.expect("create");
    pool.close().await;
    for file in [&text, &foreign] {
        let refused = site.latch(&["restore", &file.display().to_string()]).await;
        failed_with(&refused, &["not a Latch backup"]);
        assert!(!database.exists(), "a refused restore left {} behind", database.display());
    }

    let restored = site.latch(&["restore", &backup_arg]).await;
    assert!(restored.status.success(), "restore failed: {}", String::from_utf8_lossy(&restored.stderr));
    failed_with(&site.latch(&["restore", &backup_arg]).await, &["exists", "--force"]);
    failed_with(&site.latch(&["restore", "--force", &text.display().to_string()]).await, &["not a Latch backup"]);
    let forced = site.latch(&["restore", "--force", &backup_arg]).await;
    assert!(forced.status.success(), "restore --force failed: {}", String::from_utf8_lossy(&forced.stderr));

    let latch = site.start(&[]).await;
    let tokens = full_sign_in(&latch.base, &rp).await;
    assert_eq!(jwks_kids(&latch.base, "grafana").await, kids, "the signing keys must survive the round trip");
    let header = crate::common::jwt_part(string(&tokens, "id_token"), 0);
    assert!(kids.contains(header["kid"].as_str().unwrap_or_default()), "signed with a restored key: {header}");
}

// ---------------------------------------------------------------------------
// (g) The audit trail.
// ---------------------------------------------------------------------------

fn find<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|event| event["kind"] == kind).collect()
}

fn kinds(events: &[Value]) -> BTreeSet<String> {
    events.iter().filter_map(|event| event["kind"].as_str()).map(str::to_owned).collect()
}

/// A whole day of an identity provider shows up in `latch events`: who,
/// which app, from where; and `--user`, `--app` and `--since` filter it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_a_full_flow_and_filters_it() {
    let site = Site::sqlite().await;
    site.add_user("ada").await;
    let rp = site.add_app("grafana").await;
    let latch = site.start(&[]).await;

    let browser = browser();
    assert_eq!(
        sign_in_with(&browser, &latch.base, "ada", "wrong password", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    sign_in_with(&browser, &latch.base, "ada", PASSWORD, None).await.assert_signed_in("ada");
    let code = rp.code(&browser, &latch.base, "openid profile").await;
    tokens(rp.exchange(&latch.base, &code).await).await;
    assert_eq!(rp.exchange(&latch.base, &code).await.status(), StatusCode::BAD_REQUEST, "a replayed code");
    let end_session = latch.url("/application/o/grafana/end-session/");
    let page = browser.get(&end_session).send().await.expect("logout");
    let logout = confirm_sign_out(&browser, &end_session, page).await;
    assert!(logout.status().is_success() || logout.status().is_redirection(), "logout: {}", logout.status());
    site.admin(&["user", "disable", "ada"]).await;
    site.admin(&["user", "enable", "ada"]).await;
    site.admin(&["key", "rotate", "--grace", "1h"]).await;

    let wanted = ["login_failure", "login_success", "tokens_issued", "code_reuse", "logout"];
    let events = site.events_until(&[], |events| wanted.iter().all(|kind| !find(events, kind).is_empty())).await;
    let one = |kind: &str| -> &Value {
        let found = find(&events, kind);
        assert_eq!(found.len(), 1, "one {kind} event expected: {events:#?}");
        found[0]
    };
    for kind in ["login_failure", "login_success"] {
        let event = one(kind);
        assert_eq!(event["username"], "ada", "{event}");
        assert_eq!(event["ip"], "127.0.0.1", "{event}");
        assert_eq!(event["user_agent"], USER_AGENT, "{event}");
    }
    let issued = one("tokens_issued");
    assert_eq!((&issued["username"], &issued["app"]), (&Value::from("ada"), &Value::from("grafana")), "{issued}");
    assert!(issued["detail"].as_str().unwrap_or_default().contains("authorization_code"), "{issued}");
    let reuse = one("code_reuse");
    assert_eq!((&reuse["username"], &reuse["app"]), (&Value::from("ada"), &Value::from("grafana")), "{reuse}");
    assert_eq!(one("logout")["app"], "grafana");
    for kind in ["user_disabled", "user_enabled"] {
        assert_eq!(one(kind)["username"], "ada");
    }
    one("key_rotated");
    assert_eq!(one("app_created")["app"], "grafana");
    let times: Vec<i64> = events.iter().map(|event| event["at"].as_i64().expect("at")).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {times:?}");
    let text = serde_json::to_string(&events).expect("json");
    for secret in [PASSWORD, "wrong password", &code, &rp.client_secret] {
        assert!(!text.contains(secret), "the audit trail contains a secret: {secret}");
    }

    let adas = site.events(&["--user", "ada"]).await;
    assert!(adas.iter().all(|event| event["username"] == "ada"), "{adas:#?}");
    let expected: BTreeSet<String> =
        ["login_failure", "login_success", "tokens_issued", "code_reuse", "user_disabled", "user_enabled"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    assert!(kinds(&adas).is_superset(&expected), "--user ada: {:?}", kinds(&adas));
    let grafanas = site.events(&["--app", "grafana"]).await;
    assert!(grafanas.iter().all(|event| event["app"] == "grafana"), "{grafanas:#?}");
    let expected: BTreeSet<String> =
        ["app_created", "tokens_issued", "code_reuse", "logout"].into_iter().map(str::to_owned).collect();
    assert!(kinds(&grafanas).is_superset(&expected), "--app grafana: {:?}", kinds(&grafanas));
    assert!(site.events(&["--user", "nobody"]).await.is_empty());
    assert_eq!(site.events(&["--limit", "2"]).await.len(), 2, "--limit");

    // Later: an app comes and goes. All the above is made ten minutes old
    // (as the day goes on), so `--since 5m` shows only that.
    age_events(&site.database_url, 600).await;
    site.add_app("wiki").await;
    site.admin(&["app", "remove", "wiki"]).await;
    let since = "5m";
    let recent = site.events(&["--since", since]).await;
    assert!(kinds(&recent).contains("app_removed"), "--since {since}: {recent:#?}");
    assert!(recent.iter().all(|event| event["app"] == "wiki"), "--since {since} shows older events: {recent:#?}");
    let wiki = site.events(&["--app", "wiki"]).await;
    assert_eq!(kinds(&wiki), BTreeSet::from(["app_created".to_owned(), "app_removed".to_owned()]));
    assert!(site.events(&["--since", "1h"]).await.len() >= events.len() + 2, "--since 1h shows everything");
    failed_with(&site.latch(&["events", "--since", "soon"]).await, &["--since"]);
}

/// Moves every stored audit event `seconds` into the past: the history a
/// server that ran for a while has, without waiting for it.
async fn age_events(database_url: &str, seconds: i64) {
    let pool = sqlx::SqlitePool::connect(database_url).await.expect("open the database");
    sqlx::query("UPDATE audit_events SET at = at - $1").bind(seconds).execute(&pool).await.expect("age the events");
    pool.close().await;
}

/// `latch events --user ada` answers "what did ada do": her sign-out is
/// there, not only the app's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_event_names_the_user() {
    let site = Site::sqlite().await;
    site.add_user("ada").await;
    site.add_app("grafana").await;
    let latch = site.start(&[]).await;
    let browser = browser();
    sign_in_with(&browser, &latch.base, "ada", PASSWORD, None).await.assert_signed_in("ada");
    let end_session = latch.url("/application/o/grafana/end-session/");
    let page = browser.get(&end_session).send().await.expect("logout");
    let logout = confirm_sign_out(&browser, &end_session, page).await;
    assert!(logout.status().is_success(), "logout: {}", logout.status());
    let all = site.events_until(&[], |events| !find(events, "logout").is_empty()).await;
    let logout = find(&all, "logout");
    assert_eq!(logout.len(), 1, "{all:#?}");
    assert_eq!(logout[0]["username"], "ada", "{}", logout[0]);
    assert!(kinds(&site.events(&["--user", "ada"]).await).contains("logout"), "--user ada misses the logout");
}

// ---------------------------------------------------------------------------
// (h) Logs carry no secrets.
// ---------------------------------------------------------------------------

/// Runs every step that handles a secret against a `latch serve` with
/// `LATCH_LOG_FORMAT=<format>` (and `RUST_LOG` when given), stops it, and
/// returns its whole output, the secrets it handled, and the request ids
/// it returned.
async fn secret_handling_flow(format: &str, rust_log: Option<&str>) -> (String, Vec<String>, Vec<String>) {
    let site = Site::sqlite().await;
    site.add_user("ada").await;
    let rp = site.add_app("grafana").await;
    let mut env = vec![("LATCH_LOG_FORMAT", format)];
    env.extend(rust_log.map(|level| ("RUST_LOG", level)));
    let mut latch = site.start(&env).await;
    let base = latch.base.clone();
    let mut request_ids = Vec::new();
    let mut keep_id = |response: &reqwest::Response| {
        let id = response.headers().get("x-request-id").and_then(|value| value.to_str().ok());
        request_ids.push(id.unwrap_or_else(|| panic!("no X-Request-Id on {}", response.url())).to_owned());
    };

    let browser = browser();
    assert_eq!(sign_in_with(&browser, &base, "ada", "hunter2 wrong", None).await.status, StatusCode::UNAUTHORIZED);
    sign_in_with(&browser, &base, "ada", PASSWORD, None).await.assert_signed_in("ada");
    let session = browser.get(format!("{base}/")).send().await.map(|response| response.status()).expect("home");
    assert_eq!(session, StatusCode::OK);
    let code = rp.code(&browser, &base, "openid profile email offline_access").await;
    let http = reqwest::Client::new();
    let exchange = http
        .post(format!("{base}/application/o/token/"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("client_id", &rp.client_id),
            ("client_secret", &rp.client_secret),
        ])
        .send()
        .await
        .expect("token");
    keep_id(&exchange);
    let first = tokens(exchange).await;
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", string(&first, "refresh_token"))];
    let refresh = rp.token(&base, &refresh_form).await;
    keep_id(&refresh);
    let second = tokens(refresh).await;
    let userinfo = http
        .get(format!("{base}/application/o/userinfo/"))
        .bearer_auth(string(&second, "access_token"))
        .header("x-request-id", "ops-test-request-1")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo.status(), StatusCode::OK);
    assert_eq!(userinfo.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("ops-test-request-1"));
    keep_id(&userinfo);
    let introspect = http
        .post(format!("{base}/application/o/introspect/"))
        .basic_auth(&rp.client_id, Some(&rp.client_secret))
        .form(&[("token", string(&second, "access_token"))])
        .send()
        .await
        .expect("introspect");
    assert_eq!(introspect.status(), StatusCode::OK);
    keep_id(&introspect);
    let revoke = http
        .post(format!("{base}/application/o/revoke/"))
        .form(&[
            ("token", string(&second, "refresh_token")),
            ("client_id", &rp.client_id),
            ("client_secret", &rp.client_secret),
        ])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), StatusCode::OK);
    keep_id(&revoke);
    let logout_url = url::Url::parse_with_params(
        &format!("{base}/application/o/grafana/end-session/"),
        [("id_token_hint", string(&second, "id_token"))],
    )
    .expect("url");
    let logout = browser.get(logout_url).send().await.expect("logout");
    assert!(logout.status().is_success() || logout.status().is_redirection(), "logout: {}", logout.status());
    keep_id(&logout);
    latch.stop().await;

    let secrets = vec![
        PASSWORD.to_owned(),
        "hunter2 wrong".to_owned(),
        code,
        rp.client_secret.clone(),
        string(&first, "access_token").to_owned(),
        string(&first, "refresh_token").to_owned(),
        string(&first, "id_token").to_owned(),
        string(&second, "access_token").to_owned(),
        string(&second, "refresh_token").to_owned(),
    ];
    (latch.log(), secrets, request_ids)
}

fn assert_no_secret(log: &str, secrets: &[String], words: &[&str]) {
    for secret in secrets {
        let shown: String = secret.chars().take(12).collect();
        assert!(!log.contains(secret.as_str()), "the log contains a secret ({shown}…):\n{log}");
    }
    for word in words {
        assert!(!log.contains(word), "the log contains {word:?}:\n{log}");
    }
}

/// Every line is JSON; every request line has method, path (no query),
/// status, latency and request id; the ids match `X-Request-Id`; nothing
/// secret appears, not even the names of secret parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_and_no_secrets() {
    let (log, secrets, request_ids) = secret_handling_flow("json", None).await;
    assert_no_secret(&log, &secrets, &["code=", "access_token", "refresh_token", "client_secret", "password="]);
    let mut logged_ids = BTreeSet::new();
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        if entry["target"] != "latch::request" {
            continue;
        }
        let path = entry["path"].as_str().unwrap_or_else(|| panic!("no path: {line}"));
        assert!(path.starts_with('/') && !path.contains('?'), "path with a query: {line}");
        assert!(entry["method"].is_string(), "no method: {line}");
        assert!(entry["status"].as_u64().is_some_and(|status| (100..600).contains(&status)), "no status: {line}");
        assert!(entry["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "no latency_ms: {line}");
        logged_ids.insert(entry["request_id"].as_str().unwrap_or_else(|| panic!("no request_id: {line}")).to_owned());
    }
    assert!(logged_ids.len() >= 12, "one line per request expected, found {} request ids:\n{log}", logged_ids.len());
    for id in &request_ids {
        assert!(logged_ids.contains(id), "X-Request-Id {id} is in no log line");
    }
}

/// Even at `RUST_LOG=debug` (where library logs show SQL text, so the
/// parameter names may appear as column names) no secret value appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_have_no_secret_values() {
    let (log, secrets, _) = secret_handling_flow("json", Some("debug")).await;
    assert!(log.lines().count() > 20, "debug logging should say more:\n{log}");
    assert_no_secret(&log, &secrets, &["code="]);
}

/// The default, human-readable format at the default level: no secret
/// values and no secret parameter names either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_have_no_secrets() {
    let (log, secrets, request_ids) = secret_handling_flow("text", None).await;
    assert_no_secret(&log, &secrets, &["code=", "access_token", "refresh_token", "client_secret", "password="]);
    for id in &request_ids {
        assert!(log.contains(id.as_str()), "X-Request-Id {id} is in no log line");
    }
}
