//! From what the file declares and what the database holds to the list of
//! changes that make the database match: pure, so every rule is a unit
//! test. The changes come in an order that never refers to what does not
//! exist yet: groups first, then people, then apps; with `--prune`, what
//! the file does not mention goes last (apps removed, people disabled,
//! groups removed), after nothing declared refers to it any more.

use std::collections::BTreeSet;

use super::change::Change;
use super::state::{Current, Desired, DesiredApp, DesiredKind, DesiredPerson, DesiredSecret};
use crate::admin::{ADMINISTRATORS, Membership, UpdateApp};
use crate::crypto::sha256_hex;
use crate::store::{AppOptions, AppSummary, UserSummary};

/// A declaration that cannot be applied: its line, what it declares
/// (`app grafana`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub line: usize,
    pub what: String,
    pub reason: String,
}

impl PlanError {
    pub fn new(line: usize, what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { line, what: what.into(), reason: reason.into() }
    }
}

/// The changes that make `current` what `desired` declares; with `prune`,
/// also removes apps and groups and disables people the file does not
/// mention (Latch deletes no one: disabling is how a person leaves).
/// Errors: a name declared twice, a group neither declared nor (without
/// `prune`) existing, and what cannot change in place (an app's client id,
/// kind, or proxy address).
pub fn plan(desired: &Desired, current: &Current, prune: bool) -> Result<Vec<Change>, PlanError> {
    check_unique(desired)?;
    let existing: BTreeSet<&str> = current.groups.iter().map(|group| group.name.as_str()).collect();
    let declared: BTreeSet<&str> = desired.groups.iter().map(|group| group.value.as_str()).collect();
    let known = |line: usize, what: &str, group: &str| {
        if declared.contains(group) || group == ADMINISTRATORS || !prune && existing.contains(group) {
            return Ok(());
        }
        let hint = if prune { " (with --prune, every group referred to must be declared)" } else { "" };
        Err(PlanError::new(line, what, format!("group {group:?} is not declared under [[group]]{hint}")))
    };
    let mut changes: Vec<Change> = declared
        .iter()
        .filter(|name| !existing.contains(*name))
        .map(|name| Change::AddGroup((*name).to_owned()))
        .collect();
    for person in &desired.people {
        let what = format!("person {}", person.value.username);
        for group in &person.value.groups {
            known(person.line, &what, group)?;
        }
        match current.users.iter().find(|user| user.username == person.value.username) {
            None => {
                changes.push(Change::AddPerson(person.value.clone()));
                if person.value.disabled {
                    changes.push(Change::DisablePerson(person.value.username.clone()));
                }
            }
            Some(user) => person_changes(&person.value, user, &mut changes),
        }
    }
    for app in &desired.apps {
        let what = format!("app {}", app.value.slug);
        for group in &app.value.groups {
            known(app.line, &what, group)?;
        }
        match current.apps.iter().find(|current| current.slug == app.value.slug) {
            None => changes.push(Change::AddApp(app.value.clone())),
            Some(current) => app_changes(&app.value, current, &mut changes)
                .map_err(|reason| PlanError::new(app.line, what, reason))?,
        }
    }
    if prune {
        prune_undeclared(desired, current, &declared, &mut changes);
    }
    Ok(changes)
}

/// Each group, username, slug and client id once, and WebFinger on at most
/// one app.
fn check_unique(desired: &Desired) -> Result<(), PlanError> {
    fn once<'a>(seen: &mut BTreeSet<&'a str>, line: usize, kind: &str, name: &'a str) -> Result<(), PlanError> {
        if seen.insert(name) {
            return Ok(());
        }
        Err(PlanError::new(line, format!("{kind} {name}"), format!("{kind} {name:?} is declared twice")))
    }
    let (mut groups, mut people, mut apps, mut client_ids) = Default::default();
    for group in &desired.groups {
        once(&mut groups, group.line, "group", &group.value)?;
    }
    for person in &desired.people {
        once(&mut people, person.line, "person", &person.value.username)?;
    }
    let mut webfinger: Option<&str> = None;
    for app in &desired.apps {
        once(&mut apps, app.line, "app", &app.value.slug)?;
        if let Some(client_id) = &app.value.client_id {
            once(&mut client_ids, app.line, "client_id", client_id)?;
        }
        if let DesiredKind::Oidc { options, .. } = &app.value.kind
            && options.webfinger
        {
            if let Some(first) = webfinger {
                let reason = format!("webfinger is on for app {first:?} already: at most one app answers WebFinger");
                return Err(PlanError::new(app.line, format!("app {}", app.value.slug), reason));
            }
            webfinger = Some(&app.value.slug);
        }
    }
    Ok(())
}

