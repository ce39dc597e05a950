//! What the LDAP directory shows: active people with their groups, groups
//! with their active members, and the search accounts apps bind as.

use serde::Serialize;
use sqlx::Row;

use super::groups::GroupSummary;
use super::{Store, StoreError, StoreResult};
use crate::clock::UnixTime;

/// An active person as the directory shows them.
#[derive(Debug, Clone)]
pub struct DirectoryPerson {
    /// The stable OIDC `sub`.
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
}

/// Which rows a directory read returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirectoryQuery<'a> {
    /// Only this person or group (the name compared case-insensitively).
    pub name: Option<&'a str>,
    /// Only what this restricted search account (id) may see.
    pub visible_to: Option<&'a str>,
}

/// A search account, as a bind checks it.
#[derive(Debug, Clone)]
pub struct LdapAccount {
    pub id: String,
    pub name: String,
    /// SHA-256 hex of the secret.
    pub secret_hash: String,
    /// Sees only these groups and their members; `false`: everything.
    pub restricted: bool,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LdapAccountSummary {
    pub name: String,
    /// Empty: sees the whole directory.
    pub groups: Vec<String>,
    pub created_at: UnixTime,
}

impl Store {
    /// Active people, by username, with their groups. Disabled people are
    /// not in the directory.
    pub async fn directory_people(&self, query: DirectoryQuery<'_>) -> StoreResult<Vec<DirectoryPerson>> {
        let mut sql = String::from(
            "SELECT u.id, u.username, u.email, u.name, g.name AS group_name FROM users u \
             LEFT JOIN group_members m ON m.user_id = u.id LEFT JOIN groups g ON g.id = m.group_id \
             WHERE u.disabled_at IS NULL",
        );
        let mut binds = Vec::new();
        if let Some(name) = query.name {
            binds.push(name);
            sql.push_str(&format!(" AND LOWER(u.username) = LOWER(${})", binds.len()));
        }
        if let Some(account) = query.visible_to {
            binds.push(account);
            sql.push_str(&format!(
                " AND u.id IN (SELECT gm.user_id FROM group_members gm JOIN ldap_account_groups a \
                 ON a.group_id = gm.group_id WHERE a.account_id = ${})",
                binds.len()
            ));
        }
        sql.push_str(" ORDER BY u.username, g.name");
        let mut statement = sqlx::query(&sql);
        for bind in binds {
            statement = statement.bind(bind);
        }
        let rows = statement.fetch_all(&mut *self.read().await?).await?;
        let mut people: Vec<DirectoryPerson> = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            if people.last().is_none_or(|last| last.id != id) {
                people.push(DirectoryPerson {
                    id,
                    username: row.try_get("username")?,
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    groups: Vec::new(),
                });
            }
            if let (Some(group), Some(person)) = (row.try_get::<Option<String>, _>("group_name")?, people.last_mut()) {
                person.groups.push(group);
            }
        }
        Ok(people)
    }

    /// Groups, by name, with their active members.
    pub async fn directory_groups(&self, query: DirectoryQuery<'_>) -> StoreResult<Vec<GroupSummary>> {
        let mut sql = String::from(
            "SELECT g.name, u.username FROM groups g LEFT JOIN group_members m ON m.group_id = g.id \
             LEFT JOIN users u ON u.id = m.user_id AND u.disabled_at IS NULL WHERE 1 = 1",
        );
        let mut binds = Vec::new();
        if let Some(name) = query.name {
            binds.push(name);
            sql.push_str(&format!(" AND LOWER(g.name) = LOWER(${})", binds.len()));
        }
        if let Some(account) = query.visible_to {
            binds.push(account);
            sql.push_str(&format!(
                " AND g.id IN (SELECT group_id FROM ldap_account_groups WHERE account_id = ${})",
                binds.len()
            ));
        }
        sql.push_str(" ORDER BY g.name, u.username");
        let mut statement = sqlx::query(&sql);
        for bind in binds {
            statement = statement.bind(bind);
        }
        let rows = statement.fetch_all(&mut *self.read().await?).await?;
        let mut groups: Vec<GroupSummary> = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            if groups.last().is_none_or(|last| last.name != name) {
                groups.push(GroupSummary { name, members: Vec::new() });
            }
            if let (Some(member), Some(group)) = (row.try_get::<Option<String>, _>("username")?, groups.last_mut()) {
                group.members.push(member);
            }
        }
        Ok(groups)
    }

    /// Creates a search account and its group restriction in one
    /// transaction. Errors: `Duplicate` account, `NotFound` group.
    pub async fn create_ldap_account(
        &self,
        name: &str,
        secret_hash: &str,
        groups: &[String],
        now: UnixTime,
    ) -> StoreResult<()> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query(
            "INSERT INTO ldap_accounts (id, name, secret_hash, restricted, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(name)
        .bind(secret_hash)
        .bind(i64::from(!groups.is_empty()))
        .bind(now)
        .execute(&mut *transaction)
        .await
        .map_err(StoreError::on_unique("LDAP account", name))?;
        let insert = "INSERT INTO ldap_account_groups (account_id, group_id) SELECT $1, id FROM groups WHERE name = $2 \
                      ON CONFLICT DO NOTHING";
        self.link_groups(&mut transaction, insert, &id, groups).await?;
        transaction.commit().await?;
        Ok(())
    }

    pub async fn ldap_account(&self, name: &str) -> StoreResult<Option<LdapAccount>> {
        let rows = sqlx::query(
            "SELECT a.id, a.name, a.secret_hash, a.restricted, g.name AS group_name FROM ldap_accounts a \
             LEFT JOIN ldap_account_groups ag ON ag.account_id = a.id LEFT JOIN groups g ON g.id = ag.group_id \
             WHERE a.name = $1 ORDER BY g.name",
        )
        .bind(name)
        .fetch_all(&mut *self.read().await?)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let mut groups = Vec::new();
        for row in &rows {
            if let Some(group) = row.try_get::<Option<String>, _>("group_name")? {
                groups.push(group);
            }
        }
        Ok(Some(LdapAccount {
            id: first.try_get("id")?,
            name: first.try_get("name")?,
            secret_hash: first.try_get("secret_hash")?,
            restricted: first.try_get::<i64, _>("restricted")? != 0,
            groups,
        }))
    }

    pub async fn list_ldap_accounts(&self) -> StoreResult<Vec<LdapAccountSummary>> {
        let rows = sqlx::query(
            "SELECT a.name, a.created_at, g.name AS group_name FROM ldap_accounts a \
             LEFT JOIN ldap_account_groups ag ON ag.account_id = a.id LEFT JOIN groups g ON g.id = ag.group_id \
             ORDER BY a.name, g.name",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut accounts: Vec<LdapAccountSummary> = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            if accounts.last().is_none_or(|last| last.name != name) {
                accounts.push(LdapAccountSummary { name, groups: Vec::new(), created_at: row.try_get("created_at")? });
            }
            if let (Some(group), Some(account)) = (row.try_get::<Option<String>, _>("group_name")?, accounts.last_mut())
            {
                account.groups.push(group);
            }
        }
        Ok(accounts)
    }

    /// Errors: `NotFound` account.
    pub async fn remove_ldap_account(&self, name: &str) -> StoreResult<()> {
        let removed = sqlx::query("DELETE FROM ldap_accounts WHERE name = $1")
            .bind(name)
            .execute(&mut *self.write().await?)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "LDAP account", name: name.to_owned() });
        }
        Ok(())
    }
}
