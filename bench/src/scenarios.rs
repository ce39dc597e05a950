//! The measured scenarios, each a closed loop: `concurrency` workers,
//! each with its own kept-alive connection (and, where it matters, its own
//! signed-in browser), repeat one operation for a fixed time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use hyper::StatusCode;
use hyper::header::{AUTHORIZATION, COOKIE, HeaderName};

use crate::http::{Client, Reply, query_param};
use crate::ldap::LdapClient;
use crate::server::Fixture;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// authorize → code → token (RS256) → userinfo, with a session.
    Sso,
    /// Refresh token grant with rotation.
    Refresh,
    /// `/outpost.goauthentik.io/auth/nginx` with a signed-in cookie.
    ForwardAuth,
    /// Discovery document and JWKS GETs, alternating.
    Discovery,
    /// The sign-in form (argon2id).
    Login,
    /// Forward auth as above while `SLOW_CLIENTS` connections trickle
    /// request headers a byte at a time: what holding them costs.
    SlowClients,
    /// An LDAP simple bind as a person (argon2id), each worker on its
    /// own kept-open connection, as a mail server or NAS binds.
    LdapBind,
    /// An LDAP search for one person by `uid`, as a search account.
    LdapSearch,
}

impl Scenario {
    pub fn title(self) -> &'static str {
        match self {
            Self::Sso => "sso flow",
            Self::Refresh => "refresh (rotation)",
            Self::ForwardAuth => "forward auth (nginx)",
            Self::Discovery => "discovery + jwks",
            Self::Login => "login (argon2id)",
            Self::SlowClients => "forward auth + slow",
            Self::LdapBind => "ldap bind (argon2id)",
            Self::LdapSearch => "ldap search",
        }
    }

    pub fn steps(self) -> &'static [&'static str] {
        match self {
            Self::Sso => &["authorize", "token", "userinfo"],
            Self::Refresh => &["token"],
            Self::ForwardAuth => &["check"],
            Self::Discovery => &["discovery", "jwks"],
            Self::Login => &["POST /login"],
            Self::SlowClients => &["check"],
            Self::LdapBind => &["bind"],
            Self::LdapSearch => &["search"],
        }
    }
}

/// What every worker needs to know about the server.
pub struct Ctx {
    pub addr: SocketAddr,
    pub fixture: Fixture,
    basic: String,
    forward_url: String,
    ldap_addr: Option<SocketAddr>,
}

impl Ctx {
    pub fn new(addr: SocketAddr, fixture: Fixture) -> Self {
        let encode = |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let credentials = format!("{}:{}", encode(&fixture.client_id), encode(&fixture.client_secret));
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
        let forward_url = format!("{}/dashboard/?tab=1", fixture.proxy_origin);
        Self { addr, fixture, basic, forward_url, ldap_addr: None }
    }

    /// Where the server serves LDAP, for the LDAP scenarios.
    pub fn with_ldap(self, ldap_addr: Option<SocketAddr>) -> Self {
        Self { ldap_addr, ..self }
    }

    async fn ldap(&self) -> anyhow::Result<LdapClient> {
        let addr = self.ldap_addr.context("the LDAP scenarios need a server latch-bench starts (no --url)")?;
        LdapClient::connect(addr).await
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }
}

// ---------------------------------------------------------------- protocol

/// A person at a browser: who they are, where they come from, and the
/// login form's CSRF cookie and token.
pub struct LoginForm {
    csrf_cookie: String,
    csrf_token: String,
    username: String,
    /// The client address the load generator (a trusted proxy) reports.
    address: String,
}

/// Person `index`'s address, in the benchmarking range 198.18.0.0/15.
fn address(index: usize) -> String {
    format!("198.18.{}.{}", (index / 250) % 250, index % 250 + 1)
}

pub async fn login_form(client: &mut Client, ctx: &Ctx, index: usize) -> anyhow::Result<LoginForm> {
    let page = client.get("/login", &[]).await?;
    page.expect(StatusCode::OK, "GET /login")?;
    let cookie = page.cookie("latch_csrf").context("GET /login set no latch_csrf cookie")?.to_owned();
    let field = hidden_input(page.text(), "csrf_token").context("no csrf_token field in the login form")?;
    Ok(LoginForm {
        csrf_cookie: cookie,
        csrf_token: field,
        username: ctx.fixture.user(index).to_owned(),
        address: address(index),
    })
}

