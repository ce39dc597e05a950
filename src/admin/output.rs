//! What the admin commands print: aligned text for people, `--json` for
//! scripts.

use serde::Serialize;
use serde_json::json;

use super::{AdminError, AdminResult};
use crate::config::Config;
use crate::store::{AppSummary, AuditEvent, GroupSummary, Store, StoreError, StoredKey, UserSummary};

/// Printed once, when an app is created or its secret rotated.
#[derive(Debug, Serialize)]
pub struct AppCredentials {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub issuer: String,
    pub discovery_url: String,
}

impl AppCredentials {
    pub fn new(config: &Config, slug: &str, client_id: String, client_secret: Option<String>) -> Self {
        let issuer = issuer(config, slug);
        Self { client_id, client_secret, discovery_url: format!("{issuer}.well-known/openid-configuration"), issuer }
    }
}

fn issuer(config: &Config, slug: &str) -> String {
    config.public_url.join(&format!("/application/o/{slug}/"))
}

/// A Unix time as people read it (UTC, RFC 3339).
fn when(at: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `println!` for the commands' output, with two differences. The line may
/// quote what a visitor typed (a failed sign-in's username) or an admin
/// stored, so control characters and direction overrides are shown escaped
/// (`text::printable`): no forged lines, no terminal escape sequences. And
/// it returns an `AdminResult` where `println!` would panic: when the reader
/// went away (`latch events | head`), the error is `AdminError::OutputClosed`
/// and the command ends quietly.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::admin::write_line(&$crate::text::printable(&format!($($arg)*)))
    };
}
pub(crate) use say;

pub(super) fn print_json(value: &impl Serialize) -> AdminResult<()> {
    let text = serde_json::to_string_pretty(value).map_err(|error| AdminError::Invalid(error.to_string()))?;
    write_line(&text)
}

/// Writes `line` and a line break to standard output as it is.
pub(crate) fn write_line(line: &str) -> AdminResult<()> {
    use std::io::Write as _;
    writeln!(std::io::stdout(), "{line}").map_err(AdminError::from_stdout)
}

pub fn print_credentials(credentials: &AppCredentials, json: bool) -> AdminResult<()> {
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
    say!("discovery_url: {}", credentials.discovery_url)?;
    Ok(())
}

pub fn print_users(users: &[UserSummary], json: bool) -> AdminResult<()> {
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

pub fn print_groups(groups: &[GroupSummary], json: bool) -> AdminResult<()> {
    if json {
        return print_json(&groups);
    }
    say!("{:<24} MEMBERS", "GROUP")?;
    for group in groups {
        say!("{:<24} {}", group.name, group.members.join(","))?;
    }
    Ok(())
}

pub fn print_apps(apps: &[AppSummary], json: bool) -> AdminResult<()> {
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

pub fn print_events(events: &[AuditEvent], json: bool) -> AdminResult<()> {
    if json {
        return print_json(&events);
    }
    say!("{:<20} {:<20} {:<16} {:<14} {:<16} DETAIL", "AT (UTC)", "KIND", "USER", "APP", "IP")?;
    for event in events {
        let show = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".into());
        say!(
            "{:<20} {:<20} {:<16} {:<14} {:<16} {}",
            when(event.at),
            event.kind,
            show(&event.username),
            show(&event.app),
            show(&event.ip),
            show(&event.detail)
        )?;
    }
    Ok(())
}

/// Keys as `key list` shows them: never the private half. Times are Unix seconds.
pub fn print_keys(keys: &[StoredKey], json: bool) -> AdminResult<()> {
    let now = crate::clock::now();
    let rows: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            let status = match key.retire_at {
                Some(retire) if retire <= now => "retired",
                Some(_) => "retiring",
                None if key.activates_at > now => "next",
                None => "active",
            };
            json!({"kid": key.kid, "alg": key.alg, "status": status, "created_at": key.created_at,
                   "activates_at": key.activates_at, "retire_at": key.retire_at})
        })
        .collect();
    if json {
        return print_json(&rows);
    }
    say!("{:<45} {:<6} {:<9} {:<20} RETIRES (UTC)", "KID", "ALG", "STATUS", "SIGNS FROM (UTC)")?;
    for (key, row) in keys.iter().zip(&rows) {
        let retire = key.retire_at.map(when).unwrap_or_else(|| "-".into());
        let status = row["status"].as_str().unwrap_or("");
        say!("{:<45} {:<6} {:<9} {:<20} {retire}", key.kid, key.alg, status, when(key.activates_at))?;
    }
    Ok(())
}

/// Everything an operator pastes into the app's OIDC settings.
pub async fn show_app(store: &Store, config: &Config, slug: &str, json: bool) -> AdminResult<()> {
    if let Some(settings) = super::proxy_settings(store, config, slug).await? {
        return super::print_proxy_settings(&settings, json);
    }
    let apps = store.list_apps().await?;
    let app = apps
        .into_iter()
        .find(|app| app.slug == slug)
        .ok_or_else(|| StoreError::NotFound { kind: "app", name: slug.to_owned() })?;
    let issuer = issuer(config, slug);
    let url = |path: &str| config.public_url.join(path);
    let details = json!({
        "slug": app.slug,
        "name": app.name,
        "client_id": app.client_id,
        "public": app.public,
        "redirect_uris": app.redirect_uris,
        "groups": app.groups,
        "options": app.options,
        "revocation_endpoint": url("/application/o/revoke/"),
        "introspection_endpoint": url("/application/o/introspect/"),
        "end_session_endpoint": url(&format!("/application/o/{slug}/end-session/")),
        "issuer": issuer,
        "discovery_url": format!("{issuer}.well-known/openid-configuration"),
        "authorization_endpoint": url("/application/o/authorize/"),
        "token_endpoint": url("/application/o/token/"),
        "userinfo_endpoint": url("/application/o/userinfo/"),
        "jwks_uri": url(&format!("/application/o/{slug}/jwks/")),
    });
    if json {
        return print_json(&details);
    }
    if let Some(fields) = details.as_object() {
        for (key, value) in fields {
            let shown = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|item| item.as_str()).collect::<Vec<_>>().join(" ")
                }
                other => other.to_string(),
            };
            say!("{key:<23} {shown}")?;
        }
    }
    Ok(())
}
