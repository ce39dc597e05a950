//! The file `latch apply` reads and `latch export` writes (TOML):
//!
//! ```toml
//! [[group]]
//! name = "family"
//!
//! [[person]]
//! username = "ada"
//! email = "ada@example.com"
//! name = "Ada Lovelace"      # default: the username
//! groups = ["family"]        # exactly these memberships
//! disabled = false
//!
//! [[app]]
//! slug = "grafana"
//! name = "Grafana"
//! client_id = "3f0c…"        # default: a new random one
//! groups = ["family"]        # the access policy: only these; none: every active person
//! redirect_uris = ["https://grafana.example.com/login/generic_oauth"]
//! client_secret = { env = "GRAFANA_CLIENT_SECRET" }   # or { file = "…" } or { generate = "…" }
//! access_token_ttl = "10m"   # and every other `latch app add` setting
//!
//! [[app]]
//! slug = "uptime"
//! name = "Uptime Kuma"
//! proxy = { external_url = "https://uptime.example.com", cookie_domain = "example.com" }
//! ```
//!
//! Unknown keys are refused (a typo must not pass for a default). Names
//! that later checks refer to carry their position (`Spanned`), so a
//! refusal names the line.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupEntry>,
    #[serde(default, rename = "person", skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<PersonEntry>,
    #[serde(default, rename = "app", skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppEntry>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    pub name: Spanned<String>,
}

/// A person. No password: a new person gets a generated one, printed once.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PersonEntry {
    pub username: Spanned<String>,
    pub email: String,
    /// Full name as apps show it; absent: the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The groups the person is in: exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
}

/// An app: OpenID Connect unless `proxy` is given. The settings are those
/// of `latch app add`, named as its flags are (`--code-ttl` → `code_ttl`);
/// an absent setting is the default, as on `app add`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppEntry {
    pub slug: Spanned<String>,
    pub name: String,
    /// Absent: a new random one when the app is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Only members of these groups may use the app (the access policy);
    /// empty: every active person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// A forward-auth app, guarded by the reverse proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyEntry>,
    /// An app preset (`latch app presets`) giving the starting settings,
    /// which the entry's own keys override; needs `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// The app's base URL for `preset`, e.g. `https://grafana.example.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Required for a confidential OpenID Connect app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_credentials: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_reuse_grace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_code: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_code_ttl: Option<String>,
    /// WebFinger names this app's issuer (at most one app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webfinger: Option<bool>,
    /// What the account portal's launcher opens for this app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_url: Option<String>,
    /// Signing in needs a second factor (proxy apps too); absent: the
    /// deployment's `require_mfa` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_mfa: Option<bool>,
}