/// Posts the login form; returns the new session cookie's value.
pub async fn login(client: &mut Client, ctx: &Ctx, form: &LoginForm) -> anyhow::Result<String> {
    let cookie = format!("latch_csrf={}", form.csrf_cookie);
    let reply = client
        .post_form(
            "/login",
            &[(COOKIE, &cookie), (HeaderName::from_static("x-forwarded-for"), &form.address)],
            &[
                ("csrf_token", &form.csrf_token),
                ("username", &form.username),
                ("password", &ctx.fixture.password),
                ("next", "/"),
            ],
        )
        .await?;
    reply.expect(StatusCode::SEE_OTHER, "POST /login")?;
    let session = reply.cookie("latch_session").filter(|value| !value.is_empty());
    Ok(session.context("POST /login set no latch_session cookie")?.to_owned())
}

/// Signs person `index` in; returns the session cookie's value.
pub async fn sign_in(client: &mut Client, ctx: &Ctx, index: usize) -> anyhow::Result<String> {
    let form = login_form(client, ctx, index).await?;
    login(client, ctx, &form).await
}

/// GET authorize with the session cookie; returns the code.
pub async fn authorize(
    client: &mut Client,
    ctx: &Ctx,
    session: &str,
    scope: &str,
    state: &str,
) -> anyhow::Result<String> {
    let fixture = &ctx.fixture;
    let query = crate::http::form_encode(&[
        ("response_type", "code"),
        ("client_id", &fixture.client_id),
        ("redirect_uri", &fixture.redirect_uri),
        ("scope", scope),
        ("state", state),
        ("nonce", state),
    ]);
    let cookie = format!("latch_session={session}");
    let reply = client.get(&format!("/application/o/authorize/?{query}"), &[(COOKIE, &cookie)]).await?;
    reply.expect(StatusCode::SEE_OTHER, "authorize")?;
    let location = reply.location().context("authorize: no Location")?;
    if !location.starts_with(&fixture.redirect_uri) {
        bail!("authorize redirected to {location}, not to the app");
    }
    if query_param(location, "state").as_deref() != Some(state) {
        bail!("authorize: state not returned in {location}");
    }
    query_param(location, "code").with_context(|| format!("authorize: no code in {location}"))
}

#[derive(serde::Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

fn tokens(reply: &Reply, what: &str) -> anyhow::Result<Tokens> {
    reply.expect(StatusCode::OK, what)?;
    let tokens: Tokens =
        serde_json::from_slice(&reply.body).with_context(|| format!("{what}: not a token response"))?;
    if tokens.id_token.is_none() {
        bail!("{what}: no id_token");
    }
    Ok(tokens)
}

pub async fn exchange(client: &mut Client, ctx: &Ctx, code: &str) -> anyhow::Result<Tokens> {
    let form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &ctx.fixture.redirect_uri)];
    let reply = client.post_form("/application/o/token/", &[(AUTHORIZATION, &ctx.basic)], &form).await?;
    tokens(&reply, "token (authorization_code)")
}

pub async fn userinfo(client: &mut Client, access_token: &str) -> anyhow::Result<()> {
    let bearer = format!("Bearer {access_token}");
    let reply = client.get("/application/o/userinfo/", &[(AUTHORIZATION, &bearer)]).await?;
    reply.expect(StatusCode::OK, "userinfo")?;
    if !reply.text().contains("\"sub\"") {
        bail!("userinfo: no sub claim");
    }
    Ok(())
}

pub async fn refresh(client: &mut Client, ctx: &Ctx, refresh_token: &str) -> anyhow::Result<String> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let reply = client.post_form("/application/o/token/", &[(AUTHORIZATION, &ctx.basic)], &form).await?;
    let tokens = tokens(&reply, "token (refresh_token)")?;
    tokens.refresh_token.filter(|next| next != refresh_token).context("refresh: the token was not rotated")
}

/// A refresh token from a full sign-in flow asking for offline access.
async fn refresh_chain(client: &mut Client, ctx: &Ctx, session: &str, n: u64) -> anyhow::Result<String> {
    let code = authorize(client, ctx, session, "openid profile email offline_access", &format!("r{n}")).await?;
    exchange(client, ctx, &code).await?.refresh_token.context("no refresh token for offline_access")
}

