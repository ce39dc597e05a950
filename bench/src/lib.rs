//! `latch-bench`: Latch's load generator. It starts a Latch server itself
//! (or targets `--url`), provisions a user and apps through the admin
//! commands, and measures each hot path for a fixed time at a chosen
//! concurrency, beside what the hardware allows: RS256 signatures per
//! second per core (the ceiling of the SSO flow) and argon2id time per hash
//! (the ceiling of logins). See BENCHMARKS.md for the method and results.

mod bounds;
mod http;
mod ldap;
mod report;
mod roundtrips;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

pub use report::{Report, RunReport, ScenarioReport};
pub use scenarios::Scenario;

use server::{Environment, Memory, cpu_seconds, machine_cpu_seconds};

const DEFAULT_LATCH_BIN: &str = "target/release/latch";

#[derive(Debug, Clone, Parser)]
#[command(name = "latch-bench", version, about = "Measure Latch's hot paths against the hardware's bounds")]
pub struct Options {
    /// The `latch` binary to run [default: target/release/latch, built first with cargo].
    #[arg(long)]
    pub latch_bin: Option<PathBuf>,
    /// Do not run `cargo build --release --workspace` before using the default binary.
    #[arg(long)]
    pub no_build: bool,
    /// Measure a server already running at this URL (its database must be
    /// --database-url, for the admin commands); no memory or start figures.
    #[arg(long, requires = "database_url")]
    pub url: Option<String>,
    /// With --url: the PID of that server, to report its memory.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
    /// Without --url: a PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/postgres)
    /// on which each run creates, and afterwards drops, a fresh database.
    /// With --url: the server's own database. Default: SQLite in a fresh directory.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Measured time per scenario, e.g. 10s [default: 10s; 1s with --quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Unmeasured time before each measurement [default: 1s; 0.2s with --quick].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<Duration>,
    /// Concurrent clients (browsers or apps) per scenario [default: 64; 4 with --quick].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Independent runs (fresh server and database each); the table shows medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Scenarios to run, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sso,refresh,forward-auth,discovery,login,slow-clients"
    )]
    pub scenarios: Vec<Scenario>,
    /// A smoke run: 1 s per scenario at concurrency 4, short bound measurements.
    #[arg(long)]
    pub quick: bool,
    /// Also write every figure of every run as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Worker threads of the load generator's runtime (the server gets the rest).
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Sequential SSO flows over which store round trips are counted (0: skip).
    #[arg(long)]
    pub round_trip_flows: Option<usize>,
    /// Keep the temporary directory (logs, SQLite file) and database.
    #[arg(long)]
    pub keep: bool,
    /// Extra environment for the measured server, e.g. RUST_LOG=warn to
    /// see what the request log costs (repeatable).
    #[arg(long = "server-env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub server_env: Vec<(String, String)>,
}

fn parse_env(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{raw:?} is not NAME=VALUE"))
}

/// The options with defaults resolved.
struct Settings {
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    bound_time: Duration,
    round_trip_flows: usize,
}

impl Settings {
    fn of(options: &Options) -> Self {
        let quick = options.quick;
        Self {
            duration: options.duration.unwrap_or(Duration::from_secs(if quick { 1 } else { 10 })),
            warmup: options.warmup.unwrap_or(if quick { Duration::from_millis(200) } else { Duration::from_secs(1) }),
            concurrency: options.concurrency.unwrap_or(if quick { 4 } else { 64 }).max(1),
            bound_time: if quick { Duration::from_millis(200) } else { Duration::from_secs(2) },
            round_trip_flows: options.round_trip_flows.unwrap_or(if quick { 5 } else { 20 }),
        }
    }
}

pub async fn run(options: Options) -> anyhow::Result<Report> {
    let settings = Settings::of(&options);
    let bin = latch_binary(&options).await?;
    let backend = match options.database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => "PostgreSQL",
        Some(_) | None => "SQLite",
    };
    let mut runs = Vec::new();
    for index in 0..options.runs.max(1) {
        eprintln!("latch-bench: run {} of {} ({backend})", index + 1, options.runs.max(1));
        runs.push(run_once(&options, &settings, &bin).await?);
    }
    Ok(Report {
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        machine: report::Machine::this(),
        backend: backend.to_owned(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        concurrency: settings.concurrency,
        duration_s: settings.duration.as_secs_f64(),
        warmup_s: settings.warmup.as_secs_f64(),
        runs,
    })
}

