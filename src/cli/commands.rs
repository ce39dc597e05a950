//! The admin subcommands: each maps its flags onto an admin command, calls
//! the admin layer as the operating-system user running it, and prints
//! what comes back.

use std::io::Read;

use super::app_args::{AppOptionArgs, PresetArgs};
use super::output::{self, say};
use super::{
    AppCommand, AppPasswordCommand, GroupCommand, KeyCommand, LdapAccountCommand, LdapCommand, MfaCommand, UserCommand,
};
use crate::admin::invites::OneTimeLink;
use crate::admin::{self, Actor};
use crate::config::Config;
use crate::declarative::{self, Notice};
use crate::mail::Mailer;
use crate::store::{LinkPurpose, Store};

/// The person running the command: the account behind `sudo` when there is
/// one (`sudo latch …` would otherwise record every change as root's).
pub(super) fn operator() -> Actor {
    let os_user = ["SUDO_USER", "USER", "LOGNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    Actor::Cli { os_user }
}

/// Reads one password from standard input; a trailing newline is not part
/// of it.
fn read_password_stdin() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let password = input.strip_suffix('\n').map(|rest| rest.strip_suffix('\r').unwrap_or(rest)).unwrap_or(&input);
    Ok(password.to_owned())
}

pub(super) async fn user(store: &Store, config: &Config, actor: &Actor, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { username, email, name, groups, password_stdin } => {
            let password = if password_stdin { Some(read_password_stdin()?) } else { None };
            let command = admin::AddUser { username: username.clone(), email, name, groups, password };
            let added = admin::add_user(store, actor, command).await?;
            say!("Created user {username}.")?;
            if let Some(password) = added.generated_password {
                say!("Password (shown once): {password}")?;
            }
        }
        UserCommand::Passwd { username, keep_sessions, .. } => {
            let password = read_password_stdin()?;
            let command = admin::SetPassword { username: username.clone(), password, end_sessions: !keep_sessions };
            let ended = admin::set_password(store, actor, command).await?;
            if keep_sessions {
                say!("Password of {username} changed; their sessions were kept.")?;
            } else {
                say!("Password of {username} changed; {ended} session(s) ended and their tokens revoked.")?;
            }
        }
        UserCommand::Disable { username } => {
            admin::disable_user(store, actor, &username).await?;
            say!("Disabled {username}: their sessions and tokens no longer work.")?;
        }
        UserCommand::Enable { username } => {
            admin::enable_user(store, actor, &username).await?;
            say!("Enabled {username}.")?;
        }
        UserCommand::Unlock { username } => {
            if admin::unlock_user(store, actor, &username).await? {
                say!("Unlocked {username}.")?;
            } else {
                say!("{username} had no failed sign-ins.")?;
            }
        }
        UserCommand::Update { username, email, name } => {
            admin::update_user(store, actor, admin::UpdateUser { username: username.clone(), email, name }).await?;
            say!("Updated {username}.")?;
        }
        UserCommand::EndSessions { username } => {
            let ended = admin::end_sessions(store, actor, &username).await?;
            say!("Signed {username} out everywhere: {ended} session(s) ended and their tokens revoked.")?;
        }
        UserCommand::List { json } => output::users(&admin::list_users(store).await?, json)?,
        UserCommand::AppPassword(command) => app_password(store, actor, command).await?,
        UserCommand::Invite { username, email, name, groups, ttl, send, json } => {
            let mailer = mailer_for(config, send)?;
            let command = admin::invites::Invite { username: username.clone(), email, name, groups, ttl };
            let link = admin::invites::invite(store, actor, &config.public_url, command).await?;
            output::one_time_link(&link, &format!("Invited {username}. Send them this link"), json)?;
            mail(store, mailer, &username, LinkPurpose::Invite, &link, json).await?;
        }
        UserCommand::ResetLink { username, ttl, send, json } => {
            let mailer = mailer_for(config, send)?;
            let link = admin::invites::reset_link(store, actor, &config.public_url, &username, ttl.as_deref()).await?;
            let what = format!("Password-reset link for {username}");
            output::one_time_link(&link, &what, json)?;
            mail(store, mailer, &username, LinkPurpose::Reset, &link, json).await?;
        }
        UserCommand::Mfa(command) => mfa(store, actor, command).await?,
    }
    Ok(())
}

