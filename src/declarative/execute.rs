//! Makes a plan's changes, each through its admin operation (which checks
//! it and records its audit event), in the plan's order.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::ApplyError;
use super::change::Change;
use super::state::{DesiredApp, DesiredKind, DesiredSecret};
use crate::admin::{self, Actor, AdminError, AppOptionChanges};
use crate::config::Config;
use crate::crypto::random_token;
use crate::private_files;
use crate::store::Store;

/// What a change left for the operator to pass on, shown once.
pub enum Notice {
    /// A new person's generated password.
    Password { username: String, password: String },
    /// A new app's generated secret, written to `path` (mode 0600).
    SecretWritten { slug: String, path: PathBuf },
}

/// Makes `changes` in order. Stops at the first refusal: the changes
/// before it stay made (each is complete on its own), and applying the
/// file again carries on from there. Errors: `ApplyError::Change`, naming
/// the change.
pub async fn execute(
    store: &Store,
    config: &Config,
    actor: &Actor,
    changes: &[Change],
) -> Result<Vec<Notice>, ApplyError> {
    let mut notices = Vec::new();
    for change in changes {
        let notice = make(store, config, actor, change)
            .await
            .map_err(|source| ApplyError::Change { change: change.to_string(), source })?;
        notices.extend(notice);
    }
    Ok(notices)
}

async fn make(store: &Store, config: &Config, actor: &Actor, change: &Change) -> Result<Option<Notice>, AdminError> {
    match change {
        Change::AddGroup(name) => admin::add_group(store, actor, name).await?,
        Change::RemoveGroup(name) => admin::remove_group(store, actor, name).await?,
        Change::AddPerson(person) => {
            // When invite links exist (the web issue), this is the one
            // place that changes: invite the person instead and return the
            // link as the notice, rather than a generated password.
            let command = admin::AddUser {
                username: person.username.clone(),
                email: person.email.clone(),
                name: Some(person.name.clone()),
                groups: person.groups.clone(),
                password: None,
            };
            let added = admin::add_user(store, actor, command).await?;
            let password = added.generated_password.unwrap_or_default();
            return Ok(Some(Notice::Password { username: person.username.clone(), password }));
        }
        Change::UpdatePerson { username, email, name } => {
            let command = admin::UpdateUser { username: username.clone(), email: email.clone(), name: name.clone() };
            admin::update_user(store, actor, command).await?;
        }
        Change::AddMember(membership) => admin::add_member(store, actor, membership).await?,
        Change::RemoveMember(membership) => admin::remove_member(store, actor, membership).await?,
        Change::DisablePerson(username) => admin::disable_user(store, actor, username).await?,
        Change::EnablePerson(username) => admin::enable_user(store, actor, username).await?,
        Change::AddApp(app) => return add_app(store, config, actor, app).await,
        Change::UpdateApp { update, .. } => admin::update_app(store, actor, update.clone()).await?,
        Change::SetSecret { slug, secret } => admin::set_client_secret(store, actor, slug, &secret.value).await?,
        Change::RemoveApp(slug) => admin::remove_app(store, actor, slug).await?,
    }
    Ok(None)
}

async fn add_app(
    store: &Store,
    config: &Config,
    actor: &Actor,
    app: &DesiredApp,
) -> Result<Option<Notice>, AdminError> {
    let (public, redirect_uris, options, secret) = match &app.kind {
        DesiredKind::Proxy { external_url, cookie_domain, require_mfa } => {
            let command = admin::AddProxyApp {
                slug: app.slug.clone(),
                name: app.name.clone(),
                groups: app.groups.clone(),
                external_url: external_url.clone(),
                cookie_domain: cookie_domain.clone(),
                client_id: app.client_id.clone(),
                require_mfa: *require_mfa,
            };
            admin::add_proxy_app(store, config, actor, command).await?;
            return Ok(None);
        }
        DesiredKind::Oidc { public, redirect_uris, options, secret } => (*public, redirect_uris, options, secret),
    };
    // A generated secret is on disk before the app exists: were the app
    // created first and the write to fail, the secret would be lost.
    let (client_secret, notice) = match secret {
        None => (None, None),
        Some(DesiredSecret::Known(known)) => (Some(known.value.clone()), None),
        Some(DesiredSecret::Generate(path)) => {
            let secret = random_token();
            write_secret(path, &secret)?;
            (Some(secret), Some(Notice::SecretWritten { slug: app.slug.clone(), path: path.clone() }))
        }
    };
    let command = admin::AddApp {
        slug: app.slug.clone(),
        name: app.name.clone(),
        redirect_uris: redirect_uris.clone(),
        public,
        groups: app.groups.clone(),
        options: AppOptionChanges::replacing(options),
        client_id: app.client_id.clone(),
        client_secret,
    };
    admin::add_app(store, config, actor, command).await?;
    Ok(notice)
}

/// Writes a new secret file, 0600 (its directory 0700 when created); an
/// existing file is never replaced.
fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        private_files::create_dir(dir)?;
    }
    let mut file = private_files::create_new_file(path)?;
    writeln!(file, "{secret}")?;
    file.sync_all()
}