/// start → sso (with the Latch session) → callback: the forward-auth
/// cookie (`name=value`) a browser holds for the proxied app.
pub async fn proxy_cookie(client: &mut Client, ctx: &Ctx, session: &str) -> anyhow::Result<String> {
    let origin = &ctx.fixture.proxy_origin;
    let rd = crate::http::form_encode(&[("rd", &format!("{origin}/"))]);
    let start = client.get(&format!("/outpost.goauthentik.io/start?{rd}"), &[]).await?;
    if !start.status.is_redirection() {
        bail!("start: {} {}", start.status, start.text());
    }
    // One state cookie per sign-in: `[__Host-]latch_proxy_state_<time>_<id>`.
    let state = start
        .set_cookies()
        .find(|(name, _)| name.trim_start_matches("__Host-").starts_with("latch_proxy_state_"))
        .map(|(name, value)| format!("{name}={value}"))
        .context("start set no state cookie")?;
    let sso = start.location().context("start: no Location")?;
    let sso_path = sso.find("/outpost.goauthentik.io/sso").map(|at| &sso[at..]).context("start: not to sso")?;
    let cookie = format!("latch_session={session}");
    let reply = client.get(sso_path, &[(COOKIE, &cookie)]).await?;
    if !reply.status.is_redirection() {
        bail!("sso: {} {}", reply.status, reply.text());
    }
    let callback = reply.location().context("sso: no Location")?;
    let callback_path = callback.strip_prefix(origin.as_str()).context("sso: callback not on the app's origin")?;
    let reply = client.get(callback_path, &[(COOKIE, &state)]).await?;
    if !reply.status.is_redirection() {
        bail!("callback: {} {}", reply.status, reply.text());
    }
    let (name, value) = reply
        .set_cookies()
        .find(|(name, value)| {
            let name = name.trim_start_matches("__Host-");
            name.starts_with("latch_proxy_") && !name.starts_with("latch_proxy_state_") && !value.is_empty()
        })
        .context("callback set no forward-auth cookie")?;
    Ok(format!("{name}={value}"))
}

pub async fn forward_check(client: &mut Client, ctx: &Ctx, cookie: &str) -> anyhow::Result<()> {
    let reply = client
        .get(
            "/outpost.goauthentik.io/auth/nginx",
            &[(COOKIE, cookie), (HeaderName::from_static("x-original-url"), &ctx.forward_url)],
        )
        .await?;
    reply.expect(StatusCode::OK, "forward auth")?;
    if reply.headers.get("x-authentik-username").is_none() {
        bail!("forward auth: no X-authentik-username");
    }
    Ok(())
}

pub async fn discovery(client: &mut Client, ctx: &Ctx) -> anyhow::Result<()> {
    let path = format!("/application/o/{}/.well-known/openid-configuration", ctx.fixture.slug);
    let reply = client.get(&path, &[]).await?;
    reply.expect(StatusCode::OK, "discovery")?;
    if !reply.text().contains("\"jwks_uri\"") {
        bail!("discovery: no jwks_uri");
    }
    Ok(())
}

pub async fn jwks(client: &mut Client, ctx: &Ctx) -> anyhow::Result<()> {
    let reply = client.get(&format!("/application/o/{}/jwks/", ctx.fixture.slug), &[]).await?;
    reply.expect(StatusCode::OK, "jwks")?;
    if !reply.text().contains("\"keys\"") {
        bail!("jwks: no keys");
    }
    Ok(())
}

/// The value of `<input type="hidden" name="…" value="…">`.
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

// ----------------------------------------------------------------- workers

/// One simulated client and what it holds between iterations.
enum Worker {
    Sso { session: String },
    Refresh { session: String, token: Option<String> },
    ForwardAuth { cookie: String },
    Discovery,
    Login { form: LoginForm },
    LdapBind { ldap: LdapClient, dn: String },
    LdapSearch { ldap: LdapClient, uid: String },
}

/// Whether an iteration was a measured operation or set-up work.
enum Done {
    Measured,
    Setup,
}