async fn app_password(store: &Store, actor: &Actor, command: AppPasswordCommand) -> anyhow::Result<()> {
    match command {
        AppPasswordCommand::Add { username, label, json } => {
            let command = admin::AddAppPassword { username: username.clone(), label: label.clone() };
            let added = admin::add_app_password(store, actor, command).await?;
            output::app_password(&added, &username, &label, json)?;
        }
        AppPasswordCommand::List { username, json } => {
            output::app_passwords(&admin::list_app_passwords(store, &username).await?, json)?;
        }
        AppPasswordCommand::Remove { username, label } => {
            admin::remove_app_password(store, actor, &username, &label).await?;
            say!("Removed app password {label} of {username}.")?;
        }
    }
    Ok(())
}

pub(super) async fn ldap(store: &Store, config: &Config, actor: &Actor, command: LdapCommand) -> anyhow::Result<()> {
    match command {
        LdapCommand::Account(LdapAccountCommand::Add { name, groups, json }) => {
            let command = admin::AddLdapAccount { name, groups };
            output::ldap_account(&admin::add_ldap_account(store, config, actor, command).await?, json)?;
        }
        LdapCommand::Account(LdapAccountCommand::List { json }) => {
            output::ldap_accounts(&admin::list_ldap_accounts(store).await?, json)?;
        }
        LdapCommand::Account(LdapAccountCommand::Remove { name }) => {
            admin::remove_ldap_account(store, actor, &name).await?;
            say!("Removed LDAP account {name}.")?;
        }
        LdapCommand::Status { json } => output::ldap_status(&admin::ldap_status(store, config).await?, json)?,
    }
    Ok(())
}

/// The mailer `--send` needs: checked before anything is created, so a
/// missing `smtp_url` leaves no link behind.
fn mailer_for(config: &Config, send: bool) -> anyhow::Result<Option<&Mailer>> {
    match (&config.mailer, send) {
        (_, false) => Ok(None),
        (Some(mailer), true) => Ok(Some(mailer)),
        (None, true) => anyhow::bail!("--send needs smtp_url (LATCH_SMTP_URL) to be set"),
    }
}

/// E-mails `link` when `--send` asked for it, and says so (not with
/// `--json`: the output stays one JSON document).
async fn mail(
    store: &Store,
    mailer: Option<&Mailer>,
    username: &str,
    purpose: LinkPurpose,
    link: &OneTimeLink,
    json: bool,
) -> anyhow::Result<()> {
    let Some(mailer) = mailer else { return Ok(()) };
    let address = admin::invites::mail_link(store, mailer, username, purpose, link).await?;
    if !json {
        say!("Mailed the link to {address}.")?;
    }
    Ok(())
}

async fn mfa(store: &Store, actor: &Actor, command: MfaCommand) -> anyhow::Result<()> {
    match command {
        MfaCommand::List { username, json } => output::factors(&admin::list_factors(store, &username).await?, json)?,
        MfaCommand::Totp { username, replace, json } => {
            let enrolled = admin::enrol_totp(store, actor, admin::EnrolTotp { username, replace }).await?;
            output::totp_enrolled(&enrolled, json)?;
        }
        MfaCommand::RecoveryCodes { username, json } => {
            output::recovery_codes(&admin::new_recovery_codes(store, actor, &username).await?, json)?;
        }
        MfaCommand::Reset { username } => {
            let removed = admin::reset_factors(store, actor, &username).await?;
            say!("Removed {removed} second factor(s) and the recovery codes of {username}.")?;
        }
    }
    Ok(())
}

pub(super) async fn group(store: &Store, actor: &Actor, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::Add { name } => {
            admin::add_group(store, actor, &name).await?;
            say!("Created group {name}.")?;
        }
        GroupCommand::AddMember { group, username } => {
            admin::add_member(store, actor, &admin::Membership { group: group.clone(), username: username.clone() })
                .await?;
            say!("Added {username} to {group}.")?;
        }
        GroupCommand::RemoveMember { group, username } => {
            let membership = admin::Membership { group: group.clone(), username: username.clone() };
            admin::remove_member(store, actor, &membership).await?;
            say!("Removed {username} from {group}.")?;
        }
        GroupCommand::List { json } => output::groups(&admin::list_groups(store).await?, json)?,
    }
    Ok(())
}

