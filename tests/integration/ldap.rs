//! The LDAP interface, driven by real clients: OpenLDAP's `ldapsearch`,
//! `ldapwhoami` and `ldapdelete` (Debian `ldap-utils`) over plain LDAP,
//! StartTLS and LDAPS, and Dovecot signing a person in over IMAP with an
//! LDAP passdb (Debian `dovecot-imapd` + `dovecot-ldap`) and Syncthing's
//! GUI with LDAP authentication (Debian `syncthing`), both unmodified.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{Backend, Browser, Options, TestApp, poll_until};
use crate::on_every_backend;

const BASE: &str = "dc=example,dc=com";

/// The OpenLDAP client tools, or `None` (with a notice) when they are not
/// installed outside CI; `.ci/run` installs them.
fn ldap_utils() -> Option<()> {
    if Path::new("/usr/bin/ldapsearch").is_file() {
        return Some(());
    }
    if std::env::var_os("CI").is_some() {
        panic!("ldap-utils is required under CI (.ci/run installs it)");
    }
    eprintln!("SKIPPED (ldap-utils not installed)");
    None
}

async fn spawn(backend: Backend, options: Options) -> Option<TestApp> {
    ldap_utils()?;
    TestApp::spawn_with(backend, Options { ldap: true, ..options }).await
}

/// Runs an OpenLDAP client tool with `args`; `ca`: the certificate to trust.
async fn tool(name: &str, args: &[&str], ca: Option<&Path>) -> Output {
    let mut command = tokio::process::Command::new(name);
    command.args(args);
    if let Some(ca) = ca {
        command.env("LDAPTLS_CACERT", ca).env("LDAPTLS_REQCERT", "demand");
    }
    command.output().await.expect("run an ldap-utils tool")
}

/// `ldapsearch -LLL` as `bind` (DN, password; `None`: anonymous); its exit
/// code and standard output.
async fn search(url: &str, bind: Option<(&str, &str)>, base: &str, rest: &[&str]) -> (i32, String) {
    let mut args = vec!["-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-b", base];
    if let Some((dn, password)) = bind {
        args.extend(["-D", dn, "-w", password]);
    }
    args.extend(rest);
    let output = tool("ldapsearch", &args, None).await;
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `ldapwhoami` as `dn` with `password`: the authorization identity, or the
/// exit code (49: invalidCredentials).
async fn whoami(url: &str, dn: &str, password: &str, extra: &[&str], ca: Option<&Path>) -> Result<String, i32> {
    let mut args = vec!["-x", "-H", url, "-D", dn, "-w", password];
    args.extend(extra);
    let output = tool("ldapwhoami", &args, ca).await;
    match output.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
        code => Err(code.unwrap_or(-1)),
    }
}

fn person(username: &str) -> String {
    format!("uid={username},ou=people,{BASE}")
}

/// The `dn:` lines of LDIF output.
fn dns(ldif: &str) -> Vec<&str> {
    ldif.lines().filter_map(|line| line.strip_prefix("dn: ")).collect()
}

async fn add_person(app: &TestApp, username: &str, name: &str, password: &str, groups: &[&str]) {
    let email = format!("{username}@example.com");
    let mut args = vec!["user", "add", username, "--email", &email, "--name", name, "--password-stdin"];
    for group in groups {
        args.extend(["--group", group]);
    }
    let output = app.latch(&args, Some(password)).await;
    assert!(output.status.success(), "user add: {}", String::from_utf8_lossy(&output.stderr));
}

#[derive(serde::Deserialize)]
struct Account {
    dn: String,
    password: String,
}

async fn add_account(app: &TestApp, name: &str, groups: &[&str]) -> Account {
    let mut args = vec!["ldap", "account", "add", name, "--json"];
    for group in groups {
        args.extend(["--group", group]);
    }
    serde_json::from_str(&app.admin(&args).await).expect("ldap account add --json prints JSON")
}

/// Ada (in `staff`) and Bob (in no group).
async fn staff(app: &TestApp) {
    app.admin(&["group", "add", "staff"]).await;
    add_person(app, "ada", "Ada King Lovelace", "ada's password 1", &["staff"]).await;
    add_person(app, "bob", "Bob", "bob's password 1", &[]).await;
}

on_every_backend!(
    the_directory_answers_what_apps_ask,
    binds_follow_the_store_at_once,
    app_passwords_bind_over_ldap_only,
    a_deployment_requiring_a_second_factor_binds_app_passwords_only,
    a_restricted_account_sees_only_its_groups,
    python_ldap3_binds_searches_and_pages,
);

