//! What the commands print: aligned text for people, `--json` for scripts.
//! Only the CLI prints; the admin layer returns data.

use serde::Serialize;

use crate::admin::{AppCredentials, AppDetails, KeyListing, ProxySettings};
use crate::store::{AppSummary, AuditEvent, GroupSummary, UserSummary};

/// Writing to standard output failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Closed by its reader (`latch events | head`): not a failure, the
    /// command just stops, as Unix tools do.
    #[error("standard output was closed")]
    Closed,
    #[error("cannot write to standard output: {0}")]
    Io(std::io::Error),
    #[error("cannot encode JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub type OutputResult = Result<(), OutputError>;

/// `println!` for the commands' output, with two differences. The line may
/// quote what a visitor typed (a failed sign-in's username) or an admin
/// stored, so control characters and direction overrides are shown escaped
/// (`text::printable`): no forged lines, no terminal escape sequences. And
/// it returns an `OutputResult` where `println!` would panic: when the
/// reader went away, the error is `OutputError::Closed`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(&$crate::text::printable(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// Writes `line` and a line break to standard output as it is.
pub(crate) fn write_line(line: &str) -> OutputResult {
    use std::io::Write as _;
    writeln!(std::io::stdout(), "{line}").map_err(|error| match error.kind() {
        std::io::ErrorKind::BrokenPipe => OutputError::Closed,
        _ => OutputError::Io(error),
    })
}

fn print_json(value: &impl Serialize) -> OutputResult {
    write_line(&serde_json::to_string_pretty(value)?)
}

/// A Unix time as people read it (UTC, RFC 3339).
fn when(at: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

pub fn credentials(credentials: &AppCredentials, json: bool) -> OutputResult {
    if json {
        return print_json(credentials);
    }
    say!("client_id:     {}", credentials.client_id)?;
    match &credentials.client_secret {
        Some(secret) => {
            say!("client_secret: {secret}")?;
            say!("               (shown once: store it in the app now)")?;
        }
        None => say!("client_secret: none (public client: PKCE is required)")?,
    }
    say!("issuer:        {}", credentials.issuer)?;
    say!("discovery_url: {}", credentials.discovery_url)
}

pub fn users(users: &[UserSummary], json: bool) -> OutputResult {
    if json {
        return print_json(&users);
    }
    say!("{:<24} {:<32} {:<9} GROUPS", "USERNAME", "EMAIL", "STATUS")?;
    for user in users {
        let status = if user.disabled { "disabled" } else { "active" };
        say!("{:<24} {:<32} {:<9} {}", user.username, user.email, status, user.groups.join(","))?;
    }
    Ok(())
}

pub fn groups(groups: &[GroupSummary], json: bool) -> OutputResult {
    if json {
        return print_json(&groups);
    }
    say!("{:<24} MEMBERS", "GROUP")?;
    for group in groups {
        say!("{:<24} {}", group.name, group.members.join(","))?;
    }
    Ok(())
}

pub fn apps(apps: &[AppSummary], json: bool) -> OutputResult {
    if json {
        return print_json(&apps);
    }
    say!("{:<20} {:<24} {:<12} CLIENT_ID", "SLUG", "NAME", "TYPE")?;
    for app in apps {
        let kind = match (&app.external_url, app.public) {
            (Some(_), _) => "proxy",
            (None, true) => "public",
            (None, false) => "confidential",
        };
        say!("{:<20} {:<24} {:<12} {}", app.slug, app.name, kind, app.client_id)?;
    }
    Ok(())
}

pub fn events(events: &[AuditEvent], json: bool) -> OutputResult {
    if json {
        return print_json(&events);
    }
    say!("{:<20} {:<20} {:<16} {:<14} {:<16} {:<16} DETAIL", "AT (UTC)", "KIND", "USER", "APP", "IP", "BY")?;
    for event in events {
        let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
        say!(
            "{:<20} {:<20} {:<16} {:<14} {:<16} {:<16} {}",
            when(event.at),
            event.kind,
            show(&event.username),
            show(&event.app),
            show(&event.ip),
            show(&event.actor),
            show(&event.detail)
        )?;
    }
    Ok(())
}

pub fn keys(keys: &[KeyListing], json: bool) -> OutputResult {
    if json {
        return print_json(&keys);
    }
    say!("{:<45} {:<6} {:<9} {:<20} RETIRES (UTC)", "KID", "ALG", "STATUS", "SIGNS FROM (UTC)")?;
    for key in keys {
        let retire = key.retire_at.map(when).unwrap_or_else(|| "-".into());
        say!("{:<45} {:<6} {:<9} {:<20} {retire}", key.kid, key.alg, key.status.name(), when(key.activates_at))?;
    }
    Ok(())
}

pub fn app_details(details: &AppDetails, json: bool) -> OutputResult {
    if json {
        return match details {
            AppDetails::Proxy(settings) => print_json(settings),
            // Through a `Value`, whose fields are sorted: the order `app
            // show` has always printed them in.
            AppDetails::Oidc(details) => print_json(&serde_json::to_value(details)?),
        };
    }
    lines(&crate::admin::app_snippet(details)?)
}

pub fn proxy_settings(settings: &ProxySettings, json: bool) -> OutputResult {
    if json {
        return print_json(settings);
    }
    lines(&crate::admin::app_snippet(&AppDetails::Proxy(Box::new(settings.clone())))?)
}

/// Each line as it is (`say!` makes it printable).
fn lines(lines: &[String]) -> OutputResult {
    for line in lines {
        say!("{line}")?;
    }
    Ok(())
}
