//! Slow clients (issue 11): connections that send slowly, or nothing, cannot
//! hold `latch serve`. Real processes on loopback, short configured
//! timeouts, bounded numbers of sockets that all close when a test ends.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::common::{
    Backend, PASSWORD, drop_postgres_database, hidden_input, poll_until, prepared_database, run_latch,
};
use crate::on_every_backend;

/// A `latch serve` process on a loopback port; killed when dropped.
struct Serve {
    addr: SocketAddr,
    base: String,
    database_url: String,
    backend: Backend,
    child: Child,
    log_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `latch serve` with `env` and, when given, this soft limit on
    /// open files (the hard limit stays the test's); waits until it answers.
    async fn start(backend: Backend, env: &[(&str, &str)], open_files: Option<u64>) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = prepared_database(backend, dir.path()).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let base = format!("http://{addr}");
        let log_path = dir.path().join("latch.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_latch"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("LATCH_") {
                command.env_remove(key);
            }
        }
        command
            .arg("serve")
            .env("LATCH_LISTEN", addr.to_string())
            .env("LATCH_PUBLIC_URL", &base)
            .env("LATCH_DATABASE_URL", &database_url)
            .env("LATCH_DATA_DIR", dir.path())
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .kill_on_drop(true);
        if let Some(soft) = open_files {
            use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
            let hard = getrlimit(Resource::Nofile).maximum;
            // SAFETY: setrlimit is a plain system call, safe between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::Nofile, Rlimit { current: Some(soft), maximum: hard }).map_err(Into::into)
                });
            }
        }
        let child = command.spawn().expect("start latch serve");
        let mut serve = Self { addr, base, database_url, backend, child, log_path, _dir: dir };
        serve.wait_live().await;
        Some(serve)
    }

    async fn wait_live(&mut self) {
        let live = poll_until(Duration::from_secs(60), async || {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("latch serve exited during start ({status}):\n{}", self.log());
            }
            // A connection of its own each time: a pooled one would count
            // against the connection cap of the tests that set one.
            let status = tokio::time::timeout(Duration::from_secs(2), raw_status(self.addr, "/health/live")).await;
            matches!(status, Ok(Ok(200))).then_some(())
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

    async fn admin(&self, args: &[&str], stdin: Option<&str>) {
        let output = run_latch(&self.database_url, &self.base, args, stdin).await;
        assert!(output.status.success(), "latch {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.backend == Backend::Postgres {
            drop_postgres_database(&self.database_url);
        }
    }
}

/// GET `path` on a connection of its own, closed afterwards; the status.
async fn raw_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: latch\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let head = String::from_utf8_lossy(&answer);
    head.split(' ').nth(1).and_then(|status| status.parse().ok()).ok_or_else(|| std::io::Error::other("no status"))
}

/// A client that keeps no connection for later.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Signs ada in (the form, then the post): the time it took and the status.
async fn sign_in(serve: &Serve) -> (Duration, StatusCode) {
    let started = Instant::now();
    let client = fresh_client();
    let page = client.get(serve.url("/login")).send().await.expect("the login page answers");
    let html = page.text().await.expect("login page");
    let csrf = hidden_input(&html, "csrf_token").expect("csrf_token");
    let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("username", "ada"), ("password", PASSWORD)];
    let response = client.post(serve.url("/login")).form(&form).send().await.expect("the sign-in answers");
    (started.elapsed(), response.status())
}

/// An nginx forward-auth check of a browser without a session.
async fn forward_auth_check(serve: &Serve) -> (Duration, StatusCode) {
    let started = Instant::now();
    let response = fresh_client()
        .get(serve.url("/outpost.goauthentik.io/auth/nginx"))
        .header("X-Original-URL", "https://kuma.example.com/dashboard")
        .send()
        .await
        .expect("the forward-auth check answers");
    (started.elapsed(), response.status())
}

/// Opens a connection that has begun a request header.
async fn begin_header(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"GET /login HTTP/1.1\r\nHost: latch\r\nX-Slow: ").await.expect("write");
    stream
}

/// Writes one more header byte to each open connection; returns how many
/// the server has closed.
async fn trickle(streams: &mut [TcpStream]) -> usize {
    let mut closed = 0;
    for stream in streams {
        if stream.write_all(b"a").await.is_err() {
            closed += 1;
        }
    }
    closed
}

/// How long the server takes to close `stream`, trickling a header byte
/// every 100 ms meanwhile when `trickling` (at most 10 s).
async fn time_to_close(stream: &mut TcpStream, trickling: bool) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    while started.elapsed() < Duration::from_secs(10) {
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) if trickling => {
                if stream.write_all(b"a").await.is_err() {
                    return started.elapsed();
                }
            }
            Err(_) => {}
        }
    }
    started.elapsed()
}

const SLOW_SOCKETS: usize = 300;

