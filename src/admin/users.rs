//! People: create, set a password, disable and enable, lift a sign-in lock,
//! list.

use super::record::{Change, ChangeKind};
use super::{Actor, AdminError, AdminResult, validate};
use crate::clock;
use crate::crypto::password::{generate_password, hash_password_blocking};
use crate::store::{NewUser, Store, UserPage, UserSummary};

/// `user add`. No `Debug`: it carries a password.
pub struct AddUser {
    pub username: String,
    pub email: String,
    /// Full name as apps show it; `None`: the username.
    pub name: Option<String>,
    /// Groups the user joins, each of which must exist.
    pub groups: Vec<String>,
    /// `None`: a strong one is generated and returned once.
    pub password: Option<String>,
}

/// The generated password, when none was given: shown once, stored nowhere.
pub struct UserAdded {
    pub generated_password: Option<String>,
}

/// Creates a user (and their group memberships, all or nothing).
/// Errors: `Invalid` (username, email, name, password), `Duplicate` user,
/// `NotFound` group.
pub async fn add_user(store: &Store, actor: &Actor, command: AddUser) -> AdminResult<UserAdded> {
    validate::username(&command.username)?;
    validate::email(&command.email)?;
    let name = command.name.as_deref().unwrap_or(&command.username).trim().to_owned();
    validate::display_name(&name)?;
    let (password, generated_password) = match command.password {
        Some(password) => {
            validate::password(&password)?;
            (password, None)
        }
        None => {
            let generated = generate_password();
            (generated.clone(), Some(generated))
        }
    };
    let password_hash = hash_password_blocking(&password)?;
    let user = NewUser { username: command.username.clone(), email: command.email, name, password_hash };
    store.create_user(user, &command.groups, clock::now()).await?;
    let change = Change::to_user(ChangeKind::UserCreated, &command.username);
    let change = if command.groups.is_empty() { change } else { change.detail(groups_detail(&command.groups)) };
    change.record(store, actor).await?;
    Ok(UserAdded { generated_password })
}

fn groups_detail(groups: &[String]) -> String {
    format!("groups {}", groups.join(","))
}

/// A change to a user's profile; `None` keeps it.
#[derive(Debug, Clone)]
pub struct UpdateUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Changes a user's e-mail address or display name; apps see the new ones
/// in the next tokens they get. Errors: `Invalid` email or name, `NotFound`
/// user.
pub async fn update_user(store: &Store, actor: &Actor, command: UpdateUser) -> AdminResult<()> {
    if let Some(email) = &command.email {
        validate::email(email)?;
    }
    let name = command.name.as_deref().map(str::trim);
    if let Some(name) = name {
        validate::display_name(name)?;
    }
    store.update_user(&command.username, command.email.as_deref(), name).await?;
    let changed: Vec<&str> = [("email", command.email.is_some()), ("name", name.is_some())]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(field, _)| field)
        .collect();
    Change::to_user(ChangeKind::UserUpdated, &command.username).detail(changed.join(",")).record(store, actor).await
}

/// `user passwd`. No `Debug`: it carries a password.
pub struct SetPassword {
    pub username: String,
    pub password: String,
    /// End every session of the user and revoke their tokens, as a reset
    /// should (the old password may have leaked).
    pub end_sessions: bool,
}

/// Sets a user's password; returns how many sessions ended (0 unless
/// `end_sessions`). Errors: `Invalid` password, `NotFound` user.
pub async fn set_password(store: &Store, actor: &Actor, command: SetPassword) -> AdminResult<u64> {
    validate::password(&command.password)?;
    let password_hash = hash_password_blocking(&command.password)?;
    let ended = store.set_password_hash(&command.username, &password_hash, command.end_sessions, clock::now()).await?;
    let change = if command.end_sessions {
        Change::to_user(ChangeKind::PasswordChangedSessionsEnded, &command.username)
            .detail(format!("{ended} session(s) ended"))
    } else {
        Change::to_user(ChangeKind::PasswordChanged, &command.username)
    };
    change.record(store, actor).await?;
    Ok(ended)
}

/// Locks the user out of every app at once: their sessions end and their
/// tokens stop working, on every instance. Errors: `NotFound` user.
pub async fn disable_user(store: &Store, actor: &Actor, username: &str) -> AdminResult<()> {
    store.set_user_disabled(username, true, clock::now()).await?;
    Change::to_user(ChangeKind::UserDisabled, username).record(store, actor).await
}

/// Lets a disabled user sign in again. Errors: `NotFound` user.
pub async fn enable_user(store: &Store, actor: &Actor, username: &str) -> AdminResult<()> {
    store.set_user_disabled(username, false, clock::now()).await?;
    Change::to_user(ChangeKind::UserEnabled, username).record(store, actor).await
}

/// Lifts a sign-in lock caused by repeated failures; returns whether there
/// were failures to forget. A name with no account is accepted: failed
/// sign-ins are counted for any name typed.
pub async fn unlock_user(store: &Store, actor: &Actor, username: &str) -> AdminResult<bool> {
    let mut had_failures = store.clear_login_failures(&crate::login::user_subject(username)).await?;
    // A lock on guessing device user codes is the same person locked out.
    if let Some(user) = store.user_credentials(username).await? {
        had_failures |= store.clear_login_failures(&crate::oidc::device::user_code_subject(&user.id)).await?;
        // And so is a lock on guessing second-factor codes.
        had_failures |= store.clear_login_failures(&crate::login::factor_subject(&user.id)).await?;
    }
    Change::to_user(ChangeKind::UserUnlocked, username).record(store, actor).await?;
    Ok(had_failures)
}

/// Signs a person out everywhere (every session ends, every token is
/// revoked, apps get their back-channel logout) without disabling them;
/// returns how many sessions ended. Errors: `NotFound` user.
pub async fn end_sessions(store: &Store, actor: &Actor, username: &str) -> AdminResult<u64> {
    let ended = store.end_user_sessions(username, clock::now()).await?;
    Change::to_user(ChangeKind::SessionsEnded, username)
        .detail(format!("{ended} session(s) ended"))
        .record(store, actor)
        .await?;
    Ok(ended)
}

/// One person and their groups. Errors: `NotFound` user.
pub async fn show_user(store: &Store, username: &str) -> AdminResult<UserSummary> {
    store.user_summary(username).await?.ok_or_else(|| AdminError::not_found("user", username))
}

/// One page of the people whose username, e-mail or name contains
/// `search` (ignoring case), by username: `per_page` of them from the
/// `page`th (counting from 0). Errors: `Invalid` for a page size outside
/// 1–500.
pub async fn find_users(store: &Store, search: &str, page: i64, per_page: i64) -> AdminResult<UserPage> {
    if !(1..=500).contains(&per_page) {
        return Err(AdminError::invalid("per_page", "a page holds 1 to 500 people"));
    }
    let offset = page.max(0).saturating_mul(per_page);
    Ok(store.search_users(search, per_page, offset).await?)
}

/// Every user, by username, with their groups.
pub async fn list_users(store: &Store) -> AdminResult<Vec<UserSummary>> {
    Ok(store.list_users().await?)
}
