//! What the commands print: aligned text for people, `--json` for scripts.
//! Only the CLI prints; the admin layer returns data.

use serde::Serialize;

use crate::admin::invites::OneTimeLink;
use crate::admin::{
    AppCredentials, AppDetails, AppPasswordAdded, KeyListing, LdapAccountCreated, LdapStatus, PresetApp, ProxySettings,
    RecoveryCodes, Registered, TotpEnrolled,
};
use crate::cluster::ClusterStatus;
use crate::doctor::Problem;
use crate::presets::{Kind, Preset};
use crate::store::{AppPasswordSummary, AppSummary, AuditEvent, Factor, GroupSummary, LdapAccountSummary, UserSummary};

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

/// A one-time link: `{"url", "expires_at"}` with `--json`, else `what`
/// (one use, until when) and the link on a line of its own.
pub fn one_time_link(link: &OneTimeLink, what: &str, json: bool) -> OutputResult {
    if json {
        return print_json(link);
    }
    say!("{what} (one use, until {}):", when(link.expires_at))?;
    say!("{}", link.url)
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

pub fn app_password(added: &AppPasswordAdded, username: &str, label: &str, json: bool) -> OutputResult {
    if json {
        return print_json(added);
    }
    say!("App password {label} of {username} (shown once; for LDAP binds only):")?;
    say!("{}", added.password)
}

pub fn app_passwords(passwords: &[AppPasswordSummary], json: bool) -> OutputResult {
    if json {
        return print_json(&passwords);
    }
    say!("{:<32} CREATED (UTC)", "LABEL")?;
    for password in passwords {
        say!("{:<32} {}", password.label, when(password.created_at))?;
    }
    Ok(())
}

pub fn ldap_account(created: &LdapAccountCreated, json: bool) -> OutputResult {
    if json {
        return print_json(created);
    }
    say!("bind DN:  {}", created.dn)?;
    say!("password: {}", created.password)?;
    say!("          (shown once: store it in the app now)")
}

pub fn ldap_accounts(accounts: &[LdapAccountSummary], json: bool) -> OutputResult {
    if json {
        return print_json(&accounts);
    }
    say!("{:<24} {:<20} SEES", "NAME", "CREATED (UTC)")?;
    for account in accounts {
        let sees = if account.groups.is_empty() { "everyone".to_owned() } else { account.groups.join(",") };
        say!("{:<24} {:<20} {sees}", account.name, when(account.created_at))?;
    }
    Ok(())
}

pub fn ldap_status(status: &LdapStatus, json: bool) -> OutputResult {
    if json {
        return print_json(status);
    }
    let off = |address: &Option<String>| address.clone().unwrap_or_else(|| "off".into());
    say!("ldap_listen:  {}{}", off(&status.listen), if status.starttls { " (StartTLS)" } else { "" })?;
    say!("ldaps_listen: {}", off(&status.ldaps_listen))?;
    say!("base DN:      {}", status.base_dn)?;
    say!("people:       uid=<username>,{}", status.people_dn)?;
    say!("groups:       cn=<group>,{}", status.groups_dn)?;
    say!("")?;
    ldap_accounts(&status.accounts, false)
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

pub fn cluster(status: &ClusterStatus, json: bool) -> OutputResult {
    if json {
        return print_json(status);
    }
    if status.instances.is_empty() {
        return say!("No instance has recorded a heartbeat: no latch serve runs on this database.");
    }
    say!(
        "{:<32} {:<9} {:<20} {:<22} {:<20} {:<20} {:>10} STATUS",
        "INSTANCE",
        "VERSION",
        "HOST",
        "LISTEN",
        "STARTED (UTC)",
        "LAST SEEN (UTC)",
        "DB OFFSET"
    )?;
    for instance in &status.instances {
        let beat = &instance.heartbeat;
        let state =
            if instance.stale { format!("stale (silent for {} s)", instance.silent_for) } else { "live".to_owned() };
        say!(
            "{:<32} {:<9} {:<20} {:<22} {:<20} {:<20} {:>8}ms {state}",
            beat.id,
            beat.version,
            beat.host,
            beat.listen,
            when(beat.started_at),
            when(beat.last_seen),
            beat.clock_offset_ms
        )?;
    }
    if !status.mixed_versions.is_empty() {
        say!("Mixed versions among live instances: {}.", status.mixed_versions.join(", "))?;
    }
    Ok(())
}

pub fn factors(factors: &[Factor], json: bool) -> OutputResult {
    if json {
        return print_json(&factors);
    }
    if factors.is_empty() {
        return say!("No second factors.");
    }
    for factor in factors {
        let last_used = factor.last_used.map_or_else(|| "never used".to_owned(), when);
        say!(
            "{:<8} {:<24} created {}  last used {last_used}",
            factor.kind.as_str(),
            factor.name,
            when(factor.created)
        )?;
    }
    Ok(())
}

/// `app add --preset`: what `app add` prints, then the app's settings with
/// their real values and what is left to do by hand.
pub fn preset_app(app: &PresetApp, json: bool) -> OutputResult {
    if json {
        return print_json(app);
    }
    match &app.registered {
        Registered::Oidc(registered) => credentials(registered, false)?,
        Registered::Proxy(settings) => proxy_settings(settings, false)?,
    }
    say!("")?;
    say!("Settings for the app ({}):", app.configured_in)?;
    let width = app.settings.0.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    for (name, value) in &app.settings.0 {
        let mut lines = value.lines();
        say!("  {name:<width$}  {}", lines.next().unwrap_or_default())?;
        for line in lines {
            say!("  {:<width$}  {line}", "")?;
        }
    }
    if !app.notes.is_empty() {
        say!("")?;
        say!("By hand:")?;
        for note in &app.notes {
            say!("  - {note}")?;
        }
    }
    Ok(())
}

pub fn problems(problems: &[Problem], json: bool) -> OutputResult {
    if json {
        return print_json(&serde_json::json!({ "problems": problems }));
    }
    if problems.is_empty() {
        return say!("No problems found.");
    }
    for problem in problems {
        match &problem.app {
            Some(app) => say!("problem: {} (app {app})", problem.kind)?,
            None => say!("problem: {}", problem.kind)?,
        }
        say!("  {}", problem.detail)?;
        say!("  fix: {}", problem.fix)?;
    }
    Ok(())
}

pub fn totp_enrolled(enrolled: &TotpEnrolled, json: bool) -> OutputResult {
    if json {
        return print_json(enrolled);
    }
    say!("{}", enrolled.otpauth_uri)?;
    say!("(shown once: open it, or turn it into a QR code, on the person's authenticator app)")
}

pub fn recovery_codes(codes: &RecoveryCodes, json: bool) -> OutputResult {
    if json {
        return print_json(codes);
    }
    for code in &codes.codes {
        say!("{code}")?;
    }
    say!("(shown once; each code signs in once; the previous codes no longer work)")
}

/// `app presets`: one line per preset; `--json` gives every fact with its
/// source.
pub fn presets(presets: &[Preset], json: bool) -> OutputResult {
    if json {
        return print_json(&presets);
    }
    say!("{:<18} {:<6} {:<32} REDIRECT URIS (from --url)", "PRESET", "KIND", "APP")?;
    for preset in presets {
        let (kind, redirects) = match (&preset.kind.value, &preset.oidc) {
            (Kind::Oidc, Some(needs)) => ("oidc", needs.all_redirect_uris().cloned().collect::<Vec<_>>().join(" ")),
            _ => ("proxy", "-".to_owned()),
        };
        say!("{:<18} {kind:<6} {:<32} {redirects}", preset.name, preset.title)?;
    }
    Ok(())
}
