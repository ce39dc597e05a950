//! Per-app settings as an operator gives them, checked and applied to the
//! stored `AppOptions`.

use super::{AdminError, AdminResult, validate};
use crate::crypto::keys::SigningAlg;
use crate::store::{AppOptions, ConsentMode};

/// Settings shared by `app add` and `app update`; on update, only what is
/// given changes. Lifetimes are text such as `60s`, `5m` or `30d`, parsed
/// here so that every front end accepts the same forms and gets the same
/// refusals; `default` puts a lifetime back to the deployment's default.
#[derive(Debug, Default, Clone)]
pub struct AppOptionChanges {
    pub code_ttl: Option<String>,
    pub access_token_ttl: Option<String>,
    pub refresh_token_ttl: Option<String>,
    pub consent: Option<ConsentMode>,
    pub signing_alg: Option<SigningAlg>,
    /// Allow the client credentials grant (confidential apps only).
    pub client_credentials: Option<bool>,
    /// Replaces the list (`Some(vec![])` empties it).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `0` disables; at most ten minutes.
    pub refresh_token_reuse_grace: Option<String>,
    /// Where the app is told a session ended (Back-Channel Logout 1.0);
    /// `Some("")` removes it.
    pub backchannel_logout_uri: Option<String>,
    /// Allow the device authorization grant (RFC 8628).
    pub device_code: Option<bool>,
    pub device_code_ttl: Option<String>,
    /// What the account portal's launcher opens (an http or https URL);
    /// `Some("")` removes it.
    pub launch_url: Option<String>,
    /// Require a second factor to sign in to the app: `Some(Some(_))` sets
    /// it, `Some(None)` leaves it to the deployment's `require_mfa` again,
    /// `None` keeps the current setting (unset at creation: the
    /// deployment's).
    pub require_mfa: Option<Option<bool>>,
    /// Whether WebFinger names this app's issuer; marking it unmarks the
    /// app marked before (at most one is).
    pub webfinger: Option<bool>,
}

/// What a lifetime setting says to do.
const DEFAULT_LIFETIME: &str = "default";

/// A lifetime of `seconds` as the settings write it.
fn lifetime_text(seconds: Option<i64>) -> String {
    seconds.map_or_else(|| DEFAULT_LIFETIME.to_owned(), |seconds| format!("{seconds}s"))
}

impl AppOptionChanges {
    /// The changes that turn any app's options into `options`: every
    /// setting given. What `latch apply` sends to make an app match its file.
    pub fn replacing(options: &AppOptions) -> Self {
        Self {
            code_ttl: Some(lifetime_text(options.code_ttl)),
            access_token_ttl: Some(lifetime_text(options.access_token_ttl)),
            refresh_token_ttl: Some(lifetime_text(options.refresh_token_ttl)),
            consent: Some(options.consent),
            signing_alg: Some(options.signing_alg),
            client_credentials: Some(options.client_credentials),
            post_logout_redirect_uris: Some(options.post_logout_redirect_uris.clone()),
            refresh_token_reuse_grace: Some(format!("{}s", options.refresh_token_reuse_grace)),
            backchannel_logout_uri: Some(options.backchannel_logout_uri.clone().unwrap_or_default()),
            device_code: Some(options.device_code),
            device_code_ttl: Some(lifetime_text(options.device_code_ttl)),
            webfinger: Some(options.webfinger),
            require_mfa: Some(options.require_mfa),
            launch_url: Some(options.launch_url.clone().unwrap_or_default()),
        }
    }

    /// `options` with these changes applied, each checked. Errors: `Invalid`,
    /// naming the flag.
    pub fn resolve(&self, mut options: AppOptions, public: bool) -> AdminResult<AppOptions> {
        let ttl = |flag: &'static str, raw: &Option<String>, now: Option<i64>| -> AdminResult<Option<i64>> {
            match raw.as_deref() {
                None => Ok(now),
                Some(DEFAULT_LIFETIME) => Ok(None),
                Some(raw) => validate::lifetime(flag, raw).map(Some),
            }
        };
        options.code_ttl = ttl("--code-ttl", &self.code_ttl, options.code_ttl)?;
        options.access_token_ttl = ttl("--access-token-ttl", &self.access_token_ttl, options.access_token_ttl)?;
        options.refresh_token_ttl = ttl("--refresh-token-ttl", &self.refresh_token_ttl, options.refresh_token_ttl)?;
        options.device_code_ttl = ttl("--device-code-ttl", &self.device_code_ttl, options.device_code_ttl)?;
        options.device_code = self.device_code.unwrap_or(options.device_code);
        options.webfinger = self.webfinger.unwrap_or(options.webfinger);
        if let Some(required) = self.require_mfa {
            options.require_mfa = required;
        }
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
        if let Some(uris) = &self.post_logout_redirect_uris {
            for uri in uris {
                validate::redirect_uri(uri)?;
            }
            options.post_logout_redirect_uris = uris.clone();
        }
        match self.backchannel_logout_uri.as_deref() {
            Some("") => options.backchannel_logout_uri = None,
            Some(uri) => {
                validate::backchannel_logout_uri(uri)?;
                options.backchannel_logout_uri = Some(uri.to_owned());
            }
            None => {}
        }
        match self.launch_url.as_deref() {
            Some("") => options.launch_url = None,
            Some(url) => {
                validate::launch_url(url)?;
                options.launch_url = Some(url.to_owned());
            }
            None => {}
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_turns_any_options_into_the_given_ones() {
        let wanted = AppOptions {
            code_ttl: Some(30),
            refresh_token_ttl: Some(86_400),
            consent: ConsentMode::Explicit,
            signing_alg: SigningAlg::ES256,
            client_credentials: true,
            post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
            refresh_token_reuse_grace: 0,
            backchannel_logout_uri: Some("https://app.example.com/logout".into()),
            device_code: true,
            webfinger: true,
            require_mfa: Some(true),
            ..AppOptions::default()
        };
        let changes = AppOptionChanges::replacing(&wanted);
        assert_eq!(changes.resolve(AppOptions::default(), false).unwrap(), wanted);
        let back = AppOptionChanges::replacing(&AppOptions::default());
        assert_eq!(back.resolve(wanted, false).unwrap(), AppOptions::default(), "defaults come back too");
    }

    #[test]
    fn default_resets_a_lifetime_and_nothing_given_keeps_it() {
        let set = AppOptions { access_token_ttl: Some(600), ..AppOptions::default() };
        let keep = AppOptionChanges::default().resolve(set.clone(), false).unwrap();
        assert_eq!(keep.access_token_ttl, Some(600));
        let reset = AppOptionChanges { access_token_ttl: Some("default".into()), ..Default::default() };
        assert_eq!(reset.resolve(set, false).unwrap().access_token_ttl, None);
    }
}