fn person_changes(person: &DesiredPerson, user: &UserSummary, changes: &mut Vec<Change>) {
    let email = (person.email != user.email).then(|| person.email.clone());
    let name = (person.name != user.name).then(|| person.name.clone());
    if email.is_some() || name.is_some() {
        changes.push(Change::UpdatePerson { username: person.username.clone(), email, name });
    }
    let membership = |group: &String| Membership { group: group.clone(), username: person.username.clone() };
    for group in person.groups.iter().filter(|group| !user.groups.contains(group)) {
        changes.push(Change::AddMember(membership(group)));
    }
    for group in user.groups.iter().filter(|group| !person.groups.contains(group)) {
        changes.push(Change::RemoveMember(membership(group)));
    }
    match (person.disabled, user.disabled) {
        (true, false) => changes.push(Change::DisablePerson(person.username.clone())),
        (false, true) => changes.push(Change::EnablePerson(person.username.clone())),
        _ => {}
    }
}

/// The changes to an existing app, or why it cannot become what the file
/// says.
fn app_changes(app: &DesiredApp, current: &AppSummary, changes: &mut Vec<Change>) -> Result<(), String> {
    if let Some(client_id) = app.client_id.as_ref().filter(|id| **id != current.client_id) {
        return Err(format!(
            "its client_id is {:?}, not {client_id:?}: a client id cannot change (remove the app first to replace it)",
            current.client_id
        ));
    }
    let mut update = UpdateApp { slug: app.slug.clone(), ..UpdateApp::default() };
    let mut fields = Vec::new();
    match (&app.kind, &current.external_url) {
        (DesiredKind::Proxy { external_url, cookie_domain, require_mfa }, Some(current_url)) => {
            if external_url != current_url || *cookie_domain != current.cookie_domain {
                return Err("a proxy app's external_url and cookie_domain cannot change: remove the app first".into());
            }
            if *require_mfa != current.options.require_mfa {
                fields.push("require_mfa".to_owned());
                update.options.require_mfa = Some(*require_mfa);
            }
        }
        (DesiredKind::Proxy { .. }, None) => return Err("it is an OpenID Connect app, not a proxy app".into()),
        (DesiredKind::Oidc { .. }, Some(_)) => return Err("it is a proxy app: remove `proxy` or the app first".into()),
        (DesiredKind::Oidc { public, redirect_uris, options, secret }, None) => {
            if *public != current.public {
                let kinds = |public: bool| if public { "public" } else { "confidential" };
                return Err(format!(
                    "it is a {} client, not a {} one: remove the app first to change that",
                    kinds(current.public),
                    kinds(*public)
                ));
            }
            if *redirect_uris != current.redirect_uris {
                fields.push("redirect_uris".to_owned());
                update.redirect_uris = Some(redirect_uris.clone());
            }
            let differing = option_differences(options, &current.options);
            if !differing.is_empty() {
                fields.extend(differing);
                update.options = crate::admin::AppOptionChanges::replacing(options);
            }
            if let Some(DesiredSecret::Known(known)) = secret
                && current.client_secret_hash.as_deref() != Some(sha256_hex(&known.value).as_str())
            {
                changes.push(Change::SetSecret { slug: app.slug.clone(), secret: known.clone() });
            }
        }
    }
    if app.name != current.name {
        fields.insert(0, "name".to_owned());
        update.name = Some(app.name.clone());
    }
    let mut current_groups = current.groups.clone();
    current_groups.sort();
    if app.groups != current_groups {
        fields.push("groups".to_owned());
        update.groups = Some(app.groups.clone());
    }
    if !fields.is_empty() {
        changes.push(Change::UpdateApp { update, fields });
    }
    Ok(())
}

/// The names of the settings that differ, as `app show --json` names them.
fn option_differences(wanted: &AppOptions, current: &AppOptions) -> Vec<String> {
    let as_map = |options: &AppOptions| match serde_json::to_value(options) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (wanted, current) = (as_map(wanted), as_map(current));
    wanted.iter().filter(|(key, value)| current.get(key.as_str()) != Some(*value)).map(|(key, _)| key.clone()).collect()
}