/// The given binary, or `target/release/latch`, built first unless `--no-build`.
async fn latch_binary(options: &Options) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &options.latch_bin {
        if !bin.is_file() {
            bail!("--latch-bin {} does not exist", bin.display());
        }
        return Ok(bin.clone());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let bin = target_dir.join("release/latch");
    if !options.no_build {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // The whole workspace, as BENCHMARKS.md builds it (one feature set).
        eprintln!("latch-bench: cargo build --release --workspace");
        let status = tokio::process::Command::new(cargo)
            .args(["build", "--release", "--workspace"])
            .status()
            .await
            .context("run cargo build")?;
        if !status.success() {
            bail!("cargo build --release --workspace failed");
        }
    }
    if !bin.is_file() {
        bail!("{} does not exist (default {DEFAULT_LATCH_BIN}); build it or pass --latch-bin", bin.display());
    }
    Ok(bin)
}

async fn run_once(options: &Options, settings: &Settings, bin: &std::path::Path) -> anyhow::Result<RunReport> {
    let env = match (&options.url, &options.database_url) {
        (Some(url), Some(database_url)) => Environment::existing(url, database_url)?,
        (Some(_), None) => bail!("--url needs --database-url (the server's database, for the admin commands)"),
        (None, database_url) => Environment::fresh(database_url.as_deref(), options.keep).await?,
    };
    let result = run_in(&env, options, settings, bin).await;
    env.cleanup().await;
    result
}

async fn measure_bounds(settings: &Settings) -> anyhow::Result<bounds::Bounds> {
    let time = settings.bound_time;
    tokio::task::spawn_blocking(move || bounds::measure(time)).await?
}

async fn run_in(
    env: &Environment,
    options: &Options,
    settings: &Settings,
    bin: &std::path::Path,
) -> anyhow::Result<RunReport> {
    // The bounds are measured before and after the scenarios and averaged:
    // on a shared machine the speed of a core drifts by a fifth from minute
    // to minute, and the ratio must compare figures of the same minutes.
    let before = measure_bounds(settings).await?;
    let managed = options.url.is_none();
    let suffix = if managed { String::new() } else { uuid::Uuid::new_v4().simple().to_string()[..8].to_owned() };
    let fixture = server::provision(env, bin, &suffix, settings.concurrency).await?;
    let (server, start_ms, idle) = if managed {
        // The first start creates the signing key; the timed one finds everything in place.
        let mut first = env.spawn(bin, "first-start.log", None, &[])?;
        first.wait_ready(Duration::from_secs(60)).await?;
        first.stop().await?;
        let extra: Vec<(&str, &str)> =
            options.server_env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let mut server = env.spawn(bin, "server.log", None, &extra)?;
        let start = server.wait_ready(Duration::from_secs(60)).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = server.memory();
        (Some(server), Some(start.as_secs_f64() * 1000.0), idle)
    } else {
        (None, None, None)
    };
    let pid = server.as_ref().map(|server| server.pid).or(options.pid);
    let ctx = Arc::new(scenarios::Ctx::new(env.addr, fixture.clone()).with_ldap(env.ldap_addr));
    let outcome = measure_all(&ctx, options, settings, pid).await;
    if let Some(server) = server {
        if outcome.is_err() {
            eprintln!("latch-bench: the server's log ends with:\n{}", server.log_tail());
        }
        server.stop().await?;
    }
    let scenarios = outcome?;
    let round_trips = if managed && settings.round_trip_flows > 0 && options.scenarios.contains(&Scenario::Sso) {
        Some(roundtrips::count(env, bin, &fixture, settings.round_trip_flows).await?)
    } else {
        None
    };
    let after = measure_bounds(settings).await?;
    Ok(RunReport {
        bounds: before.averaged_with(&after),
        start_ms,
        idle_rss_kb: idle.map(|memory| memory.rss_kb),
        start_peak_kb: idle.map(|memory| memory.hwm_kb),
        scenarios,
        round_trips,
    })
}

