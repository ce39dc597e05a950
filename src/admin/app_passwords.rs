//! App passwords: one per device or app a person binds to LDAP from,
//! generated, shown once, stored as an argon2 hash, revocable by label.
//! They open LDAP binds only, never the sign-in page.

use serde::Serialize;

use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult};
use crate::clock;
use crate::crypto::password::{generate_password, hash_password_blocking};
use crate::login::app_password_lookup;
use crate::store::{AppPasswordSummary, NewAppPassword, Store};

/// `user app-password add`.
#[derive(Debug, Clone)]
pub struct AddAppPassword {
    pub username: String,
    /// Names the device or app, e.g. `phone-mail`; unique per person.
    pub label: String,
}

/// The new app password: shown once, stored nowhere. No `Debug`.
#[derive(Serialize)]
pub struct AppPasswordAdded {
    pub password: String,
}

/// Creates an app password. Errors: `Invalid` label, `NotFound` user,
/// `Duplicate` label for that person.
pub async fn add_app_password(store: &Store, actor: &Actor, command: AddAppPassword) -> AdminResult<AppPasswordAdded> {
    label(&command.label)?;
    let password = generate_password();
    let password_hash = hash_password_blocking(&password)?;
    let lookup = app_password_lookup(&password);
    let new = NewAppPassword {
        username: &command.username,
        label: &command.label,
        lookup: &lookup,
        password_hash: &password_hash,
    };
    store.add_app_password(new, clock::now()).await?;
    Change::to_user(ChangeKind::AppPasswordCreated, &command.username)
        .detail(format!("label {}", command.label))
        .record(store, actor)
        .await?;
    Ok(AppPasswordAdded { password })
}

/// A person's app passwords (labels and dates, never the passwords).
/// Errors: `NotFound` user.
pub async fn list_app_passwords(store: &Store, username: &str) -> AdminResult<Vec<AppPasswordSummary>> {
    Ok(store.list_app_passwords(username).await?)
}

/// Revokes an app password: the next bind with it fails. Errors:
/// `NotFound` app password.
pub async fn remove_app_password(store: &Store, actor: &Actor, username: &str, label: &str) -> AdminResult<()> {
    store.remove_app_password(username, label).await?;
    Change::to_user(ChangeKind::AppPasswordRemoved, username)
        .detail(format!("label {label}"))
        .record(store, actor)
        .await
}

fn label(value: &str) -> AdminResult<()> {
    if value.trim().is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
        return Err(AdminError::invalid("label", format!("invalid label {value:?}: 1 to 64 printable characters")));
    }
    Ok(())
}