/// With `--prune`: apps not declared are removed, people not declared are
/// disabled, groups not declared are removed (but for the built-in
/// `ADMINISTRATORS`, which always exists).
fn prune_undeclared(desired: &Desired, current: &Current, declared_groups: &BTreeSet<&str>, changes: &mut Vec<Change>) {
    let declared_app = |slug: &str| desired.apps.iter().any(|app| app.value.slug == slug);
    let declared_person = |username: &str| desired.people.iter().any(|person| person.value.username == username);
    for app in current.apps.iter().filter(|app| !declared_app(&app.slug)) {
        changes.push(Change::RemoveApp(app.slug.clone()));
    }
    for user in current.users.iter().filter(|user| !user.disabled && !declared_person(&user.username)) {
        changes.push(Change::DisablePerson(user.username.clone()));
    }
    let undeclared = |name: &str| !declared_groups.contains(name) && name != ADMINISTRATORS;
    for group in current.groups.iter().filter(|group| undeclared(&group.name)) {
        changes.push(Change::RemoveGroup(group.name.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::{KnownSecret, Located};
    use super::*;
    use crate::store::GroupSummary;

    fn at<T>(value: T) -> Located<T> {
        Located { line: 7, value }
    }

    fn person(username: &str, groups: &[&str]) -> DesiredPerson {
        DesiredPerson {
            username: username.into(),
            email: format!("{username}@example.com"),
            name: username.into(),
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            disabled: false,
        }
    }

    fn user(username: &str, groups: &[&str]) -> UserSummary {
        UserSummary {
            id: format!("id-{username}"),
            username: username.into(),
            email: format!("{username}@example.com"),
            name: username.into(),
            disabled: false,
            groups: groups.iter().map(|group| (*group).to_owned()).collect(),
            created_at: 0,
        }
    }

    fn oidc_app(slug: &str, secret: &str) -> DesiredApp {
        DesiredApp {
            slug: slug.into(),
            name: slug.into(),
            client_id: None,
            groups: Vec::new(),
            kind: DesiredKind::Oidc {
                public: false,
                redirect_uris: vec![format!("https://{slug}.example.com/cb")],
                options: AppOptions::default(),
                secret: Some(DesiredSecret::Known(KnownSecret {
                    value: secret.into(),
                    source: "environment variable S".into(),
                })),
            },
        }
    }

    fn stored_app(slug: &str, secret: &str) -> AppSummary {
        AppSummary {
            slug: slug.into(),
            name: slug.into(),
            client_id: format!("client-{slug}"),
            public: false,
            client_secret_hash: Some(sha256_hex(secret)),
            redirect_uris: vec![format!("https://{slug}.example.com/cb")],
            groups: Vec::new(),
            options: AppOptions::default(),
            external_url: None,
            cookie_domain: None,
        }
    }

    fn group(name: &str) -> GroupSummary {
        GroupSummary { name: name.into(), members: Vec::new() }
    }

    fn listed(changes: &[Change]) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_empty_database_gets_everything_in_dependency_order() {
        let desired = Desired {
            groups: vec![at("staff".to_owned())],
            people: vec![at(DesiredPerson { disabled: true, ..person("ada", &["staff"]) })],
            apps: vec![at(oidc_app("web", "s"))],
        };
        let changes = plan(&desired, &Current::default(), false).unwrap();
        assert_eq!(
            listed(&changes),
            [
                "+ group staff",
                "+ person ada <ada@example.com> in staff",
                "~ person ada: disabled",
                "+ app web (client secret from environment variable S)"
            ]
        );
    }

    #[test]
    fn a_matching_database_needs_no_change() {
        let desired = Desired {
            groups: vec![at("staff".to_owned())],
            people: vec![at(person("ada", &["staff"]))],
            apps: vec![at(DesiredApp { client_id: Some("client-web".into()), ..oidc_app("web", "s") })],
        };
        let current = Current {
            groups: vec![group("staff")],
            users: vec![user("ada", &["staff"])],
            apps: vec![stored_app("web", "s")],
        };
        assert!(plan(&desired, &current, true).unwrap().is_empty());
    }

    #[test]
    fn differences_become_updates_naming_what_changes() {
        let mut app = oidc_app("web", "new secret");
        if let DesiredKind::Oidc { options, redirect_uris, .. } = &mut app.kind {
            options.access_token_ttl = Some(600);
            redirect_uris.push("https://web.example.com/other".into());
        }
        app.name = "Web".into();
        app.groups = vec!["staff".into()];
        let desired = Desired {
            people: vec![at(DesiredPerson { email: "ada@new.example.com".into(), ..person("ada", &["staff"]) })],
            apps: vec![at(app)],
            ..Desired::default()
        };
        let current = Current {
            groups: vec![group("staff"), group("old")],
            users: vec![disabled_user("ada", &["old"])],
            apps: vec![stored_app("web", "old secret")],
        };
        assert_eq!(
            listed(&plan(&desired, &current, false).unwrap()),
            [
                "~ person ada: email",
                "+ ada in group staff",
                "- ada from group old",
                "~ person ada: enabled",
                "~ app web: client secret from environment variable S",
                "~ app web: name, redirect_uris, access_token_ttl, groups",
            ]
        );
    }

    #[test]
    fn without_prune_nothing_unmentioned_goes_and_with_it_everything_does() {
        let desired = Desired { groups: vec![at("staff".to_owned())], ..Desired::default() };
        let current = Current {
            groups: vec![group(ADMINISTRATORS), group("staff"), group("old")],
            users: vec![user("ada", &[]), disabled_user("bob", &[])],
            apps: vec![stored_app("web", "s")],
        };
        assert!(plan(&desired, &current, false).unwrap().is_empty());
        assert_eq!(
            listed(&plan(&desired, &current, true).unwrap()),
            ["- app web", "~ person ada: disabled", "- group old"]
        );
    }

    #[test]
    fn refusals_name_the_line_and_the_reason() {
        let current = Current { groups: vec![group("old")], apps: vec![stored_app("web", "s")], ..Current::default() };
        let undeclared = Desired { people: vec![at(person("ada", &["old"]))], ..Desired::default() };
        assert!(plan(&undeclared, &current, false).is_ok(), "an existing group may be referred to");
        let admin = Desired { people: vec![at(person("ada", &[ADMINISTRATORS]))], ..Desired::default() };
        assert!(plan(&admin, &current, true).is_ok(), "the built-in group need not be declared");
        let error = plan(&undeclared, &current, true).unwrap_err();
        assert_eq!((error.line, error.what.as_str()), (7, "person ada"));
        assert!(error.reason.contains("\"old\" is not declared"), "{error:?}");

        let twice = Desired { groups: vec![at("a".to_owned()), at("a".to_owned())], ..Desired::default() };
        assert!(plan(&twice, &current, false).unwrap_err().reason.contains("declared twice"));

        let moved = Desired {
            apps: vec![at(DesiredApp { client_id: Some("other".into()), ..oidc_app("web", "s") })],
            ..Desired::default()
        };
        assert!(plan(&moved, &current, false).unwrap_err().reason.contains("client id cannot change"));

        let mut public = oidc_app("web", "s");
        public.kind = DesiredKind::Oidc {
            public: true,
            redirect_uris: vec!["https://web.example.com/cb".into()],
            options: AppOptions::default(),
            secret: None,
        };
        let public = Desired { apps: vec![at(public)], ..Desired::default() };
        assert!(plan(&public, &current, false).unwrap_err().reason.contains("confidential client, not a public one"));

        let webfinger = |slug: &str| {
            let mut app = oidc_app(slug, "s");
            if let DesiredKind::Oidc { options, .. } = &mut app.kind {
                options.webfinger = true;
            }
            at(app)
        };
        let two = Desired { apps: vec![webfinger("a"), webfinger("b")], ..Desired::default() };
        assert!(plan(&two, &current, false).unwrap_err().reason.contains("at most one app"));
    }

    #[test]
    fn proxy_apps_compare_their_address_and_refuse_to_move() {
        let proxy = |url: &str| DesiredApp {
            slug: "up".into(),
            name: "up".into(),
            client_id: None,
            groups: Vec::new(),
            kind: DesiredKind::Proxy { external_url: url.into(), cookie_domain: None, require_mfa: None },
        };
        let stored = AppSummary {
            public: true,
            client_secret_hash: None,
            redirect_uris: Vec::new(),
            external_url: Some("https://up.example.com".into()),
            ..stored_app("up", "s")
        };
        let current = Current { apps: vec![stored], ..Current::default() };
        let same = Desired { apps: vec![at(proxy("https://up.example.com"))], ..Desired::default() };
        assert!(plan(&same, &current, false).unwrap().is_empty());
        let mut strict = proxy("https://up.example.com");
        strict.kind = DesiredKind::Proxy {
            external_url: "https://up.example.com".into(),
            cookie_domain: None,
            require_mfa: Some(true),
        };
        let strict = Desired { apps: vec![at(strict)], ..Desired::default() };
        assert_eq!(listed(&plan(&strict, &current, false).unwrap()), ["~ app up: require_mfa"]);
        let moved = Desired { apps: vec![at(proxy("https://elsewhere.example.com"))], ..Desired::default() };
        assert!(plan(&moved, &current, false).unwrap_err().reason.contains("cannot change"));
    }

    #[test]
    fn the_listing_never_shows_a_secret() {
        let change = Change::AddApp(oidc_app("web", "the-very-secret-value"));
        assert!(!format!("{change} {change:?}").contains("the-very-secret-value"));
    }

    fn disabled_user(username: &str, groups: &[&str]) -> UserSummary {
        UserSummary { disabled: true, ..user(username, groups) }
    }
}
