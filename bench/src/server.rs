//! The server under test: a fresh data directory (or a fresh PostgreSQL
//! database), `latch` admin commands to provision it, and `latch serve`
//! processes started, timed, watched and stopped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

/// Where the benchmark talks to Latch and where Latch keeps its data.
pub struct Environment {
    pub base: String,
    pub addr: SocketAddr,
    /// Where a managed server serves LDAP (base `ldap::BASE_DN`).
    pub ldap_addr: Option<SocketAddr>,
    /// What `latch` is given as `LATCH_DATABASE_URL`.
    pub database_url: String,
    pub dir: PathBuf,
    /// `(admin URL, database)` of a PostgreSQL database this run created.
    created_database: Option<(String, String)>,
    keep: bool,
}

impl Environment {
    /// A fresh environment: a temporary directory, a free port, and the
    /// database: SQLite in the directory, or a new database on the
    /// PostgreSQL server of `postgres_admin_url`.
    pub async fn fresh(postgres_admin_url: Option<&str>, keep: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("latch-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let addr = free_port()?;
        let (database_url, created_database) = match postgres_admin_url {
            None => (format!("sqlite://{}", dir.join("latch.db").display()), None),
            Some(admin_url) => {
                let name = format!("latch_bench_{}", uuid::Uuid::new_v4().simple());
                let mut connection = sqlx::PgConnection::connect(admin_url)
                    .await
                    .with_context(|| format!("connect to PostgreSQL at {admin_url}"))?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut connection).await?;
                connection.close().await?;
                let mut url = url::Url::parse(admin_url)?;
                url.set_path(&name);
                (url.to_string(), Some((admin_url.to_owned(), name)))
            }
        };
        let ldap_addr = Some(free_port()?);
        Ok(Self { base: format!("http://{addr}"), addr, ldap_addr, database_url, dir, created_database, keep })
    }

