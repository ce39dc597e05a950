//! The `app add`/`app update` flags that map onto admin commands.

use crate::admin::AppOptionChanges;
use crate::crypto::keys::SigningAlg;
use crate::store::ConsentMode;

/// Per-app settings, shared by `app add` and `app update`; on update, only
/// what is given changes. The lifetimes have ids of their own: clap keys
/// values by id, and the deployment-wide defaults in `ConfigArgs` use the
/// plain names (`--default-code-ttl`), so a shared id would hand an app's
/// `--code-ttl` to the deployment setting as well.
#[derive(Debug, Default, Clone, PartialEq, clap::Args)]
pub struct AppOptionArgs {
    /// Lifetime of this app's authorization codes, e.g. 60s.
    #[arg(long, id = "app_code_ttl")]
    pub code_ttl: Option<String>,
    /// Lifetime of this app's access and ID tokens, e.g. 5m.
    #[arg(long, id = "app_access_token_ttl")]
    pub access_token_ttl: Option<String>,
    /// Lifetime of this app's refresh tokens (sliding), e.g. 30d.
    #[arg(long, id = "app_refresh_token_ttl")]
    pub refresh_token_ttl: Option<String>,
    /// implicit: no consent page (your own apps); explicit: ask each user once.
    #[arg(long)]
    pub consent: Option<ConsentMode>,
    /// Algorithm of this app's ID and access tokens.
    #[arg(long)]
    pub signing_alg: Option<SigningAlg>,
    /// Allow the client credentials grant (confidential apps only).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub client_credentials: Option<bool>,
    /// Exact URI the app may return to after sign-out (repeatable; replaces the list).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// How long a rotated refresh token may be presented again (two tabs, a
    /// retry) and get the same successor, e.g. 60s; 0 disables. Default 60s.
    #[arg(long)]
    pub refresh_token_reuse_grace: Option<String>,
    /// Where Latch POSTs a logout token when a session the app received
    /// tokens in ends (OpenID Connect Back-Channel Logout); "" removes it.
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// Allow the device authorization grant (RFC 8628): devices without a
    /// browser show a code that a person enters at /device.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub device_code: Option<bool>,
    /// Lifetime of this app's device codes, e.g. 10m (the default).
    #[arg(long)]
    pub device_code_ttl: Option<String>,
    /// Require a second factor (TOTP, passkey) to sign in to this app;
    /// without it the deployment's require_mfa setting decides.
    #[arg(long, id = "app_require_mfa", num_args = 0..=1, default_missing_value = "true")]
    pub require_mfa: Option<bool>,
}

impl From<AppOptionArgs> for AppOptionChanges {
    fn from(args: AppOptionArgs) -> Self {
        Self {
            code_ttl: args.code_ttl,
            access_token_ttl: args.access_token_ttl,
            refresh_token_ttl: args.refresh_token_ttl,
            consent: args.consent,
            signing_alg: args.signing_alg,
            client_credentials: args.client_credentials,
            post_logout_redirect_uris: args.post_logout_redirect_uris,
            refresh_token_reuse_grace: args.refresh_token_reuse_grace,
            backchannel_logout_uri: args.backchannel_logout_uri,
            device_code: args.device_code,
            device_code_ttl: args.device_code_ttl,
            require_mfa: args.require_mfa,
        }
    }
}

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

/// The `app add` flags of an app registered from a preset.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct PresetArgs {
    /// Register the app as this known app needs it (`latch app presets`
    /// lists them), e.g. grafana, and print the settings to paste into it.
    #[arg(long, requires = "url", conflicts_with_all = ["redirect_uris", "public", "proxy"])]
    pub preset: Option<String>,
    /// With --preset: the app's base URL, e.g. https://grafana.example.com.
    #[arg(long, requires = "preset")]
    pub url: Option<String>,
}