impl AppEntry {
    /// The OpenID Connect settings the entry gives, by name, for refusing
    /// them on a proxy app.
    pub fn oidc_settings_given(&self) -> Vec<&'static str> {
        let given = [
            ("public", self.public.is_some()),
            ("redirect_uris", self.redirect_uris.is_some()),
            ("client_secret", self.client_secret.is_some()),
            ("code_ttl", self.code_ttl.is_some()),
            ("access_token_ttl", self.access_token_ttl.is_some()),
            ("refresh_token_ttl", self.refresh_token_ttl.is_some()),
            ("consent", self.consent.is_some()),
            ("signing_alg", self.signing_alg.is_some()),
            ("client_credentials", self.client_credentials.is_some()),
            ("post_logout_redirect_uris", self.post_logout_redirect_uris.is_some()),
            ("refresh_token_reuse_grace", self.refresh_token_reuse_grace.is_some()),
            ("backchannel_logout_uri", self.backchannel_logout_uri.is_some()),
            ("device_code", self.device_code.is_some()),
            ("device_code_ttl", self.device_code_ttl.is_some()),
            ("webfinger", self.webfinger.is_some()),
            ("launch_url", self.launch_url.is_some()),
        ];
        given.into_iter().filter(|(_, set)| *set).map(|(key, _)| key).collect()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyEntry {
    /// The URL people open the app at, e.g. `https://uptime.example.com`.
    pub external_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<String>,
}

/// Where a confidential app's client secret comes from. Relative paths are
/// relative to the applied file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretEntry {
    /// The value of this environment variable.
    Env(String),
    /// This file's content (one trailing line break ignored).
    File(PathBuf),
    /// This file's content; when the file does not exist and the app is
    /// new, a random secret is written to it (mode 0600). An existing app
    /// whose file is missing keeps its secret.
    Generate(PathBuf),
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A refusal of the file's text: position (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses the file. Errors: `SyntaxError` for bad TOML, unknown keys and
/// values of the wrong type.
pub fn parse(text: &str) -> Result<Declared, SyntaxError> {
    toml::from_str(text).map_err(|error| {
        let (line, column) = error.span().map_or((1, 1), |span| position(text, span.start));
        SyntaxError { line, column, message: error.message().trim().to_owned() }
    })
}

/// The 1-based line and column of byte `offset` in `text`.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// The 1-based line `value` starts on.
pub fn line_of<T>(text: &str, value: &Spanned<T>) -> usize {
    position(text, value.span().start).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses() {
        let text = r#"
[[group]]
name = "family"

[[person]]
username = "ada"
email = "ada@example.com"
groups = ["family"]
disabled = true

[[app]]
slug = "grafana"
name = "Grafana"
redirect_uris = ["https://grafana.example.com/cb"]
client_secret = { env = "GRAFANA_SECRET" }
access_token_ttl = "10m"

[[app]]
slug = "uptime"
name = "Uptime"
proxy = { external_url = "https://uptime.example.com" }
"#;
        let file = parse(text).unwrap();
        assert_eq!(file.groups[0].name.get_ref(), "family");
        assert!(file.people[0].disabled);
        assert_eq!(line_of(text, &file.people[0].username), 6);
        assert_eq!(file.apps[0].client_secret, Some(SecretEntry::Env("GRAFANA_SECRET".into())));
        assert_eq!(file.apps[1].proxy.as_ref().unwrap().external_url, "https://uptime.example.com");
        assert!(file.apps[1].oidc_settings_given().is_empty());
        assert_eq!(file.apps[0].oidc_settings_given(), ["redirect_uris", "client_secret", "access_token_ttl"]);
    }

    #[test]
    fn unknown_keys_and_bad_syntax_name_their_line() {
        let typo = "[[app]]\nslug = \"x\"\nname = \"X\"\nredirect_uri = [\"https://x.example.com/cb\"]\n";
        let error = parse(typo).unwrap_err();
        assert_eq!(error.line, 4, "{error:?}");
        assert!(error.message.contains("unknown field `redirect_uri`"), "{error:?}");
        let secret = "[[app]]\nslug = \"x\"\nname = \"X\"\nclient_secret = { environment = \"X\" }\n";
        assert_eq!(parse(secret).unwrap_err().line, 4);
        let error = parse("[[group]]\nname = \n").unwrap_err();
        assert_eq!(error.line, 2, "{error:?}");
        let error = parse("[[people]]\nusername = \"ada\"\n").unwrap_err();
        assert!(error.message.contains("unknown field `people`"), "{error:?}");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let text = "[[group]]\nname = \"family\"\n\n[[app]]\nslug = \"web\"\nname = \"Web\"\n\
                    redirect_uris = [\"https://web.example.com/cb\"]\nclient_secret = { generate = \"secrets/web\" }\n\n\
                    [[app]]\nslug = \"up\"\nname = \"Up\"\nproxy = { external_url = \"https://up.example.com\" }\n";
        let written = toml::to_string(&parse(text).unwrap()).unwrap();
        let again = parse(&written).unwrap();
        assert_eq!(toml::to_string(&again).unwrap(), written);
        assert_eq!(again.apps[0].client_secret, Some(SecretEntry::Generate("secrets/web".into())));
        assert_eq!(again.apps[1].proxy.as_ref().unwrap().external_url, "https://up.example.com");
    }
}