async fn measure_all(
    ctx: &Arc<scenarios::Ctx>,
    options: &Options,
    settings: &Settings,
    pid: Option<u32>,
) -> anyhow::Result<Vec<ScenarioReport>> {
    let needs_session = options.scenarios.iter().any(|scenario| {
        matches!(scenario, Scenario::Sso | Scenario::Refresh | Scenario::ForwardAuth | Scenario::SlowClients)
    });
    // One signed-in browser per worker.
    let sessions = if needs_session {
        scenarios::sessions(ctx, settings.concurrency).await.context("sign in")?
    } else {
        Vec::new()
    };
    let mut reports = Vec::new();
    for &scenario in &options.scenarios {
        let prepared = scenarios::prepare(ctx, scenario, &sessions, settings.concurrency)
            .await
            .with_context(|| format!("prepare {}", scenario.title()))?;
        let monitor = Monitor::start(pid);
        let measured = scenarios::measure(ctx, prepared, settings.warmup, settings.duration).await?;
        let Usage { peak_rss_kb, server_cpu, client_cpu, other_cpu } = monitor.finish().await;
        eprintln!(
            "latch-bench: {:<22} {:>9.0}/s  errors {}  peak RSS {}  other load {} cores",
            scenario.title(),
            measured.rate,
            measured.errors,
            peak_rss_kb.map_or_else(|| "–".to_owned(), |kb| format!("{:.1} MB", kb as f64 / 1024.0)),
            other_cpu.map_or_else(|| "–".to_owned(), |cores| format!("{cores:.2}")),
        );
        reports.push(ScenarioReport { scenario, measured, peak_rss_kb, server_cpu, client_cpu, other_cpu });
    }
    Ok(reports)
}

/// Watches the server during one scenario: peak resident memory (VmHWM
/// reset at the start where the kernel allows, and VmRSS sampled every
/// 20 ms) and CPU time, and the load generator's own CPU time.
struct Monitor {
    pid: Option<u32>,
    reset: bool,
    started: Instant,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    machine_cpu: Option<(f64, f64)>,
    stop: Arc<AtomicBool>,
    sampler: Option<tokio::task::JoinHandle<u64>>,
}

impl Monitor {
    fn start(pid: Option<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let reset = pid.is_some_and(Memory::reset_peak);
        let sampler = pid.map(|pid| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(Memory::of(pid).map_or(0, |memory| memory.rss_kb));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                peak
            })
        });
        Self {
            pid,
            reset,
            started: Instant::now(),
            server_cpu: pid.and_then(|pid| cpu_seconds(Some(pid))),
            client_cpu: cpu_seconds(None),
            machine_cpu: machine_cpu_seconds(),
            stop,
            sampler,
        }
    }

    async fn finish(self) -> Usage {
        let elapsed = self.started.elapsed().as_secs_f64();
        let per_second = |before: Option<f64>, after: Option<f64>| Some((after? - before?) / elapsed);
        let server_cpu = per_second(self.server_cpu, self.pid.and_then(|pid| cpu_seconds(Some(pid))));
        let client_cpu = per_second(self.client_cpu, cpu_seconds(None));
        // Busy cores of the whole machine, minus ours: other work that ran
        // meanwhile (a run with much of it is not a clean measurement).
        let machine = machine_cpu_seconds().zip(self.machine_cpu).map(|((busy, total), (busy0, total0))| {
            let cores = std::thread::available_parallelism().map_or(1.0, |cores| usize::from(cores) as f64);
            (busy - busy0) / ((total - total0) / cores).max(1e-9)
        });
        let other_cpu = machine.map(|busy| (busy - server_cpu.unwrap_or(0.0) - client_cpu.unwrap_or(0.0)).max(0.0));
        self.stop.store(true, Ordering::Relaxed);
        let sampled = match self.sampler {
            Some(sampler) => sampler.await.ok(),
            None => None,
        };
        let hwm = if self.reset { self.pid.and_then(Memory::of).map(|memory| memory.hwm_kb) } else { None };
        let peak = match (sampled, hwm) {
            (Some(sampled), Some(hwm)) => Some(sampled.max(hwm)),
            (sampled, hwm) => sampled.or(hwm),
        };
        Usage { peak_rss_kb: peak, server_cpu, client_cpu, other_cpu }
    }
}

struct Usage {
    peak_rss_kb: Option<u64>,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    other_cpu: Option<f64>,
}
