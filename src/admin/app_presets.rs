//! `app add --preset`: registers an app as its preset (`crate::presets`)
//! says it needs, and fills in the settings to paste into the app with the
//! real values: its client id and secret, the issuer, Latch's endpoints.

use serde::Serialize;
use serde::ser::SerializeMap;

use super::apps::{AddApp, AppCredentials, AppDetails, OidcAppDetails, add_app, show_app};
use super::proxy::{AddProxyApp, ProxySettings, add_proxy_app};
use super::{Actor, AdminError, AdminResult, AppOptionChanges};
use crate::config::Config;
use crate::presets::{self, BaseUrl, ClientType, OidcNeeds, Placeholders, Preset, PresetError};
use crate::store::Store;

/// `app add <slug> --preset <preset> --url <url>`.
#[derive(Debug, Clone)]
pub struct AddPresetApp {
    pub slug: String,
    /// A preset name, e.g. `grafana` (`presets::find`).
    pub preset: String,
    /// The app's base URL, e.g. `https://grafana.example.com`.
    pub url: String,
    /// Display name; the preset's title when `None`.
    pub name: Option<String>,
    /// Only members of these groups may use the app; empty: every active user.
    pub groups: Vec<String>,
}

/// What `app add --preset` registered: the credentials (or proxy URLs) as
/// a plain `app add` returns them, plus the app's own settings.
#[derive(Debug, Serialize)]
pub struct PresetApp {
    pub preset: String,
    /// Where the settings go, e.g. "environment variables".
    pub configured_in: String,
    #[serde(flatten)]
    pub registered: Registered,
    /// The app's setting names mapped to values, in the preset's order.
    pub settings: Settings,
    /// What must be done by hand in the app.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Registered {
    Oidc(AppCredentials),
    Proxy(Box<ProxySettings>),
}

/// `(setting name, value)` pairs, serialized as one JSON object that keeps
/// their order.
#[derive(Debug, Default)]
pub struct Settings(pub Vec<(String, String)>);

impl Serialize for Settings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Every embedded preset. Errors: `Invalid` for a preset file that breaks
/// the rules (a release bug the unit tests catch).
pub fn list_presets() -> AdminResult<Vec<Preset>> {
    Ok(presets::all()?)
}

/// Registers the app as the preset says (redirect URIs from `url`, client
/// type, signing algorithm, lifetimes; or a proxy app at `url`) and
/// returns the settings for the app. Errors: `Invalid` for an unknown
/// preset (listing the known ones) or a bad `url`, then those of
/// `add_app` / `add_proxy_app`; nothing is written when any check fails.
pub async fn add_preset_app(
    store: &Store,
    config: &Config,
    actor: &Actor,
    command: AddPresetApp,
) -> AdminResult<PresetApp> {
    let (preset, mut values, start) = prepare(command)?;
    let registered = match start {
        PresetCommand::Oidc(add) => {
            let slug = add.slug.clone();
            let credentials = add_app(store, config, actor, add).await?;
            if let (AppDetails::Oidc(details), Some(needs)) = (show_app(store, config, &slug).await?, &preset.oidc) {
                oidc_values(&mut values, &credentials, &details, needs);
            }
            Registered::Oidc(credentials)
        }
        PresetCommand::Proxy(add) => {
            let settings = add_proxy_app(store, config, actor, add).await?;
            proxy_values(&mut values, &settings);
            Registered::Proxy(Box::new(settings))
        }
    };
    let fill = |template: &str| presets::expand(template, &values).map_err(|reason| invalid_preset(&preset, reason));
    let settings = preset
        .settings
        .iter()
        .map(|setting| Ok((setting.name.clone(), fill(&setting.value)?)))
        .collect::<AdminResult<_>>()?;
    let notes = preset.notes.iter().map(|note| fill(note)).collect::<AdminResult<_>>()?;
    Ok(PresetApp {
        preset: preset.name,
        configured_in: preset.configured_in,
        registered,
        settings: Settings(settings),
        notes,
    })
}

/// The plain `app add` (OpenID Connect) or proxy `app add` that a preset
/// registration amounts to: its starting settings, before anything is
/// written.
pub enum PresetCommand {
    Oidc(AddApp),
    Proxy(AddProxyApp),
}

/// What `add_preset_app` would register for `command`, for callers that
/// change some settings first (`latch apply`). Errors: as
/// `add_preset_app`'s checks of the preset and `url`.
pub fn preset_command(command: AddPresetApp) -> AdminResult<PresetCommand> {
    Ok(prepare(command)?.2)
}

