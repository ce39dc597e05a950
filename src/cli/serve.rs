//! `latch serve`: logging, the server, and a clean stop on a signal.

use super::output::say;
use crate::config::{Config, LogFormat, mask_password};
use crate::server::Server;

pub(super) async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    let server = Server::build(&config).await?;
    let address = server.local_addr()?;
    if let Some(link) = server.setup_link() {
        // Standard output, so that `latch serve | head -1` or the service's
        // journal shows it; the log line says the same for log collectors.
        // With JSON logs the output is for machines, often merged into one
        // stream: there the log line alone says it, so every line stays JSON.
        if config.log_format != LogFormat::Json {
            say!("No administrator yet: open {} within the hour to create one.", link.url)?;
        }
        tracing::warn!(url = %link.url, "no administrator yet: open the setup link within the hour to create one");
    }
    tracing::info!(
        %address,
        public_url = config.public_url.as_str(),
        database = %mask_password(&config.database_url),
        "latch is listening"
    );
    if let Some(address) = server.ldap_addr() {
        tracing::info!(%address, base_dn = config.ldap.base_dn, "LDAP is listening");
    }
    if let Some(address) = server.ldaps_addr() {
        tracing::info!(%address, base_dn = config.ldap.base_dn, "LDAPS is listening");
    }
    server.run(shutdown_signal()).await?;
    tracing::info!("latch stopped");
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logger = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    match format {
        LogFormat::Text => logger.fmt_fields(text_log_fields()).init(),
        LogFormat::Json => logger.json().flatten_event(true).init(),
    }
}

/// The most characters of one field the text log shows.
const MAX_LOGGED_CHARS: usize = 1000;

/// Fields of the text log, `name=value` (the message bare), each value cut
/// to `MAX_LOGGED_CHARS` with control characters escaped: fields carry
/// request text (usernames, client ids, redirect URIs, origins), and one
/// event must stay one line that sends the terminal nothing. (The JSON log
/// escapes by itself.)
fn text_log_fields() -> impl for<'writer> tracing_subscriber::fmt::FormatFields<'writer> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = crate::text::printable(&crate::text::bounded(&text, MAX_LOGGED_CHARS)).into_owned();
        match field.name() {
            "message" => write!(writer, "{text}"),
            name => write!(writer, "{name}={text}"),
        }
    })
    .delimited(" ")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {},
            () = terminate => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_event_carrying_request_text_stays_one_bounded_inert_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(text_log_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let forged = "x\n2026-01-01T00:00:00Z  INFO latch: admin signed in\u{1b}[2J\u{202e}";
        let long = "y".repeat(5000);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(redirect_uri = %forged, username = forged, user_agent = %long, "refused {forged}");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains(['\u{1b}', '\u{202e}']), "{text}");
        assert!(text.contains("refused x\\n2026-01-01T00:00:00Z"), "{text}");
        assert!(text.contains("redirect_uri=x\\n2026-01-01T00:00:00Z"), "{text}");
        assert!(text.contains(&format!("user_agent={}…", "y".repeat(MAX_LOGGED_CHARS - 1))), "{text}");
        assert!(!text.contains(&"y".repeat(MAX_LOGGED_CHARS)), "{text}");
    }
}
