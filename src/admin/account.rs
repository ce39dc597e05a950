//! What a signed-in person changes about their own account from the portal
//! (`/account`): their display name and their password. The actor is the
//! person (`Actor::Owner`); their e-mail address and username are changed
//! by an administrator only, since apps trust the address as verified and
//! some link accounts by it.

use super::invites::hash_off_runtime;
use super::record::{Change, ChangeKind};
use super::{Actor, AdminResult, validate};
use crate::clock::UnixTime;
use crate::store::Store;

/// Sets the display name of `person` to `name`, trimmed. Errors: `Invalid` name, `NotFound` user.
pub async fn set_own_name(store: &Store, person: &Person<'_>, name: &str) -> AdminResult<()> {
    let name = name.trim();
    validate::display_name(name)?;
    store.set_display_name(person.user_id, name).await?;
    let actor = person.actor();
    Change::to_user(ChangeKind::NameChanged, person.username).record(store, &actor).await
}

/// A signed-in person acting on their own account.
pub struct Person<'a> {
    pub user_id: &'a str,
    pub username: &'a str,
    /// The SHA-256 of the session cookie they act from.
    pub session_hash: &'a str,
}

impl Person<'_> {
    fn actor(&self) -> Actor {
        Actor::Owner { user_id: self.user_id.to_owned(), username: self.username.to_owned() }
    }
}

/// Sets the person's new password, already checked against their current
/// one by the caller (`Authenticator::reprove_password`), and ends every
/// other session of theirs, with the apps' back-channel logout notices
/// (wake the delivery worker after). Returns how many sessions ended.
/// Errors: `Invalid` password, `NotFound` user (gone or disabled).
pub async fn change_own_password(
    store: &Store,
    person: &Person<'_>,
    new_password: String,
    now: UnixTime,
) -> AdminResult<u64> {
    validate::password(&new_password)?;
    let password_hash = hash_off_runtime(new_password).await?;
    let ended = store.change_own_password(person.user_id, &password_hash, person.session_hash, now).await?;
    let change = Change::to_user(ChangeKind::PasswordChangedSessionsEnded, person.username);
    change.detail(format!("{ended} other session(s) ended")).record(store, &person.actor()).await?;
    Ok(ended)
}