impl Worker {
    async fn iterate(
        &mut self,
        client: &mut Client,
        ctx: &Ctx,
        n: u64,
        times: &mut [Duration],
    ) -> anyhow::Result<Done> {
        let mut clock = Instant::now();
        let mut lap = |times: &mut [Duration], index: usize| {
            let now = Instant::now();
            times[index] = now - clock;
            clock = now;
        };
        match self {
            Self::Sso { session } => {
                let code = authorize(client, ctx, session, "openid profile email", &format!("s{n}")).await?;
                lap(times, 0);
                let tokens = exchange(client, ctx, &code).await?;
                lap(times, 1);
                userinfo(client, &tokens.access_token).await?;
                lap(times, 2);
            }
            Self::Refresh { session, token } => {
                let Some(current) = token.take() else {
                    *token = Some(refresh_chain(client, ctx, session, n).await?);
                    return Ok(Done::Setup);
                };
                *token = Some(refresh(client, ctx, &current).await?);
                lap(times, 0);
            }
            Self::ForwardAuth { cookie } => {
                forward_check(client, ctx, cookie).await?;
                lap(times, 0);
            }
            Self::Discovery => {
                if n.is_multiple_of(2) {
                    discovery(client, ctx).await?;
                    lap(times, 0);
                } else {
                    jwks(client, ctx).await?;
                    lap(times, 1);
                }
            }
            Self::Login { form } => {
                login(client, ctx, form).await?;
                lap(times, 0);
            }
            Self::LdapBind { ldap, dn } => {
                ldap.bind(dn, &ctx.fixture.password).await?;
                lap(times, 0);
            }
            Self::LdapSearch { ldap, uid } => {
                let found = ldap.find_person(uid).await?;
                if found != 1 {
                    bail!("the search for {uid} found {found} entries");
                }
                lap(times, 0);
            }
        }
        Ok(Done::Measured)
    }
}

/// Prepares `count` workers for `scenario`: sign-ins, forward-auth cookies,
/// refresh chains; at most 8 at a time (sign-ins are argon2-bound anyway).
pub async fn prepare(
    ctx: &Arc<Ctx>,
    scenario: Scenario,
    sessions: &[String],
    count: usize,
) -> anyhow::Result<Prepared> {
    let mut prepared = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(8) {
        let mut tasks = Vec::new();
        for &index in chunk {
            let ctx = ctx.clone();
            let session = if sessions.is_empty() { String::new() } else { sessions[index % sessions.len()].clone() };
            tasks.push(tokio::spawn(async move {
                let mut client = ctx.client();
                let worker = match scenario {
                    Scenario::Sso => Worker::Sso { session },
                    Scenario::Refresh => {
                        let token = refresh_chain(&mut client, &ctx, &session, index as u64).await?;
                        Worker::Refresh { session, token: Some(token) }
                    }
                    Scenario::ForwardAuth | Scenario::SlowClients => {
                        Worker::ForwardAuth { cookie: proxy_cookie(&mut client, &ctx, &session).await? }
                    }
                    Scenario::Discovery => Worker::Discovery,
                    Scenario::Login => Worker::Login { form: login_form(&mut client, &ctx, index).await? },
                    Scenario::LdapBind => {
                        let dn = format!("uid={},ou=people,{}", ctx.fixture.user(index), crate::ldap::BASE_DN);
                        Worker::LdapBind { ldap: ctx.ldap().await?, dn }
                    }
                    Scenario::LdapSearch => {
                        let mut ldap = ctx.ldap().await?;
                        let (dn, password) = &ctx.fixture.ldap_account;
                        ldap.bind(dn, password).await?;
                        Worker::LdapSearch { ldap, uid: ctx.fixture.user(index).to_owned() }
                    }
                };
                anyhow::Ok((worker, client))
            }));
        }
        for task in tasks {
            prepared.push(task.await??);
        }
    }
    let slow_clients = (scenario == Scenario::SlowClients).then(|| tokio::spawn(slow_clients(ctx.addr)));
    Ok(Prepared { scenario, workers: prepared, slow_clients })
}

/// Workers ready to run, each with its connection open.
pub struct Prepared {
    scenario: Scenario,
    workers: Vec<(Worker, Client)>,
    /// The slow connections' task, stopped when the measurement ends.
    slow_clients: Option<tokio::task::JoinHandle<()>>,
}

/// Connections the slow-clients scenario holds open.
const SLOW_CLIENTS: usize = 256;

