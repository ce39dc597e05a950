//! OpenID Connect apps: register, change, remove, rotate a secret, list,
//! show. (Proxy apps are created in `proxy`.)

use serde::Serialize;

use super::app_options::AppOptionChanges;
use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult, ProxySettings, validate};
use crate::clock::{self, UnixTime};
use crate::config::Config;
use crate::crypto::keys::SigningAlg;
use crate::crypto::{random_token, sha256_hex};
use crate::oidc::keyring;
use crate::store::{AppChanges, AppOptions, AppSummary, NewApp, Store};

/// `app add` of an OpenID Connect app. No `Debug`: it may carry a secret.
#[derive(Clone)]
pub struct AddApp {
    /// Short name used in URLs and the issuer, e.g. `grafana`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Exact redirect URIs, matched string for string.
    pub redirect_uris: Vec<String>,
    /// A client that cannot keep a secret: no secret, PKCE required.
    pub public: bool,
    /// Only members of these groups may use the app; empty: every active user.
    pub groups: Vec<String>,
    pub options: AppOptionChanges,
    /// The client id to register under (an app whose configuration already
    /// names one, recreated by `latch apply`); `None`: a new random one.
    pub client_id: Option<String>,
    /// The client secret of a confidential app, when the operator supplies
    /// it (`latch apply` from a file or the environment); `None`: a new
    /// random one, returned once. Refused for a public client.
    pub client_secret: Option<String>,
}

/// Shown once, when an app is created or its secret rotated.
#[derive(Debug, Serialize)]
pub struct AppCredentials {
    pub client_id: String,
    /// `None` for a public client.
    pub client_secret: Option<String>,
    pub issuer: String,
    pub discovery_url: String,
}

impl AppCredentials {
    fn new(config: &Config, slug: &str, client_id: String, client_secret: Option<String>) -> Self {
        let issuer = issuer(config, slug);
        Self { client_id, client_secret, discovery_url: format!("{issuer}.well-known/openid-configuration"), issuer }
    }
}

fn issuer(config: &Config, slug: &str) -> String {
    config.public_url.join(&format!("/application/o/{slug}/"))
}

/// Registers an app; returns its client id and, for a confidential client,
/// its secret (stored hashed, so never shown again). Errors: `Invalid`
/// (slug, name, URIs, options, client id or secret), `Duplicate` app or
/// client id, `NotFound` group.
pub async fn add_app(store: &Store, config: &Config, actor: &Actor, command: AddApp) -> AdminResult<AppCredentials> {
    validate::slug(&command.slug)?;
    validate::display_name(&command.name)?;
    for uri in &command.redirect_uris {
        validate::redirect_uri(uri)?;
    }
    let options = command.options.resolve(AppOptions::default(), command.public)?;
    let client_secret = match (command.public, command.client_secret) {
        (true, Some(_)) => return Err(AdminError::invalid("client_secret", "a public client has no client secret")),
        (true, None) => None,
        (false, Some(secret)) => {
            validate::client_secret(&secret)?;
            Some(secret)
        }
        (false, None) => Some(random_token()),
    };
    let client_id = chosen_client_id(store, command.client_id).await?;
    let now = clock::now();
    ensure_signing_key(store, options.signing_alg, now).await?;
    let new_app = NewApp {
        slug: command.slug.clone(),
        name: command.name,
        client_id: client_id.clone(),
        client_secret_hash: client_secret.as_deref().map(sha256_hex),
        redirect_uris: command.redirect_uris,
        options,
    };
    store.create_app(new_app, &command.groups, now).await?;
    Change::to_app(ChangeKind::AppCreated, &command.slug).record(store, actor).await?;
    Ok(AppCredentials::new(config, &command.slug, client_id, client_secret))
}

/// `app update`: what is `None` or unset stays as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateApp {
    pub slug: String,
    /// A new display name.
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    /// The groups whose members may use the app; an empty list lets every
    /// active user in.
    pub groups: Option<Vec<String>>,
    pub options: AppOptionChanges,
}

/// Changes an app's settings, in one transaction. A new group list takes
/// effect at once, for tokens already issued too: every grant and check
/// applies the access rule. Errors: `NotFound` app or group, `Invalid`.
pub async fn update_app(store: &Store, actor: &Actor, command: UpdateApp) -> AdminResult<()> {
    let slug = command.slug.as_str();
    let app = store.app_by_slug(slug).await?.ok_or_else(|| AdminError::not_found("app", slug))?;
    if let Some(name) = &command.name {
        validate::display_name(name)?;
    }
    for uri in command.redirect_uris.as_deref().unwrap_or_default() {
        validate::redirect_uri(uri)?;
    }
    let options = command.options.resolve(app.options.clone(), app.is_public())?;
    if options.webfinger && !app.options.webfinger && store.proxy_app_by_slug(slug).await?.is_some() {
        return Err(AdminError::invalid("--webfinger", format!("{slug} is a proxy app: it has no issuer to name")));
    }
    ensure_signing_key(store, options.signing_alg, clock::now()).await?;
    let changes = AppChanges {
        name: command.name.as_deref(),
        redirect_uris: command.redirect_uris.as_deref(),
        groups: command.groups.as_deref(),
    };
    store.update_app(slug, &options, changes).await?;
    Change::to_app(ChangeKind::AppUpdated, slug).record(store, actor).await
}