pub(super) async fn app(store: &Store, config: &Config, actor: &Actor, command: AppCommand) -> anyhow::Result<()> {
    match command {
        AppCommand::Add {
            slug, name, groups, options, preset: PresetArgs { preset: Some(preset), url }, json, ..
        } => {
            if options != AppOptionArgs::default() {
                anyhow::bail!("--preset sets the app's options itself; change them afterwards with `latch app update`");
            }
            let url = url.ok_or_else(|| anyhow::anyhow!("--preset needs --url, the app's base URL"))?;
            let command = admin::AddPresetApp { slug, preset, url, name, groups };
            output::preset_app(&admin::add_preset_app(store, config, actor, command).await?, json)?;
        }
        AppCommand::Add { slug, name, groups, proxy, options, json, .. } if proxy.proxy => {
            if options.webfinger == Some(true) {
                anyhow::bail!("--webfinger names an issuer, which a proxy app does not have");
            }
            let name = name.ok_or_else(|| anyhow::anyhow!("an app needs --name"))?;
            let external_url = proxy.external_url.ok_or_else(|| anyhow::anyhow!("a proxy app needs --external-url"))?;
            let (cookie_domain, require_mfa) = (proxy.cookie_domain, options.require_mfa);
            let command =
                admin::AddProxyApp { slug, name, groups, external_url, cookie_domain, require_mfa, client_id: None };
            output::proxy_settings(&admin::add_proxy_app(store, config, actor, command).await?, json)?;
        }
        AppCommand::Add { slug, name, redirect_uris, public, groups, options, json, .. } => {
            let name = name.ok_or_else(|| anyhow::anyhow!("an app needs --name"))?;
            let options = options.into();
            let command = admin::AddApp {
                slug,
                name,
                redirect_uris,
                public,
                groups,
                options,
                client_id: None,
                client_secret: None,
            };
            output::credentials(&admin::add_app(store, config, actor, command).await?, json)?;
        }
        AppCommand::Presets { json } => output::presets(&admin::list_presets()?, json)?,
        AppCommand::Update { slug, redirect_uris, groups, clear_groups, name, options } => {
            let command = admin::UpdateApp {
                slug: slug.clone(),
                name,
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                groups: (clear_groups || !groups.is_empty()).then_some(groups),
                options: options.into(),
            };
            admin::update_app(store, actor, command).await?;
            say!("Updated app {slug}.")?;
        }
        AppCommand::List { json } => output::apps(&admin::list_apps(store).await?, json)?,
        AppCommand::Show { slug, json } => output::app_details(&admin::show_app(store, config, &slug).await?, json)?,
        AppCommand::Remove { slug } => {
            admin::remove_app(store, actor, &slug).await?;
            say!("Removed app {slug}.")?;
        }
        AppCommand::RotateSecret { slug, json } => {
            output::credentials(&admin::rotate_secret(store, config, actor, &slug).await?, json)?;
        }
    }
    Ok(())
}

pub(super) async fn key(store: &Store, config: &Config, actor: &Actor, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Rotate { alg, grace } => {
            let rotation = admin::rotate_key(store, config, actor, admin::RotateKey { alg, grace }).await?;
            say!("New {alg} key {} is published now and signs from {}.", rotation.kid, rotation.activates_at)?;
            say!("The keys it replaces stay published until {}.", rotation.retire_previous_at)?;
        }
        KeyCommand::List { json } => output::keys(&admin::list_keys(store).await?, json)?,
    }
    Ok(())
}

/// `latch apply`: the plan, then (unless a dry run) its changes and what
/// they leave to pass on, each shown once.
pub(super) async fn apply(
    store: &Store,
    config: &Config,
    actor: &Actor,
    file: &std::path::Path,
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<()> {
    let changes = declarative::plan(store, file, prune).await?;
    if changes.is_empty() {
        say!("No changes: the database already matches {}.", file.display())?;
        return Ok(());
    }
    let heading = if dry_run { "Would make" } else { "Making" };
    say!("{heading} {} change(s):", changes.len())?;
    for change in &changes {
        say!("  {change}")?;
    }
    if dry_run {
        say!("Dry run: nothing was changed.")?;
        return Ok(());
    }
    for notice in declarative::apply(store, config, actor, &changes).await? {
        match notice {
            Notice::Password { username, password } => say!("Password of {username} (shown once): {password}")?,
            Notice::SecretWritten { slug, path } => {
                say!("Client secret of {slug} written to {} (mode 0600).", path.display())?;
            }
        }
    }
    say!("Done.")?;
    Ok(())
}
