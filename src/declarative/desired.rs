//! The parsed file checked entry by entry, with the same rules as the admin
//! commands (`admin::validate`), so that a bad file is refused before
//! anything changes; secrets are read from where the file says.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::file::{AppEntry, Declared, PersonEntry, SecretEntry, line_of};
use super::plan::PlanError;
use super::state::{Desired, DesiredApp, DesiredKind, DesiredPerson, DesiredSecret, KnownSecret, Located};
use crate::admin::{AddApp, AddPresetApp, AdminError, AppOptionChanges, PresetCommand, preset_command, validate};
use crate::canonical::UnknownValue;
use crate::proxy::target;
use crate::store::AppOptions;

/// Checks every entry of `file` (read from `text`, in directory `base`)
/// and reads the secrets it names. Errors: the first bad entry, with its
/// line.
pub fn from_file(text: &str, file: &Declared, base: &Path) -> Result<Desired, PlanError> {
    let mut desired = Desired::default();
    for group in &file.groups {
        let line = line_of(text, &group.name);
        let name = group.name.get_ref();
        validate::group_name(name).map_err(refusal(line, &format!("group {name}")))?;
        desired.groups.push(Located { line, value: name.clone() });
    }
    for entry in &file.people {
        let line = line_of(text, &entry.username);
        let what = format!("person {}", entry.username.get_ref());
        desired.people.push(Located { line, value: person(entry).map_err(refusal(line, &what))? });
    }
    for entry in &file.apps {
        let line = line_of(text, &entry.slug);
        let what = format!("app {}", entry.slug.get_ref());
        desired
            .apps
            .push(Located { line, value: app(entry, base).map_err(|reason| PlanError::new(line, what, reason))? });
    }
    Ok(desired)
}

fn refusal(line: usize, what: &str) -> impl Fn(AdminError) -> PlanError + '_ {
    move |error| PlanError::new(line, what, error.to_string())
}

fn person(entry: &PersonEntry) -> Result<DesiredPerson, AdminError> {
    let username = entry.username.get_ref();
    validate::username(username)?;
    validate::email(&entry.email)?;
    let name = entry.name.as_deref().unwrap_or(username).trim().to_owned();
    validate::display_name(&name)?;
    for group in &entry.groups {
        validate::group_name(group)?;
    }
    Ok(DesiredPerson {
        username: username.clone(),
        email: entry.email.clone(),
        name,
        groups: sorted(&entry.groups),
        disabled: entry.disabled,
    })
}

/// Sorted, without repeats: how memberships and access policies compare.
fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names.dedup();
    names
}

/// One app entry checked; the error is the sentence shown.
fn app(entry: &AppEntry, base: &Path) -> Result<DesiredApp, String> {
    let slug = entry.slug.get_ref();
    validate::slug(slug).map_err(|error| error.to_string())?;
    validate::display_name(&entry.name).map_err(|error| error.to_string())?;
    if let Some(client_id) = &entry.client_id {
        validate::client_id(client_id).map_err(|error| error.to_string())?;
    }
    for group in &entry.groups {
        validate::group_name(group).map_err(|error| error.to_string())?;
    }
    let start = preset_start(entry)?;
    let kind = match (&entry.proxy, start) {
        (None, Some(PresetCommand::Proxy(add))) => {
            let given = entry.oidc_settings_given();
            if !given.is_empty() {
                return Err(format!("a proxy preset takes no OpenID Connect settings: remove {}", given.join(", ")));
            }
            DesiredKind::Proxy { external_url: add.external_url, cookie_domain: None, require_mfa: entry.require_mfa }
        }
        (Some(_), Some(_)) => return Err("a preset app takes its settings from preset and url: remove proxy".into()),
        (None, Some(PresetCommand::Oidc(add))) => oidc(entry, Some(add), base)?,
        (Some(proxy), None) => {
            let given = entry.oidc_settings_given();
            if !given.is_empty() {
                return Err(format!("a proxy app takes no OpenID Connect settings: remove {}", given.join(", ")));
            }
            let external =
                target::external_url(&proxy.external_url).map_err(|reason| format!("external_url: {reason}"))?;
            let cookie_domain = proxy
                .cookie_domain
                .as_deref()
                .map(|domain| target::cookie_domain(&external, domain))
                .transpose()
                .map_err(|reason| format!("cookie_domain: {reason}"))?;
            DesiredKind::Proxy {
                external_url: external.origin().to_owned(),
                cookie_domain,
                require_mfa: entry.require_mfa,
            }
        }
        (None, None) => oidc(entry, None, base)?,
    };
    Ok(DesiredApp {
        slug: slug.clone(),
        name: entry.name.clone(),
        client_id: entry.client_id.clone(),
        groups: sorted(&entry.groups),
        kind,
    })
}