/// The preset, the template values known before registering, and the
/// command to register.
fn prepare(command: AddPresetApp) -> AdminResult<(Preset, Placeholders, PresetCommand)> {
    let preset = presets::find(&command.preset)?;
    let base = BaseUrl::parse(&command.url)?;
    let name = command.name.unwrap_or_else(|| preset.title.clone());
    let mut values = Placeholders::default();
    values
        .set("url", base.as_str())
        .set("url_scheme", base.scheme())
        .set("url_authority", base.authority())
        .set("url_path", base.path())
        .set("slug", command.slug.as_str())
        .set("name", name.as_str());
    let start = match &preset.oidc {
        Some(needs) => PresetCommand::Oidc(oidc_command(needs, &values, command.slug, name, command.groups)?),
        None => PresetCommand::Proxy(AddProxyApp {
            slug: command.slug,
            name,
            groups: command.groups,
            external_url: base.as_str().to_owned(),
            cookie_domain: None,
            // The app's own requirement is not the preset's to set: the
            // global `require_mfa` applies until `app update` says more.
            require_mfa: None,
            client_id: None,
        }),
    };
    Ok((preset, values, start))
}

/// The `app add` the preset asks for.
fn oidc_command(
    needs: &OidcNeeds,
    values: &Placeholders,
    slug: String,
    name: String,
    groups: Vec<String>,
) -> AdminResult<AddApp> {
    let redirect_uris = needs
        .all_redirect_uris()
        .map(|template| presets::expand(template, values).map_err(|reason| AdminError::invalid("--preset", reason)))
        .collect::<AdminResult<_>>()?;
    let signing_alg = needs
        .signing_alg
        .value
        .parse()
        .map_err(|error: crate::canonical::UnknownValue| AdminError::invalid("--preset", error.to_string()))?;
    let lifetimes = needs.lifetimes.clone().unwrap_or_default();
    let options = AppOptionChanges {
        signing_alg: Some(signing_alg),
        access_token_ttl: lifetimes.access_token_ttl,
        refresh_token_ttl: lifetimes.refresh_token_ttl,
        ..AppOptionChanges::default()
    };
    let public = needs.client_type.value == ClientType::Public;
    Ok(AddApp { slug, name, redirect_uris, public, groups, options, client_id: None, client_secret: None })
}

fn oidc_values(values: &mut Placeholders, credentials: &AppCredentials, details: &OidcAppDetails, needs: &OidcNeeds) {
    values
        .set("client_id", credentials.client_id.as_str())
        .set("client_secret", credentials.client_secret.clone().unwrap_or_default())
        .set("issuer", details.issuer.as_str())
        .set("discovery_url", details.discovery_url.as_str())
        .set("authorization_endpoint", details.authorization_endpoint.as_str())
        .set("token_endpoint", details.token_endpoint.as_str())
        .set("userinfo_endpoint", details.userinfo_endpoint.as_str())
        .set("jwks_uri", details.jwks_uri.as_str())
        .set("end_session_endpoint", details.end_session_endpoint.as_str())
        .set("scopes", needs.scopes.value.join(" "));
}

fn proxy_values(values: &mut Placeholders, settings: &ProxySettings) {
    values
        .set("outpost_url", settings.outpost_url.as_str())
        .set("nginx_auth_url", settings.nginx_auth_url.as_str())
        .set("traefik_auth_url", settings.traefik_auth_url.as_str())
        .set("caddy_auth_url", settings.caddy_auth_url.as_str())
        .set("sign_out_url", settings.sign_out_url.as_str());
}

fn invalid_preset(preset: &Preset, reason: String) -> AdminError {
    PresetError::Invalid { name: preset.name.clone(), reason }.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AppOptions;

    /// Each preset's options are ones `app add` accepts: a bad lifetime or
    /// algorithm in a file would only show when an operator used it.
    #[test]
    fn every_oidc_preset_registers_with_valid_options() {
        let mut values = Placeholders::default();
        for name in Placeholders::names(presets::Kind::Oidc) {
            values.set(name, "https://app.example.com");
        }
        for preset in presets::all().expect("presets") {
            let Some(needs) = &preset.oidc else { continue };
            let add = oidc_command(needs, &values, "app".into(), preset.title.clone(), vec![]).expect("command");
            let options = add.options.resolve(AppOptions::default(), add.public).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(options.signing_alg.as_str(), needs.signing_alg.value, "{}", preset.name);
            for uri in &add.redirect_uris {
                super::super::validate::redirect_uri(uri).unwrap_or_else(|e| panic!("{}: {e}", preset.name));
            }
        }
    }

    #[test]
    fn settings_serialize_in_the_presets_order() {
        let settings = Settings(vec![("B".into(), "1".into()), ("A".into(), "2".into())]);
        assert_eq!(serde_json::to_string(&settings).unwrap(), r#"{"B":"1","A":"2"}"#);
    }
}
