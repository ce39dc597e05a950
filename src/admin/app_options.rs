//! Per-app settings as an operator gives them, checked and applied to the
//! stored `AppOptions`.

use super::{AdminError, AdminResult, validate};
use crate::crypto::keys::SigningAlg;
use crate::store::{AppOptions, ConsentMode};

/// Settings shared by `app add` and `app update`; on update, only what is
/// given changes. Lifetimes are text such as `60s`, `5m` or `30d`, parsed
/// here so that every front end accepts the same forms and gets the same
/// refusals.
#[derive(Debug, Default, Clone)]
pub struct AppOptionChanges {
    pub code_ttl: Option<String>,
    pub access_token_ttl: Option<String>,
    pub refresh_token_ttl: Option<String>,
    pub consent: Option<ConsentMode>,
    pub signing_alg: Option<SigningAlg>,
    /// Allow the client credentials grant (confidential apps only).
    pub client_credentials: Option<bool>,
    /// Replaces the list when not empty.
    pub post_logout_redirect_uris: Vec<String>,
    /// `0` disables; at most ten minutes.
    pub refresh_token_reuse_grace: Option<String>,
    /// Where the app is told a session ended (Back-Channel Logout 1.0);
    /// `Some("")` removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Allow the device authorization grant (RFC 8628).
    pub device_code: Option<bool>,
    pub device_code_ttl: Option<String>,
    /// Require a second factor to sign in to the app; `None` keeps the
    /// current setting (unset at creation: the deployment's `require_mfa`).
    pub require_mfa: Option<bool>,
}

impl AppOptionChanges {
    /// `options` with these changes applied, each checked. Errors: `Invalid`,
    /// naming the flag.
    pub(super) fn apply(&self, mut options: AppOptions, public: bool) -> AdminResult<AppOptions> {
        let ttl = |flag: &'static str, raw: &Option<String>| -> AdminResult<Option<i64>> {
            raw.as_deref().map(|raw| validate::lifetime(flag, raw)).transpose()
        };
        options.code_ttl = ttl("--code-ttl", &self.code_ttl)?.or(options.code_ttl);
        options.access_token_ttl = ttl("--access-token-ttl", &self.access_token_ttl)?.or(options.access_token_ttl);
        options.refresh_token_ttl = ttl("--refresh-token-ttl", &self.refresh_token_ttl)?.or(options.refresh_token_ttl);
        options.device_code_ttl = ttl("--device-code-ttl", &self.device_code_ttl)?.or(options.device_code_ttl);
        options.device_code = self.device_code.unwrap_or(options.device_code);
        options.require_mfa = self.require_mfa.or(options.require_mfa);
        if let Some(grace) = &self.refresh_token_reuse_grace {
            options.refresh_token_reuse_grace = validate::reuse_grace("--refresh-token-reuse-grace", grace)?;
        }
        if let Some(consent) = self.consent {
            options.consent = consent;
        }
        if let Some(alg) = self.signing_alg {
            options.signing_alg = alg;
        }
        if let Some(enabled) = self.client_credentials {
            if enabled && public {
                return Err(AdminError::invalid(
                    "--client-credentials",
                    "a public client cannot use the client credentials grant",
                ));
            }
            options.client_credentials = enabled;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            for uri in &self.post_logout_redirect_uris {
                validate::redirect_uri(uri)?;
            }
            options.post_logout_redirect_uris = self.post_logout_redirect_uris.clone();
        }
        match self.backchannel_logout_uri.as_deref() {
            Some("") => options.backchannel_logout_uri = None,
            Some(uri) => {
                validate::backchannel_logout_uri(uri)?;
                options.backchannel_logout_uri = Some(uri.to_owned());
            }
            None => {}
        }
        Ok(options)
    }
}
