//! The admin layer: every change to people, groups, apps and keys, and the
//! reads that go with them. One function per operation takes a typed
//! command and the `Actor` making it, validates it, writes to the store,
//! records one audit event per change (`record::ChangeKind` names them), and
//! returns data; it never prints. The CLI (`crate::cli`) and an admin
//! console are thin front ends over it: they parse, call, and format. Every
//! check runs before the first write, and multi-row changes are single
//! transactions, so a refused command leaves nothing half-written.

pub mod account;
mod actor;
mod app_options;
mod app_passwords;
mod app_presets;
mod apps;
mod cluster;
mod dashboard;
mod error;
mod events;
mod groups;
pub mod invites;
mod keys;
mod ldap_accounts;
mod maintenance;
mod mfa;
mod proxy;
mod record;
pub mod setup;
mod snippet;
mod users;
pub mod validate;

pub use actor::Actor;
pub use app_options::AppOptionChanges;
pub use app_passwords::{AddAppPassword, AppPasswordAdded, add_app_password, list_app_passwords, remove_app_password};
pub use app_presets::{
    AddPresetApp, PresetApp, PresetCommand, Registered, Settings, add_preset_app, list_presets, preset_command,
};
pub use apps::{
    AddApp, AppCredentials, AppDetails, OidcAppDetails, UpdateApp, add_app, list_apps, remove_app, rotate_secret,
    set_client_secret, show_app, update_app,
};
pub use cluster::cluster_status;
pub use dashboard::{DASHBOARD_DAYS, Dashboard, DayStats, dashboard};
pub use error::{AdminError, AdminResult, ErrorClass};
pub use events::{EventQuery, list_events};
pub use groups::{
    ADMINISTRATORS, Membership, add_group, add_member, is_administrator, list_groups, remove_group, remove_member,
};
pub use keys::{KeyListing, KeyRotation, KeyStatus, RotateKey, list_keys, rotate_key};
pub use ldap_accounts::{
    AddLdapAccount, LdapAccountCreated, LdapStatus, add_ldap_account, ldap_status, list_ldap_accounts,
    remove_ldap_account,
};
pub use maintenance::{backup, new_secret_key, restore};
pub use mfa::{
    EnrolTotp, RecoveryCodes, TOTP_ISSUER, TotpEnrolled, TotpSetup, begin_totp_setup, confirm_totp, enrol_totp,
    list_factors, new_recovery_codes, passkey_added, pending_totp_setup, recovery_codes_left, remove_passkey,
    remove_totp, reset_factors,
};
pub use proxy::{AddProxyApp, ProxySettings, add_proxy_app};
pub use record::ChangeKind;
pub use snippet::app_snippet;
pub use users::{
    AddUser, SetPassword, UpdateUser, UserAdded, add_user, disable_user, enable_user, end_sessions, find_users,
    list_users, set_password, show_user, unlock_user, update_user,
};