/// What the entry's preset would register, when it names one. Errors: a
/// preset without `url` (or the reverse), an unknown preset, a bad `url`.
fn preset_start(entry: &AppEntry) -> Result<Option<PresetCommand>, String> {
    let (preset, url) = match (&entry.preset, &entry.url) {
        (None, None) => return Ok(None),
        (Some(preset), Some(url)) => (preset, url),
        (Some(_), None) => return Err("preset needs url = \"<the app's base URL>\"".into()),
        (None, Some(_)) => return Err("url is the base URL for a preset: add preset = \"<name>\" or remove url".into()),
    };
    let command = AddPresetApp {
        slug: entry.slug.get_ref().clone(),
        preset: preset.clone(),
        url: url.clone(),
        name: Some(entry.name.clone()),
        groups: entry.groups.clone(),
    };
    preset_command(command).map(Some).map_err(file_keys)
}

/// An admin error's sentence with the flags it names (`--access-token-ttl`)
/// spelled as the file's keys (`access_token_ttl`).
fn file_keys(error: AdminError) -> String {
    match error {
        AdminError::Invalid { field, reason } if field.starts_with("--") => {
            reason.replace(field, &field.trim_start_matches('-').replace('-', "_"))
        }
        other => other.to_string(),
    }
}

/// The settings of an OpenID Connect app entry, as `app add` would store
/// them: the preset's (`start`) where the entry does not say.
fn oidc(entry: &AppEntry, start: Option<AddApp>, base: &Path) -> Result<DesiredKind, String> {
    let (start_public, start_uris, start_options) = match start {
        Some(add) => (add.public, add.redirect_uris, add.options),
        None => (false, Vec::new(), AppOptionChanges::default()),
    };
    let public = entry.public.unwrap_or(start_public);
    let redirect_uris = entry.redirect_uris.clone().unwrap_or(start_uris);
    for uri in &redirect_uris {
        validate::redirect_uri(uri).map_err(|error| error.to_string())?;
    }
    let changes = AppOptionChanges {
        code_ttl: entry.code_ttl.clone().or(start_options.code_ttl),
        access_token_ttl: entry.access_token_ttl.clone().or(start_options.access_token_ttl),
        refresh_token_ttl: entry.refresh_token_ttl.clone().or(start_options.refresh_token_ttl),
        consent: one_of("consent", &entry.consent)?.or(start_options.consent),
        signing_alg: one_of("signing_alg", &entry.signing_alg)?.or(start_options.signing_alg),
        client_credentials: entry.client_credentials.or(start_options.client_credentials),
        post_logout_redirect_uris: entry.post_logout_redirect_uris.clone().or(start_options.post_logout_redirect_uris),
        refresh_token_reuse_grace: entry.refresh_token_reuse_grace.clone().or(start_options.refresh_token_reuse_grace),
        backchannel_logout_uri: entry.backchannel_logout_uri.clone().or(start_options.backchannel_logout_uri),
        device_code: entry.device_code.or(start_options.device_code),
        device_code_ttl: entry.device_code_ttl.clone().or(start_options.device_code_ttl),
        webfinger: entry.webfinger.or(start_options.webfinger),
        launch_url: entry.launch_url.clone().or(start_options.launch_url),
        require_mfa: Some(entry.require_mfa),
    };
    let options = changes.resolve(AppOptions::default(), public).map_err(file_keys)?;
    let secret = match (&entry.client_secret, public) {
        (Some(_), true) => return Err("a public client has no client_secret: remove it".into()),
        (None, true) => None,
        (None, false) => {
            return Err("a confidential app needs client_secret = { env = \"…\" }, { file = \"…\" } or \
                        { generate = \"…\" } (or public = true)"
                .into());
        }
        (Some(source), false) => Some(secret(source, base)?),
    };
    Ok(DesiredKind::Oidc { public, redirect_uris, options, secret })
}

/// A setting with a closed set of values, when given.
fn one_of<T: FromStr<Err = UnknownValue>>(key: &str, raw: &Option<String>) -> Result<Option<T>, String> {
    raw.as_deref().map(str::parse).transpose().map_err(|error| format!("{key}: {error}"))
}

/// Reads a declared secret. Errors: an unset variable, an unreadable file,
/// a secret `admin::validate::client_secret` refuses.
fn secret(entry: &SecretEntry, base: &Path) -> Result<DesiredSecret, String> {
    let (value, source) = match entry {
        SecretEntry::Env(name) => {
            let value =
                std::env::var(name).map_err(|_| format!("client_secret: environment variable {name} is not set"))?;
            (value, format!("environment variable {name}"))
        }
        SecretEntry::File(path) => read_secret(&resolve(base, path))?,
        SecretEntry::Generate(path) => {
            let path = resolve(base, path);
            if !path.exists() {
                return Ok(DesiredSecret::Generate(path));
            }
            read_secret(&path)?
        }
    };
    validate::client_secret(&value).map_err(|error| format!("client_secret from {source}: {error}"))?;
    Ok(DesiredSecret::Known(KnownSecret { value, source }))
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_owned() } else { base.join(path) }
}

