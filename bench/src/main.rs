use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let options = latch_bench::Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("latch-bench: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let json = options.json.clone();
    match runtime.block_on(latch_bench::run(options)) {
        Ok(report) => {
            println!("{}", report.table());
            if let Some(path) = json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => {
                        if let Err(error) = std::fs::write(&path, text) {
                            eprintln!("latch-bench: cannot write {}: {error}", path.display());
                        }
                    }
                    Err(error) => eprintln!("latch-bench: {error}"),
                }
            }
            if report.total_errors() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Err(error) => {
            eprintln!("latch-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}