async fn the_directory_answers_what_apps_ask(backend: Backend) {
    let Some(app) = spawn(backend, Options::default()).await else { return };
    let url = app.ldap_url.clone().expect("LDAP is on");
    staff(&app).await;

    // Probing clients read the root DSE and the subschema without binding.
    let (code, root) = search(&url, None, "", &["-s", "base", "(objectClass=*)", "+"]).await;
    assert_eq!(code, 0, "{root}");
    for line in [
        "namingContexts: dc=example,dc=com",
        "supportedLDAPVersion: 3",
        "supportedControl: 1.2.840.113556.1.4.319",
        "supportedExtension: 1.3.6.1.4.1.4203.1.11.3",
        "subschemaSubentry: cn=Subschema",
    ] {
        assert!(root.contains(line), "{line} missing from\n{root}");
    }
    let (code, schema) = search(&url, None, "cn=Subschema", &["-s", "base", "(objectClass=subschema)", "+"]).await;
    assert!(code == 0 && schema.contains("objectClasses: ( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson'"), "{schema}");
    // An anonymous bind succeeds, but may not search the directory.
    assert_eq!(whoami(&url, "", "", &[], None).await, Ok("anonymous".into()));
    let (code, _) = search(&url, None, BASE, &["(uid=ada)"]).await;
    assert_eq!(code, 50, "insufficientAccessRights");

    let reader = add_account(&app, "reader", &[]).await;
    assert_eq!(reader.dn, format!("cn=reader,ou=services,{BASE}"));
    assert_eq!(whoami(&url, &reader.dn, &reader.password, &[], None).await, Ok(format!("dn:{}", reader.dn)));
    assert_eq!(whoami(&url, &reader.dn, "not the secret", &[], None).await, Err(49));
    let bind = Some((reader.dn.as_str(), reader.password.as_str()));

    let (code, ada) = search(&url, bind, BASE, &["(&(objectClass=inetOrgPerson)(uid=ADA))", "*", "+"]).await;
    assert_eq!(code, 0, "{ada}");
    let users: serde_json::Value = serde_json::from_str(&app.admin(&["user", "list", "--json"]).await).unwrap();
    let sub = users[0]["id"].as_str().unwrap();
    for line in [
        format!("dn: {}", person("ada")),
        "objectClass: inetOrgPerson".into(),
        "objectClass: person".into(),
        "objectClass: organizationalPerson".into(),
        "uid: ada".into(),
        "cn: Ada King Lovelace".into(),
        "displayName: Ada King Lovelace".into(),
        "givenName: Ada King".into(),
        "sn: Lovelace".into(),
        "mail: ada@example.com".into(),
        format!("memberOf: cn=staff,ou=groups,{BASE}"),
        format!("entryUUID: {sub}"),
    ] {
        assert!(ada.contains(&line), "{line} missing from\n{ada}");
    }
    assert_eq!(dns(&ada).len(), 1, "{ada}");

    // Filters as Jellyfin, Syncthing, Calibre-Web and Dovecot send them.
    let found = async |filter: &str| {
        let (code, ldif) = search(&url, bind, BASE, &[filter, "1.1"]).await;
        assert_eq!(code, 0, "{filter}: {ldif}");
        dns(&ldif).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let staff_filter = format!("(&(objectClass=person)(memberOf=CN=Staff,OU=Groups,{BASE}))");
    assert_eq!(found(&staff_filter).await, [person("ada")]);
    assert_eq!(found("(&(objectClass=inetOrgPerson)(|(uid=bob)(mail=bob@example.com)))").await, [person("bob")]);
    assert_eq!(found("(&(objectClass=person)(mail=*@EXAMPLE.com))").await, [person("ada"), person("bob")]);
    assert_eq!(found("(&(uid=*)(!(uid=ada)))").await, [person("bob")]);
    assert_eq!(found("(&(objectClass=person)(displayName=*))").await.len(), 2);
    assert!(found("(uid=nobody)").await.is_empty());
    let (code, groups) =
        search(&url, bind, &format!("ou=groups,{BASE}"), &["-s", "one", "(objectClass=groupOfNames)"]).await;
    assert!(code == 0 && groups.contains(&format!("member: {}", person("ada"))), "{groups}");
    assert!(groups.contains(&format!("uniqueMember: {}", person("ada"))) && groups.contains("cn: staff"), "{groups}");
    // Scopes: the base alone, one level, the subtree.
    let (_, base) = search(&url, bind, BASE, &["-s", "base", "(objectClass=*)", "1.1"]).await;
    assert_eq!(dns(&base), [BASE]);
    let (_, one) = search(&url, bind, BASE, &["-s", "one", "(objectClass=*)", "1.1"]).await;
    assert_eq!(dns(&one), [format!("ou=people,{BASE}"), format!("ou=groups,{BASE}")]);
    let (_, sub) = search(&url, bind, BASE, &["-s", "sub", "(objectClass=*)", "1.1"]).await;
    // The base, two units, two people, staff and the built-in latch-admins.
    assert_eq!(dns(&sub).len(), 7, "{sub}");
    let (code, _) = search(&url, bind, &person("nobody"), &["-s", "base", "(objectClass=*)"]).await;
    assert_eq!(code, 32, "noSuchObject");

    // Attribute selection: named attributes only, `1.1` none.
    let (_, named) = search(&url, bind, BASE, &["(uid=ada)", "mail", "commonName"]).await;
    assert_eq!(named.lines().filter(|line| !line.is_empty()).count(), 3, "{named}");
    // A size limit, and pages of one (RFC 2696) that together give all.
    let (code, limited) = search(&url, bind, BASE, &["-z", "1", "(objectClass=person)", "1.1"]).await;
    assert_eq!((code, dns(&limited).len()), (4, 1), "sizeLimitExceeded: {limited}");
    let (code, paged) = search(&url, bind, BASE, &["-E", "pr=1/noprompt", "(objectClass=person)", "1.1"]).await;
    assert_eq!(code, 0, "{paged}");
    assert_eq!(dns(&paged), [person("ada"), person("bob")]);

    // The directory is read-only.
    let deleted =
        tool("ldapdelete", &["-x", "-H", &url, "-D", &reader.dn, "-w", &reader.password, &person("bob")], None).await;
    assert_eq!(deleted.status.code(), Some(53), "unwillingToPerform");

    // A person reads their own entry, and no one else's.
    let ada_bind = Some((person("ada"), "ada's password 1"));
    let ada_bind = ada_bind.as_ref().map(|(dn, password)| (dn.as_str(), *password));
    let (code, own) = search(&url, ada_bind, BASE, &["(objectClass=person)", "1.1"]).await;
    assert_eq!((code, dns(&own)), (0, vec![person("ada").as_str()]));
    let (_, other) = search(&url, ada_bind, &person("bob"), &["-s", "base", "(objectClass=*)"]).await;
    assert!(dns(&other).is_empty(), "{other}");

    // Binds and searches are in the audit trail and the metrics.
    let events = app.admin(&["events", "--json"]).await;
    assert!(events.contains("ldap_bind_success") && events.contains("ldap_search"), "{events}");
    let metrics = crate::common::http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"latch_ldap_operations_total{operation="bind",outcome="success"}"#), "{metrics}");
    let status = app.admin(&["ldap", "status"]).await;
    assert!(
        status.contains(&format!("people:       uid=<username>,ou=people,{BASE}")) && status.contains("reader"),
        "{status}"
    );
}

async fn binds_follow_the_store_at_once(backend: Backend) {
    let Some(app) = spawn(backend, Options::default()).await else { return };
    let url = app.ldap_url.clone().expect("LDAP is on");
    staff(&app).await;
    let reader = add_account(&app, "reader", &[]).await;
    let bind = Some((reader.dn.as_str(), reader.password.as_str()));

    assert_eq!(whoami(&url, &person("ada"), "ada's password 1", &[], None).await, Ok(format!("dn:{}", person("ada"))));
    assert_eq!(whoami(&url, &person("ada"), "wrong", &[], None).await, Err(49));
    assert_eq!(whoami(&url, &person("nobody"), "wrong", &[], None).await, Err(49));
    assert_eq!(whoami(&url, "uid=ada,ou=people,dc=other", "ada's password 1", &[], None).await, Err(49));

    // A new password works at the next bind; the old one no longer does.
    let changed = app.latch(&["user", "passwd", "ada", "--password-stdin"], Some("ada's password 2")).await;
    assert!(changed.status.success());
    assert_eq!(whoami(&url, &person("ada"), "ada's password 1", &[], None).await, Err(49));
    assert!(whoami(&url, &person("ada"), "ada's password 2", &[], None).await.is_ok());

    // Leaving a group shows at the next search.
    let staff_filter = format!("(memberOf=cn=staff,ou=groups,{BASE})");
    assert_eq!(dns(&search(&url, bind, BASE, &[&staff_filter, "1.1"]).await.1).len(), 1);
    app.admin(&["group", "remove-member", "staff", "ada"]).await;
    assert!(dns(&search(&url, bind, BASE, &[&staff_filter, "1.1"]).await.1).is_empty());

    // A disabled person cannot bind and leaves the directory.
    app.admin(&["user", "disable", "ada"]).await;
    assert_eq!(whoami(&url, &person("ada"), "ada's password 2", &[], None).await, Err(49));
    assert!(dns(&search(&url, bind, BASE, &["(uid=ada)", "1.1"]).await.1).is_empty());

    // A removed search account can no longer bind.
    app.admin(&["ldap", "account", "remove", "reader"]).await;
    assert_eq!(search(&url, bind, BASE, &["(uid=bob)"]).await.0, 49);
}

async fn app_passwords_bind_over_ldap_only(backend: Backend) {
    let Some(app) = spawn(backend, Options::default()).await else { return };
    let url = app.ldap_url.clone().expect("LDAP is on");
    staff(&app).await;
    #[derive(serde::Deserialize)]
    struct Added {
        password: String,
    }
    let added: Added =
        serde_json::from_str(&app.admin(&["user", "app-password", "add", "ada", "phone-mail", "--json"]).await)
            .unwrap();
    let second: Added =
        serde_json::from_str(&app.admin(&["user", "app-password", "add", "ada", "laptop", "--json"]).await).unwrap();
    let duplicate = app.latch(&["user", "app-password", "add", "ada", "laptop"], None).await;
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    let unknown = app.latch(&["user", "app-password", "add", "nobody", "x"], None).await;
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user named \"nobody\""));

    assert!(whoami(&url, &person("ada"), &added.password, &[], None).await.is_ok());
    assert!(whoami(&url, &person("ada"), &second.password, &[], None).await.is_ok());
    assert!(whoami(&url, &person("ada"), "ada's password 1", &[], None).await.is_ok());
    assert_eq!(whoami(&url, &person("bob"), &added.password, &[], None).await, Err(49), "Ada's, not Bob's");
    // Not a password for the sign-in page.
    let browser = Browser::new();
    let refused = browser.sign_in(&app.base, "ada", &added.password).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let listed = app.admin(&["user", "app-password", "list", "ada"]).await;
    assert!(
        listed.contains("phone-mail") && listed.contains("laptop") && !listed.contains(&added.password),
        "{listed}"
    );
    app.admin(&["user", "app-password", "remove", "ada", "phone-mail"]).await;
    assert_eq!(whoami(&url, &person("ada"), &added.password, &[], None).await, Err(49));
    assert!(whoami(&url, &person("ada"), &second.password, &[], None).await.is_ok());
    let events = app.admin(&["events", "--user", "ada"]).await;
    assert!(events.contains("app_password_created") && events.contains("app_password_removed"), "{events}");

    // Someone with a second factor binds with app passwords only: a bind
    // cannot ask for the factor, so the account password alone opens nothing.
    app.admin(&["user", "mfa", "totp", "ada"]).await;
    assert_eq!(whoami(&url, &person("ada"), "ada's password 1", &[], None).await, Err(49));
    assert!(whoami(&url, &person("ada"), &second.password, &[], None).await.is_ok());
    app.admin(&["user", "mfa", "reset", "ada"]).await;
    assert!(whoami(&url, &person("ada"), "ada's password 1", &[], None).await.is_ok(), "no factor left");
}

