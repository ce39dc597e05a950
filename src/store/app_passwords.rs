//! App passwords: extra, revocable passwords a person binds to LDAP with.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::clock::UnixTime;

#[derive(Debug, Clone, Serialize)]
pub struct AppPasswordSummary {
    pub label: String,
    pub created_at: UnixTime,
}

/// An app password to store: `lookup` is its first characters (in clear),
/// `password_hash` the argon2 hash of the whole password.
pub struct NewAppPassword<'a> {
    pub username: &'a str,
    pub label: &'a str,
    pub lookup: &'a str,
    pub password_hash: &'a str,
}

impl Store {
    /// Errors: `NotFound` user, `Duplicate` label for this user.
    pub async fn add_app_password(&self, new: NewAppPassword<'_>, now: UnixTime) -> StoreResult<()> {
        let added = sqlx::query(
            "INSERT INTO app_passwords (id, user_id, label, lookup, password_hash, created_at) \
             SELECT $1, id, $2, $3, $4, $5 FROM users WHERE username = $6",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(new.label)
        .bind(new.lookup)
        .bind(new.password_hash)
        .bind(now)
        .bind(new.username)
        .execute(&mut *self.write().await?)
        .await
        .map_err(StoreError::on_unique("app password", new.label))?;
        if added.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "user", name: new.username.to_owned() });
        }
        Ok(())
    }

    /// The person's app passwords by label. Errors: `NotFound` user.
    pub async fn list_app_passwords(&self, username: &str) -> StoreResult<Vec<AppPasswordSummary>> {
        let rows = sqlx::query(
            "SELECT u.id, p.label, p.created_at FROM users u LEFT JOIN app_passwords p ON p.user_id = u.id \
             WHERE u.username = $1 ORDER BY p.label",
        )
        .bind(username)
        .fetch_all(&mut *self.read().await?)
        .await?;
        if rows.is_empty() {
            return Err(StoreError::NotFound { kind: "user", name: username.to_owned() });
        }
        let mut passwords = Vec::new();
        for row in rows {
            if let Some(label) = row.try_get::<Option<String>, _>("label")? {
                passwords.push(AppPasswordSummary { label, created_at: row.try_get("created_at")? });
            }
        }
        Ok(passwords)
    }

    /// Errors: `NotFound` when the user has no app password of that label.
    pub async fn remove_app_password(&self, username: &str, label: &str) -> StoreResult<()> {
        let removed = sqlx::query(
            "DELETE FROM app_passwords WHERE label = $1 AND user_id = (SELECT id FROM users WHERE username = $2)",
        )
        .bind(label)
        .bind(username)
        .execute(&mut *self.write().await?)
        .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "app password", name: format!("{label} of {username}") });
        }
        Ok(())
    }

    /// The hashes of the user's app passwords that begin with `lookup`
    /// (almost always none or one).
    pub async fn app_password_hashes(&self, user_id: &str, lookup: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT password_hash FROM app_passwords WHERE user_id = $1 AND lookup = $2")
            .bind(user_id)
            .bind(lookup)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(|row| row.try_get("password_hash").map_err(StoreError::from)).collect()
    }
}
