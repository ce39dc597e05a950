use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::logout_notices::EndedSessions;
use super::tokens::live_access_token;
use super::{Store, StoreError, StoreResult};
use crate::clock::UnixTime;

pub struct NewUser {
    pub username: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub disabled: bool,
    pub groups: Vec<String>,
    pub created_at: UnixTime,
}

/// What a login needs: nothing is revealed about whether the user exists.
pub struct UserCredentials {
    pub id: String,
    pub password_hash: String,
    pub disabled: bool,
}

/// What tokens and userinfo say about a user.
#[derive(Debug, Clone)]
pub struct UserClaims {
    pub id: String,
    pub username: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
}

impl Store {
    /// Creates the user and their memberships in one transaction: an unknown
    /// group leaves nothing behind.
    pub async fn create_user(&self, user: NewUser, groups: &[String], now: UnixTime) -> StoreResult<String> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let id = self.insert_user_in(&mut transaction, &user, groups, now).await?;
        transaction.commit().await?;
        Ok(id)
    }

    /// Inserts the user and their memberships within `transaction`; returns
    /// the new id. Errors: `Duplicate` user, `NotFound` group.
    pub(super) async fn insert_user_in(
        &self,
        transaction: &mut Transaction<'_, Any>,
        user: &NewUser,
        groups: &[String],
        now: UnixTime,
    ) -> StoreResult<String> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO users (id, username, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(now)
        .execute(&mut **transaction)
        .await
        .map_err(StoreError::on_unique("user", &user.username))?;
        self.link_groups(transaction, "INSERT INTO group_members (group_id, user_id) SELECT id, $1 FROM groups WHERE name = $2 ON CONFLICT DO NOTHING", &id, groups).await?;
        Ok(id)
    }

    pub async fn user_credentials(&self, username: &str) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query("SELECT id, password_hash, disabled_at FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.map(|row| {
            Ok(UserCredentials {
                id: row.try_get("id")?,
                password_hash: row.try_get("password_hash")?,
                disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| error.into())
    }

    /// Sets the password; with `end_sessions`, also ends every session of
    /// the user and what was issued from them, in the same transaction, as a
    /// password reset should (the old password may have leaked). Returns how
    /// many sessions ended.
    pub async fn set_password_hash(
        &self,
        username: &str,
        password_hash: &str,
        end_sessions: bool,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let row = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id")
            .bind(password_hash)
            .bind(username)
            .fetch_optional(&mut *transaction)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound { kind: "user", name: username.to_owned() });
        };
        let ended = if end_sessions {
            Self::end_sessions_of(&mut transaction, &row.try_get::<String, _>("id")?, now).await?
        } else {
            0
        };
        transaction.commit().await?;
        Ok(ended)
    }

    /// Ends every session of the user, revokes every refresh token family
    /// and every access token of theirs, and enqueues the apps' logout
    /// notices. Returns how many sessions ended.
    pub(super) async fn end_sessions_of(
        transaction: &mut Transaction<'_, Any>,
        user_id: &str,
        now: UnixTime,
    ) -> StoreResult<u64> {
        Self::enqueue_logout_notices(transaction, EndedSessions::OfUser, user_id, now).await?;
        let ended =
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&mut **transaction).await?;
        sqlx::query("UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&mut **transaction)
            .await?;
        sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(user_id)
            .execute(&mut **transaction)
            .await?;
        Ok(ended.rows_affected())
    }

    /// Changes a user's e-mail address and display name; `None` keeps it.
    pub async fn update_user(&self, username: &str, email: Option<&str>, name: Option<&str>) -> StoreResult<()> {
        let updated =
            sqlx::query("UPDATE users SET email = COALESCE($1, email), name = COALESCE($2, name) WHERE username = $3")
                .bind(email)
                .bind(name)
                .bind(username)
                .execute(&mut *self.write().await?)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "user", name: username.to_owned() });
        }
        Ok(())
    }

    /// Disabling also ends every session and revokes every access token of
    /// the user, in the same transaction: out everywhere, at once.
    pub async fn set_user_disabled(&self, username: &str, disabled: bool, now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let row = sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $1 = 1 THEN COALESCE(disabled_at, $2) ELSE NULL END WHERE username = $3 RETURNING id",
        )
        .bind(i64::from(disabled))
        .bind(now)
        .bind(username)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound { kind: "user", name: username.to_owned() });
        };
        if disabled {
            Self::end_sessions_of(&mut transaction, &row.try_get::<String, _>("id")?, now).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// A person changing their own password: sets it and ends every other
    /// session of theirs (and what was issued in them, with the apps' logout
    /// notices), keeping `keep` (the SHA-256 of the session cookie they
    /// changed it from), in one transaction. Returns how many sessions
    /// ended; `NotFound` when the user is gone or disabled.
    pub async fn change_own_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep: &str,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND disabled_at IS NULL")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "user", name: user_id.to_owned() });
        }
        let others = sqlx::query("SELECT id_hash FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep)
            .fetch_all(&mut *transaction)
            .await?;
        for other in &others {
            Self::end_session_in(&mut transaction, &other.try_get::<String, _>("id_hash")?, now).await?;
        }
        transaction.commit().await?;
        Ok(others.len() as u64)
    }

    /// Sets the display name of the user `user_id`. `NotFound` when unknown.
    pub async fn set_display_name(&self, user_id: &str, name: &str) -> StoreResult<()> {
        let updated = sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
            .bind(name)
            .bind(user_id)
            .execute(&mut *self.write().await?)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "user", name: user_id.to_owned() });
        }
        Ok(())
    }

    /// Ends every session of a person and revokes their tokens, as
    /// disabling does, but leaves them able to sign in again. Returns how
    /// many sessions ended. Errors: `NotFound` user.
    pub async fn end_user_sessions(&self, username: &str, now: UnixTime) -> StoreResult<u64> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let row = sqlx::query("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *transaction)
            .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound { kind: "user", name: username.to_owned() });
        };
        let ended = Self::end_sessions_of(&mut transaction, &row.try_get::<String, _>("id")?, now).await?;
        transaction.commit().await?;
        Ok(ended)
    }

    /// One person with their groups, or `None`.
    pub async fn user_summary(&self, username: &str) -> StoreResult<Option<UserSummary>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.email, u.name, u.disabled_at, u.created_at, g.name AS group_name \
             FROM users u LEFT JOIN group_members m ON m.user_id = u.id LEFT JOIN groups g ON g.id = m.group_id \
             WHERE u.username = $1 ORDER BY g.name",
        )
        .bind(username)
        .fetch_all(&mut *self.read().await?)
        .await?;
        Ok(summaries_from_rows(&rows)?.pop())
    }

    pub async fn list_users(&self) -> StoreResult<Vec<UserSummary>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.email, u.name, u.disabled_at, u.created_at, g.name AS group_name \
             FROM users u LEFT JOIN group_members m ON m.user_id = u.id LEFT JOIN groups g ON g.id = m.group_id \
             ORDER BY u.username, g.name",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        summaries_from_rows(&rows)
    }

    /// Claims of an active user; `None` when the user is unknown or disabled.
    pub async fn active_user_claims(&self, user_id: &str) -> StoreResult<Option<UserClaims>> {
        let rows = sqlx::query(&format!(
            "SELECT u.id AS user_id, {CLAIM_COLUMNS} FROM users u {GROUPS_JOIN} \
             WHERE u.id = $1 AND u.disabled_at IS NULL ORDER BY g.name"
        ))
        .bind(user_id)
        .fetch_all(&mut *self.read().await?)
        .await?;
        claims_from_rows(&rows)
    }

    /// The scope of a live access token (see `live_access_token`: the access
    /// rule included) and the claims of its user, in one read: what the
    /// UserInfo endpoint answers with.
    pub async fn access_token_claims(&self, jti: &str, now: UnixTime) -> StoreResult<Option<(String, UserClaims)>> {
        let rows = sqlx::query(&format!(
            "SELECT t.scope, t.user_id, {CLAIM_COLUMNS} FROM access_tokens t JOIN users u ON u.id = t.user_id \
             {GROUPS_JOIN} WHERE t.jti = $1 AND {} ORDER BY g.name",
            live_access_token()
        ))
        .bind(jti)
        .bind(now)
        .fetch_all(&mut *self.read().await?)
        .await?;
        let Some(first) = rows.first() else { return Ok(None) };
        let scope = first.try_get("scope")?;
        Ok(claims_from_rows(&rows)?.map(|claims| (scope, claims)))
    }
}

