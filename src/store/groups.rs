use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError, StoreResult};
use crate::clock::UnixTime;

#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub name: String,
    pub members: Vec<String>,
}

impl Store {
    pub async fn create_group(&self, name: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO groups (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(name)
            .bind(now)
            .execute(&mut *self.write().await?)
            .await
            .map_err(StoreError::on_unique("group", name))?;
        Ok(())
    }

    /// Links `id` to each named group with `insert` (which binds `$1` = id,
    /// `$2` = group name, and inserts nothing for an unknown name); an
    /// unknown group fails the caller's whole transaction.
    pub(super) async fn link_groups(
        &self,
        transaction: &mut Transaction<'_, Any>,
        insert: &str,
        id: &str,
        groups: &[String],
    ) -> StoreResult<()> {
        for group in groups {
            let added = sqlx::query(insert).bind(id).bind(group).execute(&mut **transaction).await?;
            if added.rows_affected() == 0 && !self.group_exists_in(transaction, group).await? {
                return Err(StoreError::NotFound { kind: "group", name: group.clone() });
            }
        }
        Ok(())
    }

    async fn group_exists_in(&self, transaction: &mut Transaction<'_, Any>, name: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS found FROM groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut **transaction)
            .await?;
        Ok(row.is_some())
    }

    pub async fn add_group_member(&self, group: &str, username: &str) -> StoreResult<()> {
        let added = sqlx::query(
            "INSERT INTO group_members (group_id, user_id) \
             SELECT g.id, u.id FROM groups g, users u WHERE g.name = $1 AND u.username = $2 ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(username)
        .execute(&mut *self.write().await?)
        .await?;
        if added.rows_affected() == 0 {
            self.check_group_and_user(group, username).await?;
        }
        Ok(())
    }

    pub async fn remove_group_member(&self, group: &str, username: &str) -> StoreResult<()> {
        let removed = sqlx::query(
            "DELETE FROM group_members WHERE group_id = (SELECT id FROM groups WHERE name = $1) \
             AND user_id = (SELECT id FROM users WHERE username = $2)",
        )
        .bind(group)
        .bind(username)
        .execute(&mut *self.write().await?)
        .await?;
        if removed.rows_affected() == 0 {
            self.check_group_and_user(group, username).await?;
            return Err(StoreError::NotFound { kind: "member of group", name: format!("{username} in {group}") });
        }
        Ok(())
    }

    /// Names the missing half when a membership change matched nothing.
    async fn check_group_and_user(&self, group: &str, username: &str) -> StoreResult<()> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM groups WHERE name = $1) AS groups_found, \
                    (SELECT COUNT(*) FROM users WHERE username = $2) AS users_found",
        )
        .bind(group)
        .bind(username)
        .fetch_one(&mut *self.read().await?)
        .await?;
        if row.try_get::<i64, _>("groups_found")? == 0 {
            return Err(StoreError::NotFound { kind: "group", name: group.to_owned() });
        }
        if row.try_get::<i64, _>("users_found")? == 0 {
            return Err(StoreError::NotFound { kind: "user", name: username.to_owned() });
        }
        Ok(())
    }

    /// Whether the user with id `user_id` is a member of the group `group`.
    pub async fn is_group_member(&self, user_id: &str, group: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM group_members m JOIN groups g ON g.id = m.group_id \
             WHERE m.user_id = $1 AND g.name = $2",
        )
        .bind(user_id)
        .bind(group)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        Ok(row.is_some())
    }

    pub async fn list_groups(&self) -> StoreResult<Vec<GroupSummary>> {
        let rows = sqlx::query(
            "SELECT g.name, u.username FROM groups g LEFT JOIN group_members m ON m.group_id = g.id \
             LEFT JOIN users u ON u.id = m.user_id ORDER BY g.name, u.username",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        let mut groups: Vec<GroupSummary> = Vec::new();
        for row in rows {
            let name: String = row.try_get("name")?;
            let member: Option<String> = row.try_get("username")?;
            if groups.last().is_none_or(|last| last.name != name) {
                groups.push(GroupSummary { name, members: Vec::new() });
            }
            if let (Some(member), Some(group)) = (member, groups.last_mut()) {
                group.members.push(member);
            }
        }
        Ok(groups)
    }
}
