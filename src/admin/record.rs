//! The audit event every admin change writes: one per change, naming the
//! actor, the kind of change (a stable name scripts may match on) and the
//! object changed.

use super::{Actor, AdminResult};
use crate::audit;
use crate::clock;
use crate::store::Store;

/// The kinds of change, each with the stable name stored in the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    UserCreated,
    UserUpdated,
    PasswordChanged,
    PasswordChangedSessionsEnded,
    UserDisabled,
    UserEnabled,
    UserUnlocked,
    SessionsEnded,
    GroupCreated,
    GroupRemoved,
    GroupMemberAdded,
    GroupMemberRemoved,
    AppCreated,
    ProxyAppCreated,
    AppUpdated,
    AppRemoved,
    AppSecretRotated,
    AppSecretSet,
    KeyRotated,
    AppPasswordCreated,
    AppPasswordRemoved,
    LdapAccountCreated,
    LdapAccountRemoved,
    UserInvited,
    InviteAccepted,
    ResetLinkIssued,
    PasswordResetByLink,
    FirstAdministratorCreated,
    NameChanged,
    TotpEnrolled,
    TotpRemoved,
    RecoveryCodesGenerated,
    FactorsReset,
    PasskeyAdded,
    PasskeyRemoved,
}

impl ChangeKind {
    /// The event's `kind` in `latch events`; never renamed once released.
    pub fn name(self) -> &'static str {
        match self {
            Self::UserCreated => "user_created",
            Self::UserUpdated => "user_updated",
            Self::PasswordChanged => "password_changed",
            Self::PasswordChangedSessionsEnded => "password_changed_sessions_ended",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserUnlocked => "user_unlocked",
            Self::SessionsEnded => "user_sessions_ended",
            Self::GroupCreated => "group_created",
            Self::GroupRemoved => "group_removed",
            Self::GroupMemberAdded => "group_member_added",
            Self::GroupMemberRemoved => "group_member_removed",
            Self::AppCreated => "app_created",
            Self::ProxyAppCreated => "proxy_app_created",
            Self::AppUpdated => "app_updated",
            Self::AppRemoved => "app_removed",
            Self::AppSecretRotated => "app_secret_rotated",
            Self::AppSecretSet => "app_secret_set",
            Self::KeyRotated => "key_rotated",
            Self::AppPasswordCreated => "app_password_created",
            Self::AppPasswordRemoved => "app_password_removed",
            Self::LdapAccountCreated => "ldap_account_created",
            Self::LdapAccountRemoved => "ldap_account_removed",
            Self::UserInvited => "user_invited",
            Self::InviteAccepted => "invite_accepted",
            Self::ResetLinkIssued => "password_reset_link_issued",
            Self::PasswordResetByLink => "password_reset_by_link",
            Self::FirstAdministratorCreated => "first_administrator_created",
            Self::NameChanged => "name_changed",
            Self::TotpEnrolled => "totp_enrolled",
            Self::TotpRemoved => "totp_removed",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::FactorsReset => "factors_reset",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
        }
    }
}

/// One change: its kind and what it changed. A user goes in the event's
/// `username`, an app in its `app` (so `latch events --user/--app` find
/// them); a group or key is named in `detail`.
pub(super) struct Change<'a> {
    kind: ChangeKind,
    username: Option<&'a str>,
    app: Option<&'a str>,
    detail: Option<String>,
}

impl<'a> Change<'a> {
    pub(super) fn to_user(kind: ChangeKind, username: &'a str) -> Self {
        Self { kind, username: Some(username), app: None, detail: None }
    }

    pub(super) fn to_app(kind: ChangeKind, slug: &'a str) -> Self {
        Self { kind, username: None, app: Some(slug), detail: None }
    }

    pub(super) fn other(kind: ChangeKind, detail: String) -> Self {
        Self { kind, username: None, app: None, detail: Some(detail) }
    }

    pub(super) fn detail(self, detail: String) -> Self {
        Self { detail: Some(detail), ..self }
    }

    /// Writes the event. Admin operations write theirs directly rather than
    /// through the request path's batching `Auditor`: a command ends right
    /// after, and a change must not go unrecorded.
    pub(super) async fn record(self, store: &Store, actor: &Actor) -> AdminResult<()> {
        let about = audit::Actor { username: self.username, app: self.app, ..Default::default() };
        let event = audit::change_event(self.kind.name(), &actor.recorded(), &about, self.detail, clock::now());
        store.record_events(&[event]).await?;
        Ok(())
    }
}
