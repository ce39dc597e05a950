//! The results: one run's figures, the medians over runs, and the table.

use std::fmt::Write as _;

use crate::bounds::Bounds;
use crate::roundtrips::RoundTrips;
use crate::scenarios::{Measured, Scenario};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ScenarioReport {
    pub scenario: Scenario,
    pub measured: Measured,
    /// Peak resident memory of the server during the scenario (KiB):
    /// VmHWM after resetting it at the start, or the highest sampled VmRSS.
    pub peak_rss_kb: Option<u64>,
    /// CPU the server used, in cores (1.0 = one core busy all the time).
    pub server_cpu: Option<f64>,
    /// CPU the load generator used, in cores.
    pub client_cpu: Option<f64>,
    /// CPU other processes of the machine used meanwhile, in cores: noise.
    pub other_cpu: Option<f64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub bounds: Bounds,
    /// From `exec` to the first 200 of `/health/ready`, on an existing database.
    pub start_ms: Option<f64>,
    /// VmRSS one second after start, before any request but the readiness check.
    pub idle_rss_kb: Option<u64>,
    /// VmHWM at that moment: the peak while starting.
    pub start_peak_kb: Option<u64>,
    pub scenarios: Vec<ScenarioReport>,
    pub round_trips: Option<RoundTrips>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory: String,
}

impl Machine {
    pub fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name")
                    .and_then(|rest| rest.split_once(':'))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kb = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            cores: std::thread::available_parallelism().map(usize::from).unwrap_or(1),
            cpu,
            memory: format!("{:.1} GiB", memory_kb / 1024.0 / 1024.0),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub date: String,
    pub machine: Machine,
    pub backend: String,
    pub command: String,
    pub concurrency: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub runs: Vec<RunReport>,
}

/// The median of the values present (the mean of the middle two for an even count).
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().filter(|value| value.is_finite()).collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 })
}

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

impl Report {
    pub fn total_errors(&self) -> u64 {
        self.runs.iter().flat_map(|run| &run.scenarios).map(|scenario| scenario.measured.errors).sum()
    }

    fn scenario_runs(&self, scenario: Scenario) -> Vec<&ScenarioReport> {
        self.runs.iter().filter_map(|run| run.scenarios.iter().find(|report| report.scenario == scenario)).collect()
    }

    fn med_bounds(&self, field: impl Fn(&Bounds) -> f64) -> f64 {
        median(self.runs.iter().map(|run| field(&run.bounds))).unwrap_or(0.0)
    }

    /// Median rate of a scenario, if it ran.
    pub fn rate(&self, scenario: Scenario) -> Option<f64> {
        median(self.scenario_runs(scenario).iter().map(|report| report.measured.rate))
    }

    pub fn peak_mb(&self, scenario: Scenario) -> Option<f64> {
        median(self.scenario_runs(scenario).iter().filter_map(|report| report.peak_rss_kb).map(|kb| mb(kb as f64)))
    }

    pub fn idle_mb(&self) -> Option<f64> {
        median(self.runs.iter().filter_map(|run| run.idle_rss_kb).map(|kb| mb(kb as f64)))
    }

