//! First run: while no one is an administrator (a member of
//! `latch-admins`), `latch serve` prints a one-time setup link; opening it
//! creates the first administrator.

use super::invites::{OneTimeLink, hash_off_runtime};
use super::record::{Change, ChangeKind};
use super::{ADMINISTRATORS, Actor, AdminResult, validate};
use crate::clock::UnixTime;
use crate::config::PublicUrl;
use crate::crypto::{random_token, sha256_hex};
use crate::store::{LinkPurpose, NewUser, Store};

/// Seconds a setup link lasts: one hour.
pub const SETUP_LINK_TTL: i64 = 60 * 60;

/// A new setup link (`<public_url>/setup/<token>`, valid one hour) when the
/// deployment has no administrator yet; `None` when it has one. Every
/// instance that starts without an administrator makes its own; the first
/// one used ends them all.
pub async fn first_run_link(store: &Store, public_url: &PublicUrl, now: UnixTime) -> AdminResult<Option<OneTimeLink>> {
    if store.group_has_members(ADMINISTRATORS).await? {
        return Ok(None);
    }
    let token = random_token();
    let expires_at = now.saturating_add(SETUP_LINK_TTL);
    store.create_link(&sha256_hex(&token), LinkPurpose::Setup, None, now, expires_at).await?;
    Ok(Some(OneTimeLink { url: public_url.join(&format!("/setup/{token}")), expires_at }))
}

/// The first administrator, as the setup page asks for them. No `Debug`:
/// it carries a password.
pub struct FirstAdmin {
    /// The token from the setup link's path.
    pub token: String,
    pub username: String,
    pub email: String,
    /// `None` or blank: the username.
    pub name: Option<String>,
    pub password: String,
}

/// Creates the first administrator through the setup link, using it (and
/// every other setup link) up. Returns their user id; `None` when the link
/// is used, expired or unknown, or someone became administrator meanwhile.
/// Errors: `Invalid` (username, email, name, password), `Duplicate` user.
pub async fn create_first_admin(store: &Store, command: FirstAdmin, now: UnixTime) -> AdminResult<Option<String>> {
    validate::username(&command.username)?;
    validate::email(&command.email)?;
    let name =
        command.name.as_deref().map(str::trim).filter(|name| !name.is_empty()).unwrap_or(command.username.as_str());
    validate::display_name(name)?;
    validate::password(&command.password)?;
    let password_hash = hash_off_runtime(command.password).await?;
    let user =
        NewUser { username: command.username.clone(), email: command.email, name: name.to_owned(), password_hash };
    let Some(user_id) = store.use_setup_link(&sha256_hex(&command.token), user, ADMINISTRATORS, now).await? else {
        return Ok(None);
    };
    let actor = Actor::Owner { user_id: user_id.clone(), username: command.username.clone() };
    let change = Change::to_user(ChangeKind::FirstAdministratorCreated, &command.username);
    change.detail(format!("group {ADMINISTRATORS}")).record(store, &actor).await?;
    Ok(Some(user_id))
}