/// Keeps `SLOW_CLIENTS` connections to `addr` sending a request header a
/// byte every 200 ms, each opening again when the server closes it, until
/// the task is aborted.
async fn slow_clients(addr: SocketAddr) {
    let mut set = tokio::task::JoinSet::new();
    for index in 0..SLOW_CLIENTS {
        set.spawn(async move {
            loop {
                trickle(addr, index).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

/// One connection trickling a never-ending header; returns when it fails.
async fn trickle(addr: SocketAddr, index: usize) {
    use tokio::io::AsyncWriteExt;
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return };
    let start = format!("GET /health/live HTTP/1.1\r\nHost: bench\r\nX-Slow-{index}: ");
    if stream.write_all(start.as_bytes()).await.is_err() {
        return;
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"a").await.is_err() {
            return;
        }
    }
}

/// `count` signed-in browsers (one login each, person `i` for browser `i`), 8 logins at a time.
pub async fn sessions(ctx: &Arc<Ctx>, count: usize) -> anyhow::Result<Vec<String>> {
    let mut sessions = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(8) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&index| {
                let ctx = ctx.clone();
                tokio::spawn(async move { sign_in(&mut ctx.client(), &ctx, index).await })
            })
            .collect();
        for task in tasks {
            sessions.push(task.await??);
        }
    }
    Ok(sessions)
}

/// What one scenario measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Measured {
    /// Operations (whole flows for SSO) per second.
    pub rate: f64,
    pub operations: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Per step: p50, p95, p99 in milliseconds.
    pub steps: Vec<StepLatency>,
    /// p50/p95/p99 of the whole operation (differs from the step for multi-step flows).
    pub total: StepLatency,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StepLatency {
    pub name: String,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl StepLatency {
    fn of(name: &str, mut micros: Vec<u32>) -> Self {
        micros.sort_unstable();
        let at = |quantile: f64| {
            if micros.is_empty() {
                return 0.0;
            }
            let index = ((micros.len() as f64 - 1.0) * quantile).round() as usize;
            f64::from(micros[index]) / 1000.0
        };
        Self { name: name.to_owned(), p50_ms: at(0.50), p95_ms: at(0.95), p99_ms: at(0.99) }
    }
}

#[derive(Default)]
struct WorkerStats {
    operations: u64,
    errors: u64,
    first_errors: Vec<String>,
    steps: Vec<Vec<u32>>,
    total: Vec<u32>,
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

async fn run_worker(
    ctx: Arc<Ctx>,
    mut worker: Worker,
    mut client: Client,
    steps: usize,
    measure_from: Instant,
    end: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats { steps: vec![Vec::new(); steps], ..Default::default() };
    let mut times = vec![Duration::ZERO; steps];
    let mut n: u64 = 0;
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        times.iter_mut().for_each(|time| *time = Duration::ZERO);
        let outcome = worker.iterate(&mut client, &ctx, n, &mut times).await;
        n += 1;
        let finished = Instant::now();
        match outcome {
            // Throughput counts the operations completed inside the window.
            Ok(Done::Measured) if finished >= measure_from && finished <= end => {
                stats.operations += 1;
                for (index, time) in times.iter().enumerate() {
                    if !time.is_zero() {
                        stats.steps[index].push(micros(*time));
                    }
                }
                stats.total.push(micros(finished - started));
            }
            Ok(_) => {}
            Err(error) => {
                stats.errors += 1;
                if stats.first_errors.len() < 3 {
                    stats.first_errors.push(format!("{error:#}"));
                }
            }
        }
    }
    stats
}

/// Runs the prepared workers: `warmup`, then `duration` measured.
pub async fn measure(
    ctx: &Arc<Ctx>,
    prepared: Prepared,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let Prepared { scenario, workers, slow_clients } = prepared;
    let steps = scenario.steps();
    let measure_from = Instant::now() + warmup;
    let end = measure_from + duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|(worker, client)| tokio::spawn(run_worker(ctx.clone(), worker, client, steps.len(), measure_from, end)))
        .collect();
    let mut all = WorkerStats { steps: vec![Vec::new(); steps.len()], ..Default::default() };
    for task in tasks {
        let stats = task.await?;
        all.operations += stats.operations;
        all.errors += stats.errors;
        for error in stats.first_errors {
            if all.first_errors.len() < 5 {
                all.first_errors.push(error);
            }
        }
        for (index, mut times) in stats.steps.into_iter().enumerate() {
            all.steps[index].append(&mut times);
        }
        all.total.extend(stats.total);
    }
    if let Some(slow_clients) = slow_clients {
        slow_clients.abort();
    }
    let seconds = duration.as_secs_f64();
    Ok(Measured {
        rate: all.operations as f64 / seconds,
        operations: all.operations,
        errors: all.errors,
        first_errors: all.first_errors,
        steps: steps.iter().zip(all.steps).map(|(name, times)| StepLatency::of(name, times)).collect(),
        total: StepLatency::of("total", all.total),
        seconds,
    })
}

/// Keeps the timing helpers honest: nothing here depends on the server.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_samples() {
        let latency = StepLatency::of("x", (1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(latency.p50_ms, 51.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(StepLatency::of("empty", vec![]).p50_ms, 0.0);
    }

    #[test]
    fn hidden_inputs_are_found() {
        let html = r#"<input type="hidden" name="csrf_token" value="abc">"#;
        assert_eq!(hidden_input(html, "csrf_token").as_deref(), Some("abc"));
    }
}