async fn a_deployment_requiring_a_second_factor_binds_app_passwords_only(backend: Backend) {
    let Some(app) = spawn(backend, Options { require_mfa: Some("true"), ..Options::default() }).await else { return };
    let url = app.ldap_url.clone().expect("LDAP is on");
    staff(&app).await;
    let added: serde_json::Value =
        serde_json::from_str(&app.admin(&["user", "app-password", "add", "ada", "mail", "--json"]).await).unwrap();
    assert_eq!(whoami(&url, &person("ada"), "ada's password 1", &[], None).await, Err(49));
    assert!(whoami(&url, &person("ada"), added["password"].as_str().unwrap(), &[], None).await.is_ok());
}

async fn a_restricted_account_sees_only_its_groups(backend: Backend) {
    let Some(app) = spawn(backend, Options::default()).await else { return };
    let url = app.ldap_url.clone().expect("LDAP is on");
    staff(&app).await;
    app.admin(&["group", "add", "family"]).await;
    app.admin(&["group", "add-member", "family", "bob"]).await;
    app.admin(&["group", "add-member", "family", "ada"]).await;
    let jellyfin = add_account(&app, "jellyfin", &["staff"]).await;
    let bind = Some((jellyfin.dn.as_str(), jellyfin.password.as_str()));

    let (code, everything) = search(&url, bind, BASE, &["(objectClass=*)", "memberOf"]).await;
    assert_eq!(code, 0);
    let seen = dns(&everything);
    assert!(seen.contains(&person("ada").as_str()) && seen.contains(&format!("cn=staff,ou=groups,{BASE}").as_str()));
    assert!(!seen.contains(&person("bob").as_str()) && !everything.contains("family"), "{everything}");
    assert!(dns(&search(&url, bind, &person("bob"), &["-s", "base", "(objectClass=*)"]).await.1).is_empty());
    let unknown = app.latch(&["ldap", "account", "add", "x", "--group", "nope"], None).await;
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no group named \"nope\""));
    let listed = app.admin(&["ldap", "account", "list"]).await;
    assert!(listed.contains("jellyfin") && listed.contains("staff"), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_ldaps_with_real_clients() {
    if ldap_utils().is_none() {
        return;
    }
    let options = Options { ldap_tls: true, ..Default::default() };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await.expect("SQLite");
    staff(&app).await;
    let (url, ldaps) = (app.ldap_url.clone().unwrap(), app.ldaps_url.clone().unwrap());
    let ca = app.ldap_ca();
    let me = Ok(format!("dn:{}", person("ada")));
    assert_eq!(whoami(&url, &person("ada"), "ada's password 1", &["-ZZ"], Some(&ca)).await, me);
    assert_eq!(whoami(&ldaps, &person("ada"), "ada's password 1", &[], Some(&ca)).await, me);
    assert_eq!(whoami(&ldaps, &person("ada"), "wrong", &[], Some(&ca)).await, Err(49));
    let (code, root) = search(&url, None, "", &["-s", "base", "+"]).await;
    assert!(code == 0 && root.contains("supportedExtension: 1.3.6.1.4.1.1466.20037"), "{root}");
    // A client that does not trust the certificate refuses it.
    let untrusted =
        tool("ldapwhoami", &["-x", "-H", &ldaps], Some(Path::new("/etc/ssl/certs/ca-certificates.crt"))).await;
    assert!(!untrusted.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_refused_when_no_certificate_is_configured() {
    let Some(app) = spawn(Backend::Sqlite, Options::default()).await else { return };
    let url = app.ldap_url.clone().unwrap();
    let output = tool("ldapwhoami", &["-x", "-ZZ", "-H", &url], None).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Protocol error"), "{output:?}");
}

/// Failures over LDAP on one instance and on the sign-in page of another
/// add up to one lock, which `latch user unlock` lifts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_and_web_failures_share_one_lock_across_instances() {
    if ldap_utils().is_none() {
        return;
    }
    let options = || Options { ldap: true, login_max_failures: Some("3"), ..Default::default() };
    let Some(first) = TestApp::spawn_with(Backend::Postgres, options()).await else { return };
    let shared = Options { database_url: Some(first.database_url.clone()), ..options() };
    let second = TestApp::spawn_with(Backend::Postgres, shared).await.expect("a second instance");
    staff(&first).await;
    let (url_a, url_b) = (first.ldap_url.clone().unwrap(), second.ldap_url.clone().unwrap());
    assert_eq!(whoami(&url_a, &person("ada"), "wrong 1", &[], None).await, Err(49));
    assert_eq!(whoami(&url_b, &person("ada"), "wrong 2", &[], None).await, Err(49));
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&second.base, "ada", "wrong 3").await.status(), StatusCode::UNAUTHORIZED);
    // Locked now: the right password fails on both instances and both interfaces.
    assert_eq!(whoami(&url_a, &person("ada"), "ada's password 1", &[], None).await, Err(49));
    assert_eq!(browser.sign_in(&first.base, "ada", "ada's password 1").await.status(), StatusCode::UNAUTHORIZED);
    let events = first.admin(&["events", "--user", "ada"]).await;
    assert!(events.contains("locked after repeated failures"), "{events}");
    first.admin(&["user", "unlock", "ada"]).await;
    assert!(whoami(&url_b, &person("ada"), "ada's password 1", &[], None).await.is_ok());
}

