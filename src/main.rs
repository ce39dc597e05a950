use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match latch::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if latch::cli::output_closed(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // Not `eprintln!`, which panics when standard error is closed too;
            // the message may quote what was typed or stored.
            let _ = writeln!(std::io::stderr(), "error: {}", latch::text::printable(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}
