//! Proxy (forward-auth) apps: registering one, and the URLs to paste into
//! the reverse proxy's configuration.

use serde::Serialize;

use super::apps::chosen_client_id;
use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult, validate};
use crate::clock;
use crate::config::Config;
use crate::proxy::{CADDY_PATH, CALLBACK_PATH, NGINX_PATH, PREFIX, SIGN_OUT_PATH, START_PATH, TRAEFIK_PATH, target};
use crate::store::{NewProxyApp, ProxyApp, Store};

/// `app add --proxy`: a forward-auth app.
#[derive(Debug, Clone)]
pub struct AddProxyApp {
    pub slug: String,
    pub name: String,
    /// Only members of these groups may use the app; empty: every active user.
    pub groups: Vec<String>,
    /// The URL people open the app at, e.g. `https://uptime.example.com`.
    pub external_url: String,
    /// A parent domain (e.g. `example.com`) to set the app's sign-in cookie
    /// on, so that one sign-in covers every proxy app sharing it.
    pub cookie_domain: Option<String>,
    /// As `AppOptionChanges::require_mfa`.
    pub require_mfa: Option<bool>,
    /// The client id to register under (`latch apply` recreating an app
    /// exported with it); `None`: a new random one.
    pub client_id: Option<String>,
}

/// Everything an operator configures in the reverse proxy.
#[derive(Debug, Clone, Serialize)]
pub struct ProxySettings {
    pub slug: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub client_id: String,
    pub groups: Vec<String>,
    pub external_url: String,
    pub cookie_domain: Option<String>,
    /// Whether the app requires a second factor; `None`: `require_mfa` decides.
    pub require_mfa: Option<bool>,
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
            require_mfa: app.require_mfa,
        }
    }
}

/// Registers a proxy app; returns what to configure in the reverse proxy.
/// Errors: `Invalid` (slug, name, URL, cookie domain, client id), `Duplicate`
/// app or client id,
/// `NotFound` group.
pub async fn add_proxy_app(
    store: &Store,
    config: &Config,
    actor: &Actor,
    command: AddProxyApp,
) -> AdminResult<ProxySettings> {
    validate::slug(&command.slug)?;
    validate::display_name(&command.name)?;
    let external =
        target::external_url(&command.external_url).map_err(|reason| AdminError::invalid("--external-url", reason))?;
    let cookie_domain = command
        .cookie_domain
        .as_deref()
        .map(|domain| target::cookie_domain(&external, domain))
        .transpose()
        .map_err(|reason| AdminError::invalid("--cookie-domain", reason))?;
    let app = NewProxyApp {
        client_id: chosen_client_id(store, command.client_id).await?,
        slug: command.slug.clone(),
        name: command.name,
        external_url: external.origin().to_owned(),
        origin: external.origin().to_owned(),
        cookie_domain,
        require_mfa: command.require_mfa,
    };
    store.create_proxy_app(app, &command.groups, clock::now()).await?;
    Change::to_app(ChangeKind::ProxyAppCreated, &command.slug)
        .detail(format!("external_url {}", external.origin()))
        .record(store, actor)
        .await?;
    proxy_settings(store, config, &command.slug).await?.ok_or_else(|| AdminError::not_found("app", &command.slug))
}

/// The settings of app `slug` if it is a proxy app.
pub(super) async fn proxy_settings(store: &Store, config: &Config, slug: &str) -> AdminResult<Option<ProxySettings>> {
    Ok(store.proxy_app_by_slug(slug).await?.map(|(app, groups)| ProxySettings::new(config, app, groups)))
}