/// Dovecot, unmodified, with an LDAP passdb: it searches with a search
/// account, then binds as the person found (`auth_bind`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_signs_people_in_over_ldap() {
    let Some(dovecot_binary) = dovecot() else { return };
    let Some(app) = spawn(Backend::Sqlite, Options::default()).await else { return };
    staff(&app).await;
    let account = add_account(&app, "dovecot", &["staff"]).await;
    let dovecot = Dovecot::start(&dovecot_binary, app.ldap_url.as_deref().unwrap(), &account).await;

    assert!(dovecot.login("ada", "ada's password 1").await, "{}", dovecot.log());
    assert!(!dovecot.login("ada", "wrong").await);
    assert!(!dovecot.login("bob", "bob's password 1").await, "Bob is not in staff: the account does not find him");
    let changed = app.latch(&["user", "passwd", "ada", "--password-stdin"], Some("ada's password 2")).await;
    assert!(changed.status.success());
    assert!(!dovecot.login("ada", "ada's password 1").await, "no cache: the old password fails at once");
    assert!(dovecot.login("ada", "ada's password 2").await, "{}", dovecot.log());
}

/// Syncthing's GUI with LDAP authentication: it binds as the person
/// (`uid=%s,…`), then searches for their entry with the README's filter,
/// which admits only members of `staff`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncthing_gui_signs_people_in_over_ldap() {
    let Some(binary) = syncthing() else { return };
    let Some(app) = spawn(Backend::Sqlite, Options::default()).await else { return };
    staff(&app).await;
    let ldap_address = app.ldap_url.as_deref().unwrap().trim_start_matches("ldap://").to_owned();
    let syncthing = Syncthing::start(&binary, &ldap_address).await;

    assert_eq!(syncthing.gui("ada", "ada's password 1").await, StatusCode::OK, "{}", syncthing.log());
    assert_eq!(syncthing.gui("ada", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(syncthing.gui("bob", "bob's password 1").await, StatusCode::UNAUTHORIZED, "Bob is not in staff");
    app.admin(&["group", "remove-member", "staff", "ada"]).await;
    assert_eq!(syncthing.gui("ada", "ada's password 1").await, StatusCode::UNAUTHORIZED, "left staff: refused at once");
}

fn syncthing() -> Option<PathBuf> {
    let binary = PathBuf::from("/usr/bin/syncthing");
    match binary.is_file() {
        true => Some(binary),
        false if std::env::var_os("CI").is_some() => panic!("syncthing is required under CI (.ci/run installs it)"),
        false => {
            eprintln!("SKIPPED (syncthing not installed)");
            None
        }
    }
}

struct Syncthing {
    child: tokio::process::Child,
    gui: String,
    dir: tempfile::TempDir,
}

impl Syncthing {
    async fn start(binary: &Path, ldap_address: &str) -> Self {
        let dir = tempfile::tempdir().expect("syncthing dir");
        let home = dir.path().join("home");
        let generated = tokio::process::Command::new(binary)
            .arg("generate")
            .arg(format!("--home={}", home.display()))
            .arg("--no-default-folder")
            .output()
            .await
            .expect("syncthing generate");
        assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
        let (gui_port, sync_port) = (free_port(), free_port());
        let config_path = home.join("config.xml");
        let mut config = std::fs::read_to_string(&config_path).unwrap();
        let ldap = format!(
            "<ldap>\n        <address>{ldap_address}</address>\n        \
             <bindDN>uid=%s,ou=people,{BASE}</bindDN>\n        <transport>plain</transport>\n        \
             <searchBaseDN>ou=people,{BASE}</searchBaseDN>\n        \
             <searchFilter>(&amp;(uid=%s)(memberOf=cn=staff,ou=groups,{BASE}))</searchFilter>\n    </ldap>"
        );
        // Nothing reaches out to the network: no discovery, relays, NAT,
        // usage or crash reports, upgrades.
        for (from, to) in [
            (
                "<address>127.0.0.1:8384</address>",
                format!("<address>127.0.0.1:{gui_port}</address><authMode>ldap</authMode>"),
            ),
            ("<ldap></ldap>", ldap),
            (
                "<listenAddress>default</listenAddress>",
                format!("<listenAddress>tcp://127.0.0.1:{sync_port}</listenAddress>"),
            ),
            ("<globalAnnounceEnabled>true", "<globalAnnounceEnabled>false".into()),
            ("<localAnnounceEnabled>true", "<localAnnounceEnabled>false".into()),
            ("<relaysEnabled>true", "<relaysEnabled>false".into()),
            ("<natEnabled>true", "<natEnabled>false".into()),
            ("<startBrowser>true", "<startBrowser>false".into()),
            ("<crashReportingEnabled>true", "<crashReportingEnabled>false".into()),
            ("<urAccepted>0", "<urAccepted>-1".into()),
            ("<autoUpgradeIntervalH>12", "<autoUpgradeIntervalH>0".into()),
        ] {
            assert!(config.contains(from), "{from} not in the generated config.xml");
            config = config.replace(from, &to);
        }
        std::fs::write(&config_path, config).unwrap();
        let child = tokio::process::Command::new(binary)
            .arg("serve")
            .arg(format!("--home={}", home.display()))
            .arg(format!("--logfile={}", dir.path().join("syncthing.log").display()))
            .args(["--no-browser", "--no-restart", "--skip-port-probing"])
            .env("STNOUPGRADE", "1")
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start syncthing");
        let syncthing = Self { child, gui: format!("http://127.0.0.1:{gui_port}/"), dir };
        let ready = poll_until(Duration::from_secs(30), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", gui_port)).await.ok().map(|_| ())
        })
        .await;
        assert!(ready.is_some(), "syncthing did not start: {}", syncthing.log());
        syncthing
    }

    /// The GUI's answer to a request with HTTP basic authentication.
    async fn gui(&self, username: &str, password: &str) -> StatusCode {
        let response = crate::common::http().get(&self.gui).basic_auth(username, Some(password)).send().await;
        response.expect("syncthing GUI").status()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("syncthing.log")).unwrap_or_default()
    }
}

