//! The load generator runs end to end against this build: a fresh server,
//! every scenario for a second, the round-trip count. Only correctness is
//! asserted (zero errors), never a rate: the suite is not a benchmark.

use clap::Parser;

fn quick_options(extra: &[&str]) -> latch_bench::Options {
    let mut args = vec!["latch-bench", "--quick", "--latch-bin", env!("CARGO_BIN_EXE_latch")];
    args.extend_from_slice(extra);
    latch_bench::Options::parse_from(args)
}

fn assert_clean(report: &latch_bench::Report) {
    let table = report.table();
    assert_eq!(report.total_errors(), 0, "the quick benchmark had errors:\n{table}");
    let run = &report.runs[0];
    assert_eq!(run.scenarios.len(), 6, "every scenario ran:\n{table}");
    assert!(
        run.scenarios.iter().all(|scenario| scenario.measured.operations > 0),
        "each scenario completed operations:\n{table}"
    );
    let trips = run.round_trips.as_ref().expect("round trips counted");
    assert!(trips.statements() > 0, "statements per flow were counted:\n{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_benchmark_on_sqlite_has_no_errors() {
    let report = latch_bench::run(quick_options(&[])).await.expect("the benchmark runs");
    assert_clean(&report);
    assert!(report.runs[0].idle_rss_kb.is_some() && report.runs[0].start_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_benchmark_on_postgres_has_no_errors() {
    let url = std::env::var("LATCH_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if std::env::var_os("CI").is_none()
        && std::net::TcpStream::connect("127.0.0.1:5432").is_err()
        && url.contains("127.0.0.1:5432")
    {
        eprintln!("SKIPPED (PostgreSQL): nothing listens on 127.0.0.1:5432");
        return;
    }
    let report = latch_bench::run(quick_options(&["--database-url", &url])).await.expect("the benchmark runs");
    assert_clean(&report);
    let wire = report.runs[0].round_trips.as_ref().and_then(|trips| trips.wire());
    assert!(wire.is_some_and(|wire| wire > 0), "wire round trips were counted:\n{}", report.table());
}
