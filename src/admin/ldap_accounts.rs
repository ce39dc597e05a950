//! Search accounts: what an app binds to LDAP as to look people up
//! (`cn=<name>,ou=services,<base>`), optionally seeing only some groups.

use serde::Serialize;

use super::record::{Change, ChangeKind};
use super::{Actor, AdminResult, validate};
use crate::clock;
use crate::config::Config;
use crate::crypto::{random_token, sha256_hex};
use crate::ldap::dn::Tree;
use crate::store::{LdapAccountSummary, Store};

/// `ldap account add`.
#[derive(Debug, Clone)]
pub struct AddLdapAccount {
    /// Lowercase letters, digits, `-` and `_`, like an app's slug.
    pub name: String,
    /// Sees only these groups and their members; empty: everyone.
    pub groups: Vec<String>,
}

/// The account's bind DN and its secret, shown once. No `Debug`.
#[derive(Serialize)]
pub struct LdapAccountCreated {
    pub dn: String,
    pub password: String,
}

/// Creates a search account with a generated secret (256 bits, stored as
/// its SHA-256). Errors: `Invalid` name or base DN, `Duplicate` account,
/// `NotFound` group.
pub async fn add_ldap_account(
    store: &Store,
    config: &Config,
    actor: &Actor,
    command: AddLdapAccount,
) -> AdminResult<LdapAccountCreated> {
    validate::account_name(&command.name)?;
    let tree = tree(config)?;
    let password = random_token();
    store.create_ldap_account(&command.name, &sha256_hex(&password), &command.groups, clock::now()).await?;
    let detail = if command.groups.is_empty() {
        format!("account {}", command.name)
    } else {
        format!("account {} groups {}", command.name, command.groups.join(","))
    };
    Change::other(ChangeKind::LdapAccountCreated, detail).record(store, actor).await?;
    Ok(LdapAccountCreated { dn: tree.service(&command.name), password })
}

pub async fn list_ldap_accounts(store: &Store) -> AdminResult<Vec<LdapAccountSummary>> {
    Ok(store.list_ldap_accounts().await?)
}

/// Removes a search account: its next search is refused, its next bind
/// fails. Errors: `NotFound` account.
pub async fn remove_ldap_account(store: &Store, actor: &Actor, name: &str) -> AdminResult<()> {
    store.remove_ldap_account(name).await?;
    Change::other(ChangeKind::LdapAccountRemoved, format!("account {name}")).record(store, actor).await
}

/// What `ldap status` shows: the settings and the accounts.
#[derive(Serialize)]
pub struct LdapStatus {
    pub listen: Option<String>,
    pub ldaps_listen: Option<String>,
    pub starttls: bool,
    pub base_dn: String,
    pub people_dn: String,
    pub groups_dn: String,
    pub accounts: Vec<LdapAccountSummary>,
}

pub async fn ldap_status(store: &Store, config: &Config) -> AdminResult<LdapStatus> {
    let tree = tree(config)?;
    Ok(LdapStatus {
        listen: config.ldap.listen.map(|address| address.to_string()),
        ldaps_listen: config.ldap.ldaps_listen.map(|address| address.to_string()),
        starttls: config.ldap.listen.is_some() && config.ldap.tls.is_some(),
        base_dn: tree.base().to_owned(),
        people_dn: tree.people(),
        groups_dn: tree.groups(),
        accounts: store.list_ldap_accounts().await?,
    })
}

fn tree(config: &Config) -> AdminResult<Tree> {
    Tree::new(&config.ldap.base_dn).map_err(|reason| super::AdminError::invalid("ldap_base_dn", reason))
}