impl Drop for Syncthing {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn dovecot() -> Option<PathBuf> {
    let binary = PathBuf::from("/usr/sbin/dovecot");
    let ldap = Path::new("/usr/lib/dovecot/modules/auth/libauthdb_ldap.so").is_file();
    match binary.is_file() && ldap {
        true => Some(binary),
        false if std::env::var_os("CI").is_some() => {
            panic!("dovecot-imapd and dovecot-ldap are required under CI (.ci/run installs them)")
        }
        false => {
            eprintln!("SKIPPED (dovecot-imapd with dovecot-ldap not installed)");
            None
        }
    }
}

struct Dovecot {
    child: tokio::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Dovecot {
    async fn start(binary: &Path, ldap_url: &str, account: &Account) -> Self {
        let dir = tempfile::tempdir().expect("dovecot dir");
        let path = dir.path();
        let port = free_port();
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        // Dovecot's unprivileged processes must reach their sockets.
        set_mode(path, 0o755);
        // Mail processes may not run as root: a root test run gives the
        // mail user `nobody`, with a mail directory it may write.
        let (mail_uid, mail_gid) = if uid == 0 { (65534, 65534) } else { (uid, gid) };
        let mail = path.join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        set_mode(&mail, 0o777);
        let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
        let (internal, login) =
            if uid == 0 { ("dovecot".to_owned(), "dovenull".to_owned()) } else { (user.clone(), user) };
        let ldap_conf = path.join("dovecot-ldap.conf.ext");
        std::fs::write(
            &ldap_conf,
            format!(
                "uris = {ldap_url}\nldap_version = 3\ndn = {}\ndnpass = {}\nauth_bind = yes\n\
                 base = ou=people,{BASE}\nscope = onelevel\n\
                 pass_filter = (&(objectClass=inetOrgPerson)(uid=%u))\npass_attrs = uid=user\n",
                account.dn, account.password
            ),
        )
        .unwrap();
        let conf = path.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "base_dir = {run}\nstate_dir = {state}\nlog_path = {log}\ninfo_log_path = {log}\n\
                 protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
                 auth_mechanisms = plain login\nauth_verbose = yes\n\
                 default_internal_user = {internal}\ndefault_login_user = {login}\n\
                 first_valid_uid = {mail_uid}\nmail_location = maildir:{mail}/%u\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  \
                 inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n\
                 passdb {{\n  driver = ldap\n  args = {ldap_conf}\n}}\n\
                 userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_gid} home={mail}/%u\n}}\n",
                run = path.join("run").display(),
                state = path.join("state").display(),
                log = path.join("dovecot.log").display(),
                mail = mail.display(),
                ldap_conf = ldap_conf.display(),
            ),
        )
        .unwrap();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(path.join(sub)).unwrap();
            set_mode(&path.join(sub), 0o755);
        }
        let child = tokio::process::Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dovecot");
        let dovecot = Self { child, port, dir };
        let ready = poll_until(Duration::from_secs(20), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", dovecot.port)).await.ok().map(|_| ())
        })
        .await;
        assert!(ready.is_some(), "dovecot did not start: {}", dovecot.log());
        dovecot
    }

    /// An IMAP LOGIN (RFC 9051 §6.2.3): whether Dovecot answered OK.
    async fn login(&self, username: &str, password: &str) -> bool {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect to dovecot");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = lines.next_line().await.unwrap().unwrap_or_default();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let quoted = |text: &str| format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
        let command = format!("a1 LOGIN {} {}\r\n", quoted(username), quoted(password));
        write.write_all(command.as_bytes()).await.unwrap();
        loop {
            let line = lines.next_line().await.unwrap().unwrap_or_default();
            if let Some(status) = line.strip_prefix("a1 ") {
                let _ = write.write_all(b"a2 LOGOUT\r\n").await;
                return status.starts_with("OK");
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// tests/apps/.venv's Python (tests/apps/setup.sh installs ldap3 into it), or
/// `None` (with a notice) outside CI; under CI it must be there.
fn venv_python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/.venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing under CI: .ci/run runs tests/apps/setup.sh",
        python.display()
    );
    eprintln!("SKIPPED ({} missing: run tests/apps/setup.sh)", python.display());
    None
}

/// tests/ldap/ldap3_client.py with `args`: the JSON it prints.
async fn ldap3(python: &Path, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ldap/ldap3_client.py");
    let output = tokio::process::Command::new(python).arg(script).args(args).output().await.expect("run python");
    assert!(output.status.success(), "ldap3_client.py {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("ldap3_client.py prints JSON")
}

async fn python_ldap3_binds_searches_and_pages(backend: Backend) {
    let Some(python) = venv_python() else { return };
    let Some(app) = spawn(backend, Options { ldap_tls: true, ..Options::default() }).await else { return };
    let url = app.ldap_url.clone().expect("LDAP is on");
    staff(&app).await;
    add_person(&app, "cy", "Cy Young", "cy's password 1", &["staff"]).await;
    let reader = add_account(&app, "reader", &[]).await;
    let as_reader = [url.as_str(), &reader.dn, &reader.password];

    let me = ldap3(&python, &[&as_reader[..], &["whoami"]].concat()).await;
    assert_eq!((&me["bind"], &me["whoami"]), (&0.into(), &format!("dn:{}", reader.dn).into()), "{me}");
    let ada = ldap3(&python, &[&url, &person("ada"), "ada's password 1", "whoami"]).await;
    assert_eq!(ada["whoami"], format!("dn:{}", person("ada")), "{ada}");
    let wrong = ldap3(&python, &[&url, &person("ada"), "wrong", "whoami"]).await;
    assert_eq!(wrong["bind"], 49, "invalidCredentials: {wrong}");

    let staff_filter = format!("(&(objectClass=inetOrgPerson)(memberOf=cn=staff,ou=groups,{BASE}))");
    let found = ldap3(&python, &[&as_reader[..], &["search", BASE, &staff_filter, "uid", "mail", "cn"]].concat()).await;
    assert_eq!(found["result"], 0, "{found}");
    let entries = found["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "{found}");
    assert_eq!(entries[0]["dn"], person("ada"));
    assert_eq!(entries[0]["attributes"]["mail"], serde_json::json!(["ada@example.com"]), "{found}");
    assert_eq!(entries[0]["attributes"]["cn"], serde_json::json!(["Ada King Lovelace"]), "{found}");
    assert_eq!(entries[1]["attributes"]["uid"], serde_json::json!(["cy"]), "{found}");

    // Three people in pages of one: ldap3 follows the cookies to the end.
    let everyone = [person("ada"), person("bob"), person("cy")];
    let paged = ldap3(&python, &[&as_reader[..], &["paged", BASE, "(objectClass=person)", "1"]].concat()).await;
    assert_eq!(paged["paged_search"], serde_json::json!(everyone), "{paged}");
    assert_eq!(paged["pages"], serde_json::json!([[&everyone[0]], [&everyone[1]], [&everyone[2]]]), "{paged}");

    let ca = app.ldap_ca();
    let ca = ca.to_str().expect("UTF-8 path");
    let tls = ldap3(&python, &[&as_reader[..], &["--starttls", ca, "whoami"]].concat()).await;
    assert_eq!((&tls["tls"], &tls["bind"]), (&true.into(), &0.into()), "{tls}");

    let modified = ldap3(&python, &[&as_reader[..], &["modify", &person("bob")]].concat()).await;
    assert_eq!(modified["result"], 53, "unwillingToPerform: {modified}");
}
