//! App presets: what each known app needs from its identity provider, as
//! data (`presets/<name>.toml`, embedded in the binary by `catalog`), each
//! fact with the app documentation or source it comes from. Pure logic:
//! parsing, checking, and expanding a preset's `{{placeholder}}` templates
//! with one deployment's values; registering the app is the admin layer's.

mod catalog;
mod template;

use serde::{Deserialize, Serialize};

use crate::crypto::keys::SigningAlg;
use crate::oidc::claims::{SUPPORTED_CLAIMS, known_scopes, user_claims};
use crate::store::UserClaims;
pub use template::{Placeholders, expand};

/// Claims every ID token carries, whatever the scope (OIDC Core §2).
const ALWAYS_IN_ID_TOKEN: [&str; 6] = ["iss", "sub", "aud", "exp", "iat", "auth_time"];

/// A preset that cannot be used: unknown, or a file that breaks the rules
/// below (caught by the unit tests before a release).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error("no preset named {name:?}; known presets: {known}")]
    Unknown { name: String, known: String },
    #[error("preset {name}: {reason}")]
    Invalid { name: String, reason: String },
    /// The operator's `--url`.
    #[error("invalid --url {value:?}: {reason}")]
    BaseUrl { value: String, reason: String },
}

/// One fact about an app and where it is stated: a link to the app's own
/// documentation or source (or a maintained integration guide).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fact<T> {
    pub value: T,
    pub source: String,
}

/// How the app signs people in through Latch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The app is an OpenID Connect client.
    Oidc,
    /// The app has no (usable) OpenID Connect: forward auth guards it.
    Proxy,
}

/// Whether the app can keep a client secret (RFC 6749 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Confidential,
    Public,
}

/// Per-app token lifetimes an app needs, as `app add` flags spell them
/// (`5m`, `30d`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Lifetimes {
    pub access_token_ttl: Option<String>,
    pub refresh_token_ttl: Option<String>,
    pub source: String,
}

/// One of the app's own settings (an environment variable, a config key, a
/// field of its admin page) and the value to give it: a template.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    pub name: String,
    pub value: String,
    pub source: String,
}

/// What the app needs from Latch as an OpenID Connect client.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcNeeds {
    /// Templates of the exact redirect URIs, from `{{url}}`.
    pub redirect_uris: Fact<Vec<String>>,
    /// Custom-scheme redirects of the app's mobile clients, registered too.
    pub mobile_redirect_uris: Option<Fact<Vec<String>>>,
    pub client_type: Fact<ClientType>,
    /// The ID token algorithm the app verifies.
    pub signing_alg: Fact<String>,
    /// The scopes the app requests (and the settings tell it to).
    pub scopes: Fact<Vec<String>>,
    /// Claims the app reads from the ID token itself, not userinfo.
    pub id_token_claims: Fact<Vec<String>>,
    /// Whether the app sends a PKCE challenge (S256).
    pub pkce: Fact<bool>,
    /// Whether the app keeps people signed in with refresh tokens.
    pub refresh_tokens: Fact<bool>,
    pub lifetimes: Option<Lifetimes>,
}

/// One app's preset, as its file states it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// The file's stem, e.g. `open-webui`.
    #[serde(default)]
    pub name: String,
    /// The app's own name, e.g. `Open WebUI`: the default display name.
    pub title: String,
    /// Where the settings go, e.g. "environment variables".
    pub configured_in: String,
    pub kind: Fact<Kind>,
    pub oidc: Option<OidcNeeds>,
    #[serde(default)]
    pub settings: Vec<Setting>,
    /// What must be done by hand in the app (templates too).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Every embedded preset, by name. Errors: `Invalid` for a file that does
/// not parse or breaks a rule (see `check`).
pub fn all() -> Result<Vec<Preset>, PresetError> {
    catalog::FILES.iter().map(|(name, text)| parse(name, text)).collect()
}

/// The preset called `name`. Errors: `Unknown` (listing the known names),
/// or `Invalid` as for `all`.
pub fn find(name: &str) -> Result<Preset, PresetError> {
    match catalog::FILES.iter().find(|(known, _)| *known == name) {
        Some((name, text)) => parse(name, text),
        None => Err(PresetError::Unknown { name: name.to_owned(), known: known_names().join(", ") }),
    }
}

fn known_names() -> Vec<&'static str> {
    catalog::FILES.iter().map(|(name, _)| *name).collect()
}

/// Parses and checks one preset file.
pub fn parse(name: &str, text: &str) -> Result<Preset, PresetError> {
    let invalid = |reason: String| PresetError::Invalid { name: name.to_owned(), reason };
    let mut preset: Preset = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
    preset.name = name.to_owned();
    preset.check().map_err(invalid)?;
    Ok(preset)
}