/// 300 connections trickling headers against a server started with a soft
/// limit of 256 open files: sign-ins and forward-auth checks still answer
/// at once, because the server raised its limit and serves them all.
async fn slow_sockets_leave_sign_in_and_forward_auth_answering(backend: Backend) {
    let Some(serve) = Serve::start(backend, &[], Some(256)).await else { return };
    serve.admin(&["user", "add", "ada", "--email", "ada@example.com", "--password-stdin"], Some(PASSWORD)).await;
    let kuma = ["app", "add", "kuma", "--name", "Kuma", "--proxy", "--external-url", "https://kuma.example.com"];
    serve.admin(&kuma, None).await;

    let mut slow = Vec::with_capacity(SLOW_SOCKETS);
    for _ in 0..SLOW_SOCKETS {
        slow.push(begin_header(serve.addr).await);
    }
    // Each slow connection has been sending for a while, as a real one would.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(trickle(&mut slow).await, 0, "the slow connections are held (header timeout 10 s)");
    }
    let (took, status) = sign_in(&serve).await;
    eprintln!("sign-in beside {SLOW_SOCKETS} slow connections: {status} in {took:?}");
    assert_eq!(status, StatusCode::SEE_OTHER, "{}", serve.log());
    assert!(took < Duration::from_secs(3), "the sign-in took {took:?}");
    let (took, status) = forward_auth_check(&serve).await;
    eprintln!("forward-auth check beside {SLOW_SOCKETS} slow connections: {status} in {took:?}");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", serve.log());
    assert!(took < Duration::from_secs(1), "the forward-auth check took {took:?}");
    assert_eq!(trickle(&mut slow).await, 0, "the slow connections were all still open");
    assert!(!serve.log().contains("cannot accept"), "the server ran out of descriptors:\n{}", serve.log());
}

/// A header trickled a byte at a time is cut off at the header timeout,
/// counted from its first byte.
async fn a_trickled_header_is_cut_off_near_its_timeout(backend: Backend) {
    let Some(serve) = Serve::start(backend, &[("LATCH_HEADER_READ_TIMEOUT", "1s")], None).await else { return };
    let mut stream = begin_header(serve.addr).await;
    let took = time_to_close(&mut stream, true).await;
    eprintln!("a trickled header was cut off after {took:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(2), "cut off after {took:?}");
}

/// A connection that sends nothing, at first or after a request, is closed
/// at the idle timeout, even though the header timeout is longer.
async fn idle_connections_are_closed_at_the_idle_timeout(backend: Backend) {
    let env = [("LATCH_IDLE_TIMEOUT", "1s"), ("LATCH_HEADER_READ_TIMEOUT", "30s")];
    let Some(serve) = Serve::start(backend, &env, None).await else { return };
    let mut silent = TcpStream::connect(serve.addr).await.expect("connect");
    let took = time_to_close(&mut silent, false).await;
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(2), "silent: closed after {took:?}");

    let mut kept_alive = TcpStream::connect(serve.addr).await.expect("connect");
    kept_alive.write_all(b"GET /health/live HTTP/1.1\r\nHost: latch\r\n\r\n").await.expect("write");
    let mut answer = [0u8; 512];
    let read = kept_alive.read(&mut answer).await.expect("answer");
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
    let took = time_to_close(&mut kept_alive, false).await;
    eprintln!("idle connections closed after {took:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(2), "kept alive: closed after {took:?}");
}

/// A body trickled after its header gets 408 at the body timeout, in the
/// endpoint's format.
async fn a_trickled_body_gets_408_near_its_timeout(backend: Backend) {
    let Some(serve) = Serve::start(backend, &[("LATCH_BODY_READ_TIMEOUT", "1s")], None).await else { return };
    for (path, content_type) in [("/application/o/token/", "application/json"), ("/login", "text/html")] {
        let mut stream = TcpStream::connect(serve.addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: latch\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\n\r\ngrant_type="
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") && started.elapsed() < Duration::from_secs(5) {
            match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(read)) => answer.extend_from_slice(&buffer[..read]),
                Err(_) => {
                    let _ = stream.write_all(b"a").await;
                }
            }
        }
        let took = started.elapsed();
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        eprintln!("POST {path} with a trickled body: answered after {took:?}");
        assert!(answer.starts_with("http/1.1 408"), "POST {path}: {answer}");
        assert!(answer.contains(&format!("content-type: {content_type}")), "POST {path}: {answer}");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(2), "POST {path}: {took:?}");
    }
}

/// Beyond `max_connections`, a client waits to be accepted until a
/// connection ends (here the idle ones, at the idle timeout), then is served.
async fn connections_beyond_the_cap_wait_for_a_free_one(backend: Backend) {
    let env = [("LATCH_MAX_CONNECTIONS", "4"), ("LATCH_IDLE_TIMEOUT", "2s")];
    let Some(serve) = Serve::start(backend, &env, None).await else { return };
    // Let the start-up probe's connection end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(serve.addr).await.expect("connect"));
    }
    let started = Instant::now();
    let status = raw_status(serve.addr, "/health/live").await.expect("served in the end");
    let took = started.elapsed();
    eprintln!("a connection beyond the cap was served after {took:?}");
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(4), "served after {took:?}");
}

on_every_backend!(
    slow_sockets_leave_sign_in_and_forward_auth_answering,
    a_trickled_header_is_cut_off_near_its_timeout,
    idle_connections_are_closed_at_the_idle_timeout,
    a_trickled_body_gets_408_near_its_timeout,
    connections_beyond_the_cap_wait_for_a_free_one,
);