/// Sets a confidential app's client secret to one the operator supplies
/// (`latch apply`, from a file or the environment); the old one stops
/// working at once. Errors: `NotFound` app, `Invalid` secret or a public
/// client.
pub async fn set_client_secret(store: &Store, actor: &Actor, slug: &str, secret: &str) -> AdminResult<()> {
    validate::client_secret(secret)?;
    store.app_by_slug(slug).await?.ok_or_else(|| AdminError::not_found("app", slug))?;
    if !store.set_client_secret_hash(slug, &sha256_hex(secret)).await? {
        return Err(AdminError::invalid("client_secret", format!("app {slug:?} is a public client and has no secret")));
    }
    Change::to_app(ChangeKind::AppSecretSet, slug).record(store, actor).await
}

/// Removes an app (OpenID Connect or proxy); its tokens and sessions stop
/// working. Errors: `NotFound` app.
pub async fn remove_app(store: &Store, actor: &Actor, slug: &str) -> AdminResult<()> {
    store.remove_app(slug).await?;
    Change::to_app(ChangeKind::AppRemoved, slug).record(store, actor).await
}

/// Replaces a confidential app's client secret; the old one stops working
/// at once. Errors: `NotFound` app, `Invalid` for a public client.
pub async fn rotate_secret(store: &Store, config: &Config, actor: &Actor, slug: &str) -> AdminResult<AppCredentials> {
    let app = store.app_by_slug(slug).await?.ok_or_else(|| AdminError::not_found("app", slug))?;
    let secret = random_token();
    if !store.set_client_secret_hash(slug, &sha256_hex(&secret)).await? {
        return Err(AdminError::invalid(
            "slug",
            format!("app {slug:?} is a public client and has no secret to rotate"),
        ));
    }
    Change::to_app(ChangeKind::AppSecretRotated, slug).record(store, actor).await?;
    Ok(AppCredentials::new(config, slug, app.client_id, Some(secret)))
}

/// Every app, by slug.
pub async fn list_apps(store: &Store) -> AdminResult<Vec<AppSummary>> {
    Ok(store.list_apps().await?)
}

/// What an operator configures for an app.
#[derive(Debug)]
pub enum AppDetails {
    Oidc(Box<OidcAppDetails>),
    Proxy(Box<ProxySettings>),
}

/// Everything an operator pastes into an OpenID Connect app's settings.
#[derive(Debug, Serialize)]
pub struct OidcAppDetails {
    pub slug: String,
    pub name: String,
    pub client_id: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub groups: Vec<String>,
    pub options: AppOptions,
    pub issuer: String,
    pub discovery_url: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub end_session_endpoint: String,
}

/// An app's settings and URLs. Errors: `NotFound` app.
pub async fn show_app(store: &Store, config: &Config, slug: &str) -> AdminResult<AppDetails> {
    if let Some(settings) = super::proxy::proxy_settings(store, config, slug).await? {
        return Ok(AppDetails::Proxy(Box::new(settings)));
    }
    let app = store
        .list_apps()
        .await?
        .into_iter()
        .find(|app| app.slug == slug)
        .ok_or_else(|| AdminError::not_found("app", slug))?;
    let issuer = issuer(config, slug);
    let url = |path: &str| config.public_url.join(path);
    Ok(AppDetails::Oidc(Box::new(OidcAppDetails {
        discovery_url: format!("{issuer}.well-known/openid-configuration"),
        issuer,
        authorization_endpoint: url("/application/o/authorize/"),
        token_endpoint: url("/application/o/token/"),
        userinfo_endpoint: url("/application/o/userinfo/"),
        jwks_uri: url(&format!("/application/o/{slug}/jwks/")),
        revocation_endpoint: url("/application/o/revoke/"),
        introspection_endpoint: url("/application/o/introspect/"),
        end_session_endpoint: url(&format!("/application/o/{slug}/end-session/")),
        slug: app.slug,
        name: app.name,
        client_id: app.client_id,
        public: app.public,
        redirect_uris: app.redirect_uris,
        groups: app.groups,
        options: app.options,
    })))
}

/// Makes sure a key of `alg` exists before an app asks for tokens signed
/// with it.
pub(super) async fn ensure_signing_key(store: &Store, alg: SigningAlg, now: UnixTime) -> AdminResult<()> {
    Ok(keyring::ensure_signing_key(store, alg, now).await?)
}

/// 160 random bits, hex: unguessable, and safe in any config file.
fn new_client_id() -> String {
    crate::crypto::secret::random_bytes::<20>().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The client id a new app gets: `chosen`, checked and not taken, or a new
/// random one. Errors: `Invalid` client id, `Duplicate` client id.
pub(super) async fn chosen_client_id(store: &Store, chosen: Option<String>) -> AdminResult<String> {
    let Some(client_id) = chosen else { return Ok(new_client_id()) };
    validate::client_id(&client_id)?;
    if store.app_by_client_id(&client_id).await?.is_some() {
        return Err(AdminError::Duplicate { kind: "client_id", name: client_id });
    }
    Ok(client_id)
}