/// A secret file's content without one trailing line break, and where it
/// came from.
fn read_secret(path: &Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("client_secret: cannot read {}: {error}", path.display()))?;
    let value = text.strip_suffix('\n').map(|rest| rest.strip_suffix('\r').unwrap_or(rest)).unwrap_or(&text);
    Ok((value.to_owned(), format!("file {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::super::file::parse;
    use super::*;

    fn checked(text: &str) -> Result<Desired, PlanError> {
        from_file(text, &parse(text).unwrap(), Path::new("/nonexistent"))
    }

    #[test]
    fn bad_values_are_refused_with_their_line() {
        let error = checked("[[group]]\nname = \"ok\"\n\n[[person]]\nusername = \"a b\"\nemail = \"a@example.com\"\n")
            .unwrap_err();
        assert_eq!((error.line, error.what.as_str()), (5, "person a b"));
        assert!(error.reason.contains("invalid username"), "{error:?}");
        let ttl = "[[app]]\nslug = \"web\"\nname = \"Web\"\npublic = true\naccess_token_ttl = \"soon\"\n";
        let error = checked(ttl).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("access_token_ttl"), "{error:?}");
        let proxy = "[[app]]\nslug = \"up\"\nname = \"Up\"\npublic = true\nproxy = { external_url = \"https://up.example.com\" }\n";
        assert!(checked(proxy).unwrap_err().reason.contains("remove public"));
        let no_secret = "[[app]]\nslug = \"web\"\nname = \"Web\"\n";
        assert!(checked(no_secret).unwrap_err().reason.contains("needs client_secret"));
        let unset =
            "[[app]]\nslug = \"web\"\nname = \"Web\"\nclient_secret = { env = \"LATCH_TEST_SURELY_UNSET_VARIABLE\" }\n";
        assert!(checked(unset).unwrap_err().reason.contains("LATCH_TEST_SURELY_UNSET_VARIABLE is not set"));
        let alg = "[[app]]\nslug = \"web\"\nname = \"Web\"\npublic = true\nsigning_alg = \"HS256\"\n";
        assert!(checked(alg).unwrap_err().reason.contains("HS256"));
    }

    #[test]
    fn a_preset_gives_the_starting_settings_and_the_entry_overrides_them() {
        let text = "[[app]]\nslug = \"graf\"\nname = \"Grafana\"\npreset = \"grafana\"\nurl = \"https://grafana.example.com\"\n\
                    client_secret = { generate = \"s\" }\naccess_token_ttl = \"7m\"\n";
        let app = checked(text).unwrap().apps.remove(0).value;
        let DesiredKind::Oidc { redirect_uris, options, public, .. } = &app.kind else { panic!("an OIDC app") };
        assert_eq!(redirect_uris, &["https://grafana.example.com/login/generic_oauth"]);
        assert!(!public);
        assert_eq!(options.access_token_ttl, Some(420));
        let proxy =
            "[[app]]\nslug = \"up\"\nname = \"Up\"\npreset = \"uptime-kuma\"\nurl = \"https://up.example.com/\"\n";
        let DesiredKind::Proxy { external_url, .. } = checked(proxy).unwrap().apps.remove(0).value.kind else {
            panic!("a proxy app")
        };
        assert_eq!(external_url, "https://up.example.com");
        let unknown = "[[app]]\nslug = \"x\"\nname = \"X\"\npreset = \"nope\"\nurl = \"https://x.example.com\"\n";
        let error = checked(unknown).unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("no preset named \"nope\""), "{error:?}");
        let bad_url = "[[app]]\nslug = \"x\"\nname = \"X\"\npreset = \"grafana\"\nurl = \"ftp://x\"\n";
        assert!(checked(bad_url).unwrap_err().reason.contains("invalid url"));
        let no_url = "[[app]]\nslug = \"x\"\nname = \"X\"\npreset = \"grafana\"\n";
        assert!(checked(no_url).unwrap_err().reason.contains("preset needs url"));
    }

    #[test]
    fn a_missing_generate_file_means_generate_and_defaults_fill_in() {
        let text = "[[app]]\nslug = \"web\"\nname = \"Web\"\nclient_secret = { generate = \"s/web\" }\ngroups = [\"b\", \"a\", \"b\"]\n";
        let desired = checked(text).unwrap();
        let app = &desired.apps[0].value;
        assert_eq!(app.groups, ["a", "b"]);
        let DesiredKind::Oidc { secret, options, .. } = &app.kind else { panic!("an OpenID Connect app") };
        assert_eq!(*secret, Some(DesiredSecret::Generate("/nonexistent/s/web".into())));
        assert_eq!(*options, AppOptions::default());
    }
}
