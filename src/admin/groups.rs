//! Groups and their members.

use super::record::{Change, ChangeKind};
use super::{Actor, AdminResult, validate};
use crate::clock;
use crate::store::{GroupSummary, Store};

/// The built-in group whose members administer Latch (the admin console;
/// migration 0014 creates it). Granting admin is adding someone to it.
pub const ADMINISTRATORS: &str = "latch-admins";

/// Whether the user with id `user_id` is an administrator (a member of
/// `ADMINISTRATORS`).
pub async fn is_administrator(store: &Store, user_id: &str) -> AdminResult<bool> {
    Ok(store.is_group_member(user_id, ADMINISTRATORS).await?)
}

/// Creates a group. Errors: `Invalid` name, `Duplicate` group.
pub async fn add_group(store: &Store, actor: &Actor, name: &str) -> AdminResult<()> {
    validate::group_name(name)?;
    store.create_group(name, clock::now()).await?;
    Change::other(ChangeKind::GroupCreated, group_detail(name)).record(store, actor).await
}

/// A user in a group.
#[derive(Debug, Clone)]
pub struct Membership {
    pub group: String,
    pub username: String,
}

/// Adds a user to a group (a member already is left as is). Errors:
/// `NotFound` group or user.
pub async fn add_member(store: &Store, actor: &Actor, membership: &Membership) -> AdminResult<()> {
    store.add_group_member(&membership.group, &membership.username).await?;
    member_change(ChangeKind::GroupMemberAdded, membership).record(store, actor).await
}

/// Removes a user from a group; access the group gave ends at once.
/// Errors: `NotFound` group, user, or membership.
pub async fn remove_member(store: &Store, actor: &Actor, membership: &Membership) -> AdminResult<()> {
    store.remove_group_member(&membership.group, &membership.username).await?;
    member_change(ChangeKind::GroupMemberRemoved, membership).record(store, actor).await
}

fn member_change(kind: ChangeKind, membership: &Membership) -> Change<'_> {
    Change::to_user(kind, &membership.username).detail(group_detail(&membership.group))
}

fn group_detail(name: &str) -> String {
    format!("group {name}")
}

/// Every group, by name, with its members.
pub async fn list_groups(store: &Store) -> AdminResult<Vec<GroupSummary>> {
    Ok(store.list_groups().await?)
}
