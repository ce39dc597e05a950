//! The database as a file `latch apply` takes: every group, person and
//! app with every setting that differs from its default, client ids
//! included, secrets not (a confidential app gets a `generate` entry: on a
//! new database, a new secret is written there; on this one, the app keeps
//! its secret).

use std::time::Duration;

use toml::Spanned;

use super::file::{AppEntry, Declared, GroupEntry, PersonEntry, ProxyEntry, SecretEntry};
use super::state::Current;
use crate::store::{AppOptions, AppSummary, DEFAULT_REFRESH_TOKEN_REUSE_GRACE};

/// Where an exported confidential app's secret is generated, relative to
/// the file.
fn secret_path(slug: &str) -> String {
    format!("secrets/{slug}.client_secret")
}

/// `current` as the file declares it.
pub fn declared(current: &Current) -> Declared {
    let unplaced = |value: String| Spanned::new(0..0, value);
    Declared {
        groups: current.groups.iter().map(|group| GroupEntry { name: unplaced(group.name.clone()) }).collect(),
        people: current
            .users
            .iter()
            .map(|user| PersonEntry {
                username: unplaced(user.username.clone()),
                email: user.email.clone(),
                name: (user.name != user.username).then(|| user.name.clone()),
                groups: user.groups.clone(),
                disabled: user.disabled,
            })
            .collect(),
        apps: current.apps.iter().map(|app| app_entry(app, unplaced(app.slug.clone()))).collect(),
    }
}

fn app_entry(app: &AppSummary, slug: Spanned<String>) -> AppEntry {
    let options = &app.options;
    let defaults = AppOptions::default();
    let lifetime = |seconds: Option<i64>| seconds.map(duration_text);
    let proxy = app.external_url.as_ref().map(|external_url| ProxyEntry {
        external_url: external_url.clone(),
        cookie_domain: app.cookie_domain.clone(),
    });
    let oidc = proxy.is_none();
    let set = |differs: bool| (oidc && differs).then_some(());
    AppEntry {
        slug,
        name: app.name.clone(),
        client_id: Some(app.client_id.clone()),
        groups: app.groups.clone(),
        proxy,
        // Written in full: the state does not say a preset was used.
        preset: None,
        url: None,
        public: set(app.public).map(|()| true),
        redirect_uris: set(true).map(|()| app.redirect_uris.clone()),
        client_secret: set(!app.public).map(|()| SecretEntry::Generate(secret_path(&app.slug).into())),
        code_ttl: lifetime(options.code_ttl),
        access_token_ttl: lifetime(options.access_token_ttl),
        refresh_token_ttl: lifetime(options.refresh_token_ttl),
        consent: set(options.consent != defaults.consent).map(|()| options.consent.to_string()),
        signing_alg: set(options.signing_alg != defaults.signing_alg).map(|()| options.signing_alg.to_string()),
        client_credentials: set(options.client_credentials).map(|()| true),
        post_logout_redirect_uris: set(!options.post_logout_redirect_uris.is_empty())
            .map(|()| options.post_logout_redirect_uris.clone()),
        refresh_token_reuse_grace: set(options.refresh_token_reuse_grace != DEFAULT_REFRESH_TOKEN_REUSE_GRACE)
            .map(|()| reuse_grace_text(options.refresh_token_reuse_grace)),
        backchannel_logout_uri: options.backchannel_logout_uri.clone(),
        device_code: set(options.device_code).map(|()| true),
        device_code_ttl: lifetime(options.device_code_ttl),
        webfinger: set(options.webfinger).map(|()| true),
        launch_url: options.launch_url.clone(),
        require_mfa: options.require_mfa,
    }
}

/// Seconds as people write them (`5m`, `30days`), which `apply` reads back.
fn duration_text(seconds: i64) -> String {
    humantime::format_duration(Duration::from_secs(u64::try_from(seconds).unwrap_or(0))).to_string()
}

fn reuse_grace_text(seconds: i64) -> String {
    if seconds == 0 { "0".to_owned() } else { duration_text(seconds) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_back_as_the_same_seconds() {
        for seconds in [1, 59, 60, 300, 3600, 86_400, 2_592_000, 90_061] {
            let text = duration_text(seconds);
            let back = crate::admin::validate::lifetime("--code-ttl", &text).unwrap();
            assert_eq!(back, seconds, "{text}");
        }
        assert_eq!(reuse_grace_text(0), "0");
    }
}