    pub fn start_ms(&self) -> Option<f64> {
        median(self.runs.iter().filter_map(|run| run.start_ms))
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let runs = self.runs.len();
        let _ = writeln!(
            out,
            "Latch benchmark · {} · {} cores ({}) · {} · concurrency {} · {:.0} s per scenario after {:.1} s warm-up · {}",
            self.backend,
            self.machine.cores,
            self.machine.cpu,
            self.machine.memory,
            self.concurrency,
            self.duration_s,
            self.warmup_s,
            if runs == 1 { "1 run".to_owned() } else { format!("median of {runs} runs") },
        );
        let _ = writeln!(out, "{}  ·  {}", self.date, self.command);
        let _ = writeln!(out, "CPU columns in cores: the server, the load generator, and other processes (noise).");
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>7} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8}",
            "scenario", "rate/s", "errors", "p50 ms", "p95 ms", "p99 ms", "peak RSS", "srv CPU", "gen CPU", "other"
        );
        for &scenario in <Scenario as clap::ValueEnum>::value_variants() {
            let reports = self.scenario_runs(scenario);
            if reports.is_empty() {
                continue;
            }
            let med = |field: &dyn Fn(&ScenarioReport) -> Option<f64>| median(reports.iter().filter_map(|r| field(r)));
            let errors: u64 = reports.iter().map(|report| report.measured.errors).sum();
            let fmt = |value: Option<f64>, precision: usize, unit: &str| {
                value.map_or_else(|| "–".to_owned(), |value| format!("{value:.precision$}{unit}"))
            };
            let _ = writeln!(
                out,
                "{:<24} {:>10} {:>7} {:>8} {:>8} {:>8} {:>10} {:>8} {:>8} {:>8}",
                scenario.title(),
                fmt(med(&|r| Some(r.measured.rate)), 0, ""),
                errors,
                fmt(med(&|r| Some(r.measured.total.p50_ms)), 2, ""),
                fmt(med(&|r| Some(r.measured.total.p95_ms)), 2, ""),
                fmt(med(&|r| Some(r.measured.total.p99_ms)), 2, ""),
                fmt(med(&|r| r.peak_rss_kb.map(|kb| mb(kb as f64))), 1, " MB"),
                fmt(med(&|r| r.server_cpu), 2, ""),
                fmt(med(&|r| r.client_cpu), 2, ""),
                fmt(med(&|r| r.other_cpu), 2, ""),
            );
            if scenario.steps().len() > 1 {
                for (index, step) in scenario.steps().iter().enumerate() {
                    let step_med = |pick: fn(&crate::scenarios::StepLatency) -> f64| {
                        median(reports.iter().filter_map(|r| r.measured.steps.get(index)).map(pick))
                    };
                    let _ = writeln!(
                        out,
                        "{:<24} {:>10} {:>7} {:>8} {:>8} {:>8}",
                        format!("  {step}"),
                        "",
                        "",
                        fmt(step_med(|s| s.p50_ms), 2, ""),
                        fmt(step_med(|s| s.p95_ms), 2, ""),
                        fmt(step_med(|s| s.p99_ms), 2, ""),
                    );
                }
            }
        }
        let cores = self.machine.cores as f64;
        let rs256 = self.med_bounds(|bounds| bounds.rs256_per_core);
        let rs256_all = self.med_bounds(|bounds| bounds.rs256_all_cores);
        let sso_ceiling = rs256_all / Bounds::SIGNATURES_PER_FLOW;
        let argon2_ms = self.med_bounds(|bounds| bounds.argon2_ms);
        let sso_bound = cores * rs256 / Bounds::SIGNATURES_PER_FLOW;
        let login_bound = cores / (argon2_ms / 1000.0);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "crypto bound   RS256 (aws-lc-rs, RSA-2048 PKCS#1 v1.5 SHA-256): {rs256:.0} signatures/s on one core \
             → {cores:.0} cores × {rs256:.0} ÷ 2 signatures per flow = {sso_bound:.0} SSO flows/s"
        );
        let _ = writeln!(
            out,
            "               all {cores:.0} cores signing at once: {rs256_all:.0} signatures/s ({:.2}× one core) \
             → {sso_ceiling:.0} SSO flows/s",
            rs256_all / rs256
        );
        if let Some(rate) = self.rate(Scenario::Sso) {
            let _ = writeln!(
                out,
                "               SSO flow: {rate:.0}/s = {:.0}% of cores × one core, {:.0}% of all cores signing at once",
                100.0 * rate / sso_bound,
                100.0 * rate / sso_ceiling
            );
        }
        let _ = writeln!(
            out,
            "argon2 bound   argon2id m=19456 KiB t=2 p=1: {argon2_ms:.1} ms per hash → {cores:.0} cores ÷ {argon2_ms:.1} ms = {login_bound:.0} logins/s"
        );
        if let Some(rate) = self.rate(Scenario::Login) {
            let _ = writeln!(
                out,
                "               login: {rate:.0}/s = {:.0}% of the argon2 bound",
                100.0 * rate / login_bound
            );
        }
        if let Some(idle) = self.idle_mb() {
            let start_peak = median(self.runs.iter().filter_map(|run| run.start_peak_kb).map(|kb| mb(kb as f64)));
            let _ = writeln!(
                out,
                "memory         idle RSS {idle:.1} MB (1 s after start; peak while starting {:.1} MB)",
                start_peak.unwrap_or(0.0)
            );
        }
        if let Some(start) = self.start_ms() {
            let _ = writeln!(
                out,
                "start          {start:.1} ms from exec to the first 200 of /health/ready (existing database)"
            );
        }
        if let Some(trips) = self.runs.iter().rev().find_map(|run| run.round_trips.as_ref()) {
            let wire = trips.wire().map(|wire| format!(", {wire} wire round trips")).unwrap_or_default();
            let _ = writeln!(
                out,
                "store per SSO flow: {} statements ({} writes){wire}; audit writer +{:.1} statements/flow in background batches",
                trips.statements(),
                trips.writes(),
                trips.audit_statements_per_flow
            );
            for step in &trips.steps {
                let wire = step.wire.map(|wire| format!(", {wire} wire round trips")).unwrap_or_default();
                let _ =
                    writeln!(out, "  {:<10} {} statements ({} writes){wire}", step.name, step.statements, step.writes);
                for statement in &step.listing {
                    let _ = writeln!(out, "               {statement}");
                }
                if !step.wire_listing.is_empty() {
                    let _ = writeln!(out, "             wire: {}", step.wire_listing.join(" | "));
                }
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "targets (issue 7)");
        let mut target = |met: Option<bool>, text: String| {
            let mark = match met {
                Some(true) => "met   ",
                Some(false) => "MISSED",
                None => "n/a   ",
            };
            let _ = writeln!(out, "  [{mark}] {text}");
        };
        if let Some(rate) = self.rate(Scenario::Sso) {
            // The ceiling is what the cores sign together; the product of
            // cores and one core's rate overstates it where they do not scale.
            let share = rate / sso_ceiling.min(sso_bound);
            target(
                Some(share >= 0.5),
                format!(
                    "SSO flow ≥ 50% of the crypto bound: {:.0}% of all cores signing at once ({:.0}% of cores × one core)",
                    share * 100.0,
                    100.0 * rate / sso_bound
                ),
            );
        }
        if let Some(rate) = self.rate(Scenario::ForwardAuth) {
            target(Some(rate >= 10_000.0), format!("forward auth ≥ 10,000/s: {rate:.0}/s"));
        }
        if let Some(rate) = self.rate(Scenario::Discovery) {
            target(Some(rate >= 20_000.0), format!("discovery/JWKS ≥ 20,000/s: {rate:.0}/s"));
        }
        if let Some(rate) = self.rate(Scenario::Login) {
            let share = rate / login_bound;
            target(Some(share >= 0.8), format!("login ≥ 80% of cores ÷ hash time: {:.0}%", share * 100.0));
        }
        if let Some(idle) = self.idle_mb() {
            target(Some(idle <= 20.0), format!("idle RSS ≤ 20 MB: {idle:.1} MB"));
        }
        if let Some(peak) = self.peak_mb(Scenario::Sso) {
            let note =
                if self.concurrency == 64 { String::new() } else { format!(" (at concurrency {})", self.concurrency) };
            target(Some(peak <= 64.0), format!("peak RSS under 64 concurrent SSO flows ≤ 64 MB: {peak:.1} MB{note}"));
        }
        if let Some(start) = self.start_ms() {
            target(Some(start <= 150.0), format!("start to first answer ≤ 150 ms: {start:.1} ms"));
        }
        for (scenario, errors) in self
            .runs
            .iter()
            .flat_map(|run| &run.scenarios)
            .filter(|r| r.measured.errors > 0)
            .map(|r| (r.scenario, &r.measured.first_errors))
        {
            let _ = writeln!(out, "errors in {}: {}", scenario.title(), errors.join(" | "));
        }
        out
    }
}