impl Preset {
    /// The rules every preset keeps: each fact cites an http(s) source;
    /// the kind and its facts agree; the algorithm, scopes and claims are
    /// ones Latch has, and the claims are released by the scopes; refresh
    /// tokens come with `offline_access`; a public client sends PKCE;
    /// every template names only placeholders of its kind.
    fn check(&self) -> Result<(), String> {
        for source in self.sources() {
            if !(source.starts_with("https://") || source.starts_with("http://")) {
                return Err(format!("source {source:?} is not a link"));
            }
        }
        match (self.kind.value, &self.oidc) {
            (Kind::Oidc, Some(oidc)) => oidc.check()?,
            (Kind::Proxy, None) => {}
            (Kind::Oidc, None) => return Err("an oidc preset needs an [oidc] table".into()),
            (Kind::Proxy, Some(_)) => return Err("a proxy preset has no [oidc] table".into()),
        }
        let placeholders = Placeholders::names(self.kind.value);
        for template in self.templates() {
            template::check(template, placeholders)?;
        }
        Ok(())
    }

    fn sources(&self) -> Vec<&str> {
        let mut sources = vec![self.kind.source.as_str()];
        sources.extend(self.settings.iter().map(|setting| setting.source.as_str()));
        if let Some(oidc) = &self.oidc {
            sources.extend(oidc.sources());
        }
        sources
    }

    fn templates(&self) -> Vec<&str> {
        let mut templates: Vec<&str> = self.settings.iter().map(|setting| setting.value.as_str()).collect();
        templates.extend(self.notes.iter().map(String::as_str));
        if let Some(oidc) = &self.oidc {
            templates.extend(oidc.all_redirect_uris().map(String::as_str));
        }
        templates
    }
}

impl OidcNeeds {
    fn check(&self) -> Result<(), String> {
        self.signing_alg.value.parse::<SigningAlg>().map_err(|error| error.to_string())?;
        let scope = self.scopes.value.join(" ");
        if known_scopes(&scope).len() != self.scopes.value.len() || !self.scopes.value.iter().any(|s| s == "openid") {
            return Err(format!("scopes {scope:?} must include openid and be ones Latch knows"));
        }
        let released = user_claims(&Self::anyone(), &scope);
        for claim in &self.id_token_claims.value {
            if !SUPPORTED_CLAIMS.contains(&claim.as_str()) {
                return Err(format!("Latch has no claim {claim:?}"));
            }
            if ALWAYS_IN_ID_TOKEN.contains(&claim.as_str()) || released.contains_key(claim) {
                continue;
            }
            return Err(format!("claim {claim:?} is not released by the scopes {scope:?}"));
        }
        if self.refresh_tokens.value && !self.scopes.value.iter().any(|s| s == "offline_access") {
            return Err("refresh tokens need the offline_access scope".into());
        }
        if self.client_type.value == ClientType::Public && !self.pkce.value {
            return Err("a public client must send PKCE".into());
        }
        if self.redirect_uris.value.is_empty() {
            return Err("at least one redirect URI is needed".into());
        }
        Ok(())
    }

    /// A person with every profile field filled in, for asking which claims
    /// a scope releases.
    fn anyone() -> UserClaims {
        let text = String::from("x x");
        UserClaims { id: text.clone(), username: text.clone(), email: text.clone(), name: text, groups: vec![] }
    }

    fn sources(&self) -> Vec<&str> {
        let mut sources = vec![
            self.redirect_uris.source.as_str(),
            self.client_type.source.as_str(),
            self.signing_alg.source.as_str(),
            self.scopes.source.as_str(),
            self.id_token_claims.source.as_str(),
            self.pkce.source.as_str(),
            self.refresh_tokens.source.as_str(),
        ];
        sources.extend(self.mobile_redirect_uris.iter().map(|fact| fact.source.as_str()));
        sources.extend(self.lifetimes.iter().map(|lifetimes| lifetimes.source.as_str()));
        sources
    }

    /// The web redirect URIs, then the mobile ones.
    pub fn all_redirect_uris(&self) -> impl Iterator<Item = &String> {
        self.redirect_uris.value.iter().chain(self.mobile_redirect_uris.iter().flat_map(|fact| &fact.value))
    }
}

/// The app's base URL as the operator gives it (`--url`): absolute http or
/// https, no query or fragment, kept without a trailing slash so that
/// templates append paths (`{{url}}/login/generic_oauth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    url: url::Url,
}

impl BaseUrl {
    /// Errors: `BaseUrl` saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, PresetError> {
        let refuse = |reason: &str| PresetError::BaseUrl { value: raw.to_owned(), reason: reason.to_owned() };
        let url = url::Url::parse(raw.trim()).map_err(|error| refuse(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(refuse("it must be an http or https URL with a host, e.g. https://grafana.example.com"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("it must be scheme, host, optional port and path only"));
        }
        Ok(Self { url })
    }

    /// The URL without a trailing slash, e.g. `https://example.com/hub`.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// Host and, when not the scheme's default, port.
    pub fn authority(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// Scheme, host and port: what a proxy app is registered at.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The path without a trailing slash; empty at the root.
    pub fn path(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests;
