//! Proxy apps on the command line: `latch app add … --proxy --external-url …`
//! and what `latch app show` prints for them, the URLs to paste into the
//! reverse proxy's configuration.

use serde::Serialize;

use super::output::{print_json, say};
use super::{AdminError, AdminResult, new_client_id, validate};
use crate::clock;
use crate::config::Config;
use crate::proxy::{CADDY_PATH, CALLBACK_PATH, NGINX_PATH, PREFIX, SIGN_OUT_PATH, START_PATH, TRAEFIK_PATH, target};
use crate::store::{NewProxyApp, ProxyApp, Store};

/// The `app add` flags of a proxy app.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ProxyAppArgs {
    /// A proxy app: no OpenID Connect, the reverse proxy (nginx, Traefik,
    /// Caddy) asks Latch about every request (forward auth).
    #[arg(long, requires = "external_url", conflicts_with_all = ["redirect_uris", "public"])]
    pub proxy: bool,
    /// With --proxy: the URL people open the app at, e.g. https://uptime.example.com.
    #[arg(long, requires = "proxy")]
    pub external_url: Option<String>,
    /// With --proxy: set the app's sign-in cookie on this parent domain
    /// (e.g. example.com), so one sign-in covers every proxy app sharing it.
    #[arg(long, requires = "proxy")]
    pub cookie_domain: Option<String>,
}

/// Everything an operator configures in the reverse proxy.
#[derive(Debug, Serialize)]
pub struct ProxySettings {
    pub slug: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub client_id: String,
    pub groups: Vec<String>,
    pub external_url: String,
    pub cookie_domain: Option<String>,
    /// Route `<external_url>/outpost.goauthentik.io/` here.
    pub outpost_url: String,
    pub nginx_auth_url: String,
    pub traefik_auth_url: String,
    pub caddy_auth_url: String,
    pub start_url: String,
    pub callback_url: String,
    pub sign_out_url: String,
}

impl ProxySettings {
    fn new(config: &Config, app: ProxyApp, groups: Vec<String>) -> Self {
        let latch = |path: &str| config.public_url.join(path);
        let on_app = |path: &str| format!("{}{path}", app.origin);
        Self {
            outpost_url: latch(&format!("{PREFIX}/")),
            nginx_auth_url: latch(NGINX_PATH),
            traefik_auth_url: latch(TRAEFIK_PATH),
            caddy_auth_url: latch(CADDY_PATH),
            start_url: on_app(START_PATH),
            callback_url: on_app(CALLBACK_PATH),
            sign_out_url: on_app(SIGN_OUT_PATH),
            slug: app.slug,
            name: app.name,
            kind: "proxy",
            client_id: app.client_id,
            groups,
            external_url: app.external_url,
            cookie_domain: app.cookie_domain,
        }
    }
}

pub async fn add_proxy_app(
    store: &Store,
    config: &Config,
    slug: &str,
    name: &str,
    groups: &[String],
    args: &ProxyAppArgs,
) -> AdminResult<ProxySettings> {
    validate::slug(slug)?;
    validate::display_name(name)?;
    let raw_url =
        args.external_url.as_deref().ok_or_else(|| AdminError::Invalid("a proxy app needs --external-url".into()))?;
    let external = target::external_url(raw_url).map_err(AdminError::Invalid)?;
    let cookie_domain = args
        .cookie_domain
        .as_deref()
        .map(|domain| target::cookie_domain(&external, domain))
        .transpose()
        .map_err(AdminError::Invalid)?;
    let app = NewProxyApp {
        slug: slug.to_owned(),
        name: name.to_owned(),
        client_id: new_client_id(),
        external_url: external.origin().to_owned(),
        origin: external.origin().to_owned(),
        cookie_domain,
    };
    store.create_proxy_app(app, groups, clock::now()).await?;
    proxy_settings(store, config, slug).await?.ok_or_else(|| AdminError::Invalid(format!("app {slug:?} vanished")))
}

/// The settings of app `slug` if it is a proxy app.
pub async fn proxy_settings(store: &Store, config: &Config, slug: &str) -> AdminResult<Option<ProxySettings>> {
    Ok(store.proxy_app_by_slug(slug).await?.map(|(app, groups)| ProxySettings::new(config, app, groups)))
}

pub fn print_proxy_settings(settings: &ProxySettings, json: bool) -> AdminResult<()> {
    if json {
        return print_json(settings);
    }
    let value = serde_json::to_value(settings).map_err(|error| AdminError::Invalid(error.to_string()))?;
    if let Some(fields) = value.as_object() {
        for (key, value) in fields {
            let shown = match value {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|item| item.as_str()).collect::<Vec<_>>().join(" ")
                }
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            say!("{key:<17} {shown}")?;
        }
    }
    say!("")?;
    say!(
        "Route {}{PREFIX}/ to {} and protect the rest of the host with the auth URL of your proxy \
         (README: \"Forward auth\").",
        settings.external_url,
        settings.outpost_url
    )?;
    Ok(())
}