    /// An existing server at `url` whose database is `database_url`.
    pub fn existing(url: &str, database_url: &str) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(url)?;
        let addr = parsed.socket_addrs(|| Some(80))?.into_iter().next().context("the --url host does not resolve")?;
        let dir = std::env::temp_dir().join(format!("latch-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            addr,
            ldap_addr: None,
            database_url: database_url.to_owned(),
            dir,
            created_database: None,
            keep: false,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// Runs `latch <args>` against this environment's database.
    pub async fn admin(&self, bin: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut child = Command::new(bin)
            .args(args)
            .env("LATCH_DATABASE_URL", &self.database_url)
            .env("LATCH_PUBLIC_URL", &self.base)
            .env("LATCH_DATA_DIR", &self.dir)
            .env("LATCH_LDAP_BASE_DN", crate::ldap::BASE_DN)
            .env_remove("LATCH_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("run {}", bin.display()))?;
        let mut input = child.stdin.take().context("stdin")?;
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await?;
        }
        drop(input);
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!("latch {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `latch serve`; its log goes to `<dir>/<log_name>`.
    /// `database_url` overrides the environment's (to go through a counter).
    pub fn spawn(
        &self,
        bin: &Path,
        log_name: &str,
        database_url: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let log = std::fs::File::create(self.dir.join(log_name))?;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .env("LATCH_LISTEN", self.addr.to_string())
            .env("LATCH_PUBLIC_URL", &self.base)
            .env("LATCH_DATABASE_URL", database_url.unwrap_or(&self.database_url))
            .env("LATCH_DATA_DIR", &self.dir)
            .env_remove("LATCH_CONFIG")
            .env_remove("RUST_LOG")
            // The load generator is the trusted proxy: each simulated person
            // comes from an address of their own (X-Forwarded-For), as behind
            // a real reverse proxy, so per-address sign-in limits apply per person.
            .env("LATCH_TRUSTED_PROXIES", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(ldap) = self.ldap_addr {
            command.env("LATCH_LDAP_LISTEN", ldap.to_string()).env("LATCH_LDAP_BASE_DN", crate::ldap::BASE_DN);
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let started = Instant::now();
        let child = command.spawn().with_context(|| format!("start {} serve", bin.display()))?;
        let pid = child.id().context("the server has no pid")?;
        Ok(Server { child, pid, started, addr: self.addr, log: self.dir.join(log_name) })
    }

    /// Removes what this run created, unless asked to keep it.
    pub async fn cleanup(self) {
        if self.keep {
            eprintln!("kept {} (database {})", self.dir.display(), self.database_url);
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((admin_url, name)) = &self.created_database
            && let Ok(mut connection) = sqlx::PgConnection::connect(admin_url).await
        {
            // Only the database this run created.
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut connection).await;
            let _ = connection.close().await;
        }
    }
}

/// A free port on the loopback interface (bound, then released for Latch).
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

pub struct Server {
    child: Child,
    pub pid: u32,
    started: Instant,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Waits for the first `200` from `/health/ready` (which asks the
    /// database) and returns the time since the process was started.
    /// Polls every 0.2 ms with plain blocking sockets, for precision.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let (addr, started) = (self.addr, self.started);
        let poll = tokio::task::spawn_blocking(move || {
            while started.elapsed() < timeout {
                if ready_once(addr) {
                    return Some(started.elapsed());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            None
        });
        match poll.await? {
            Some(elapsed) => Ok(elapsed),
            None => {
                let exited = self.child.try_wait()?.map(|status| format!(" (it exited: {status})")).unwrap_or_default();
                bail!("latch did not become ready within {timeout:?}{exited}; its log: {}", self.log_tail())
            }
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(15).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// SIGTERM (graceful: in-flight requests finish, the pool closes), then
    /// SIGKILL if it takes longer than 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            self.child.kill().await?;
        }
        Ok(())
    }

    pub fn memory(&self) -> Option<Memory> {
        Memory::of(self.pid)
    }
}

fn ready_once(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /health/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Resident memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident now.
    pub rss_kb: u64,
    /// Peak resident since start or since the last `reset_peak`.
    pub hwm_kb: u64,
}

impl Memory {
    pub fn of(pid: u32) -> Option<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        };
        Some(Self { rss_kb: field("VmRSS:")?, hwm_kb: field("VmHWM:")? })
    }

    /// Resets VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`).
    /// Returns false where the kernel does not allow it.
    pub fn reset_peak(pid: u32) -> bool {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
    }
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; USER_HZ is 100.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// CPU time of the whole machine (all cores) in seconds: (busy, total).
pub fn machine_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).filter_map(|field| field.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some(((total - idle) as f64 / 100.0, total as f64 / 100.0))
}

/// What `provision` created: users, the OIDC app and the proxy app.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// One user per concurrent client: Latch bounds concurrent sign-in
    /// attempts per username, as it should, so a rush of logins needs many
    /// people, as in real life.
    pub users: Vec<String>,
    pub password: String,
    pub slug: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub proxy_origin: String,
    /// The LDAP search account: bind DN and password.
    pub ldap_account: (String, String),
}

impl Fixture {
    pub fn user(&self, index: usize) -> &str {
        &self.users[index % self.users.len()]
    }
}

/// Creates `users` users, a confidential OIDC app (RS256, implicit consent)
/// and a forward-auth app through the admin commands, as an operator would.
pub async fn provision(env: &Environment, bin: &Path, suffix: &str, users: usize) -> anyhow::Result<Fixture> {
    let password = "bench-password-correct-horse-battery".to_owned();
    let names: Vec<String> = (0..users.max(1)).map(|index| format!("bench{suffix}-{index}")).collect();
    // The first alone (it creates the schema: concurrent first migrations
    // of one SQLite file collide), then a few at a time (each hashes a password).
    add_user(env, bin, &names[0], &password).await?;
    for chunk in names[1..].chunks(4) {
        let commands = chunk.iter().map(|username| add_user(env, bin, username, &password)).collect();
        for result in futures_join_all(commands).await {
            result?;
        }
    }
    let slug = format!("bench{suffix}");
    let redirect_uri = "http://rp.bench.example/oauth2/callback".to_owned();
    let created = env
        .admin(bin, &["app", "add", &slug, "--name", "Bench RP", "--redirect-uri", &redirect_uri, "--json"], None)
        .await?;
    let credentials: serde_json::Value = serde_json::from_str(&created).context("app add --json")?;
    let text =
        |key: &str| credentials[key].as_str().map(str::to_owned).with_context(|| format!("app add printed no {key}"));
    let proxy_slug = format!("benchproxy{suffix}");
    let proxy_origin = format!("http://app{suffix}.bench.example");
    let args = ["app", "add", &proxy_slug, "--name", "Bench proxied app", "--proxy", "--external-url", &proxy_origin];
    env.admin(bin, &args, None).await?;
    let account = env.admin(bin, &["ldap", "account", "add", &format!("bench{suffix}"), "--json"], None).await?;
    let account: serde_json::Value = serde_json::from_str(&account).context("ldap account add --json")?;
    let field = |key: &str| account[key].as_str().map(str::to_owned).with_context(|| format!("no {key}"));
    let ldap_account = (field("dn")?, field("password")?);
    Ok(Fixture {
        ldap_account,
        users: names,
        password,
        slug,
        client_id: text("client_id")?,
        client_secret: text("client_secret")?,
        redirect_uri,
        proxy_origin,
    })
}

async fn add_user(env: &Environment, bin: &Path, username: &str, password: &str) -> anyhow::Result<()> {
    let email = format!("{username}@bench.example");
    let args = ["user", "add", username, "--email", &email, "--name", "Bench User", "--password-stdin"];
    env.admin(bin, &args, Some(password)).await.map(drop)
}

/// Awaits every future, concurrently.
async fn futures_join_all<T>(futures: Vec<impl std::future::Future<Output = T>>) -> Vec<T> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results = Vec::with_capacity(pinned.len());
    // Few futures: polling them in turn is enough.
    let mut done: Vec<Option<T>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, slot) in pinned.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *slot = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    results.extend(done.into_iter().flatten());
    results
}