/// People from rows of `id, username, email, name, disabled_at,
/// created_at, group_name`, one row per group, ordered by username.
pub(super) fn summaries_from_rows(rows: &[AnyRow]) -> StoreResult<Vec<UserSummary>> {
    let mut users: Vec<UserSummary> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let group: Option<String> = row.try_get("group_name")?;
        if users.last().is_none_or(|last| last.id != id) {
            users.push(UserSummary {
                id,
                username: row.try_get("username")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
                groups: Vec::new(),
                created_at: row.try_get("created_at")?,
            });
        }
        if let (Some(group), Some(user)) = (group, users.last_mut()) {
            user.groups.push(group);
        }
    }
    Ok(users)
}

const CLAIM_COLUMNS: &str = "u.username, u.email, u.name, g.name AS group_name";
const GROUPS_JOIN: &str = "LEFT JOIN group_members m ON m.user_id = u.id LEFT JOIN groups g ON g.id = m.group_id";

/// A user's claims from rows of `CLAIM_COLUMNS` and `user_id`, one per group.
fn claims_from_rows(rows: &[AnyRow]) -> StoreResult<Option<UserClaims>> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut groups = Vec::new();
    for row in rows {
        if let Some(group) = row.try_get::<Option<String>, _>("group_name")? {
            groups.push(group);
        }
    }
    Ok(Some(UserClaims {
        id: first.try_get("user_id")?,
        username: first.try_get("username")?,
        email: first.try_get("email")?,
        name: first.try_get("name")?,
        groups,
    }))
}
