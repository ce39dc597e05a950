use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match latch::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The message may quote what was typed or stored.
            eprintln!("error: {}", latch::text::printable(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}
