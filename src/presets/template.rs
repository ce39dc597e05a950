//! `{{name}}` templates: a preset's redirect URIs, settings and notes,
//! filled in with one deployment's values. Double braces, so that a
//! setting whose value is JSON (Paperless-ngx's provider list) needs no
//! escaping: `{{` never occurs in JSON.

use super::Kind;

/// Placeholders every template may use: the app's base URL and its parts.
const COMMON: [&str; 6] = ["url", "url_scheme", "url_authority", "url_path", "slug", "name"];

/// Placeholders of an OpenID Connect app: its credentials and Latch's URLs.
const OIDC: [&str; 10] = [
    "client_id",
    "client_secret",
    "issuer",
    "discovery_url",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "scopes",
];

/// Placeholders of a proxy app: where the reverse proxy asks Latch.
const PROXY: [&str; 5] = ["outpost_url", "nginx_auth_url", "traefik_auth_url", "caddy_auth_url", "sign_out_url"];

/// The values of one app's placeholders.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    values: Vec<(&'static str, String)>,
}

impl Placeholders {
    /// The names a template of a `kind` preset may use.
    pub fn names(kind: Kind) -> &'static [&'static str] {
        const OIDC_NAMES: [&str; 16] = concat_names(COMMON, OIDC);
        const PROXY_NAMES: [&str; 11] = concat_names(COMMON, PROXY);
        match kind {
            Kind::Oidc => &OIDC_NAMES,
            Kind::Proxy => &PROXY_NAMES,
        }
    }

    /// Sets `name` (one of `names`) to `value`.
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.values.retain(|(known, _)| *known != name);
        self.values.push((name, value.into()));
        self
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(known, _)| *known == name).map(|(_, value)| value.as_str())
    }
}

const fn concat_names<const A: usize, const B: usize, const N: usize>(
    first: [&'static str; A],
    second: [&'static str; B],
) -> [&'static str; N] {
    let mut all = [""; N];
    let mut index = 0;
    while index < A {
        all[index] = first[index];
        index += 1;
    }
    while index < N {
        all[index] = second[index - A];
        index += 1;
    }
    all
}

/// `template` with every `{{name}}` replaced by its value. Errors: the
/// sentence naming a placeholder that is unknown or unclosed.
pub fn expand(template: &str, values: &Placeholders) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("unclosed {{{{ in {template:?}"))?;
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| format!("unknown placeholder {{{{{name}}}}} in {template:?}"))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `template` uses only `names`. Errors as `expand`.
pub(super) fn check(template: &str, names: &[&'static str]) -> Result<(), String> {
    let mut probe = Placeholders::default();
    for name in names {
        probe.set(name, "");
    }
    expand(template, &probe).map(drop)
}
