//! One-time links: the first-run setup link, invites and password resets.
//! A link is found by the SHA-256 of its token; using it is one atomic
//! `UPDATE`, so on any number of instances a link is used at most once.

use sqlx::Row;

use sqlx::{Any, Transaction};

use super::{NewUser, Store, StoreError, StoreResult};
use crate::clock::UnixTime;

/// What a link is for; its name in the `purpose` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Create the first administrator (no user yet).
    Setup,
    /// Choose the first password of an invited person.
    Invite,
    /// Choose a new password.
    Reset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::Invite => "invite",
            Self::Reset => "reset",
        }
    }
}

/// Where a link stands when someone opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Usable: for this user (`None` for a setup link), whose username it is.
    Open {
        user_id: Option<String>,
        username: Option<String>,
    },
    Used,
    Expired,
    /// No such link for this purpose (or it was cleared away long after expiry).
    Unknown,
}

impl Store {
    /// Stores a link for `purpose` (and `user_id`), valid until `expires_at`.
    pub async fn create_link(
        &self,
        token_hash: &str,
        purpose: LinkPurpose,
        user_id: Option<&str>,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        insert_link(&mut transaction, token_hash, purpose, user_id, now, expires_at).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Creates a pending person (their password hash verifies nothing) and
    /// their invite link, in one transaction: an unknown group or a taken
    /// username leaves neither. Returns the new user's id.
    pub async fn create_invited_user(
        &self,
        user: NewUser,
        groups: &[String],
        token_hash: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<String> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let id = self.insert_user_in(&mut transaction, &user, groups, now).await?;
        insert_link(&mut transaction, token_hash, LinkPurpose::Invite, Some(&id), now, expires_at).await?;
        transaction.commit().await?;
        Ok(id)
    }

    /// Where the link `token_hash` for `purpose` stands at `now`.
    pub async fn link_state(&self, token_hash: &str, purpose: LinkPurpose, now: UnixTime) -> StoreResult<LinkState> {
        let row = sqlx::query(
            "SELECT l.user_id, l.expires_at, l.used_at, u.username FROM one_time_links l \
             LEFT JOIN users u ON u.id = l.user_id WHERE l.token_hash = $1 AND l.purpose = $2",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        let Some(row) = row else { return Ok(LinkState::Unknown) };
        if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
            return Ok(LinkState::Used);
        }
        if row.try_get::<i64, _>("expires_at")? <= now {
            return Ok(LinkState::Expired);
        }
        Ok(LinkState::Open { user_id: row.try_get("user_id")?, username: row.try_get("username")? })
    }

    /// Uses the link and sets the password of its user, in one transaction:
    /// of two requests (on any instances) using one link, exactly one gets
    /// `Some(user id)`; the other, and a used or expired link, `None`.
    /// Every other session of the user ends (a reset may follow a leak).
    pub async fn use_password_link(
        &self,
        token_hash: &str,
        purpose: LinkPurpose,
        password_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let Some(user_id) = take_link(&mut transaction, token_hash, purpose, now).await? else {
            transaction.rollback().await?;
            return Ok(None);
        };
        let Some(user_id) = user_id else {
            return Err(StoreError::Corrupt(format!("a {} link names no user", purpose.as_str())));
        };
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(&user_id)
            .execute(&mut *transaction)
            .await?;
        Self::end_sessions_of(&mut transaction, &user_id, now).await?;
        // The other links of the same purpose die with this one: a second
        // reset mail must not undo the password just chosen.
        sqlx::query("UPDATE one_time_links SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL")
            .bind(now)
            .bind(&user_id)
            .bind(purpose.as_str())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(Some(user_id))
    }

    /// Uses a setup link and creates the first administrator in
    /// `admin_group`, in one transaction. `None` when the link is used,
    /// expired or unknown, or when an administrator exists already (made
    /// from the command line, or through another setup link meanwhile).
    pub async fn use_setup_link(
        &self,
        token_hash: &str,
        user: NewUser,
        admin_group: &str,
        now: UnixTime,
    ) -> StoreResult<Option<String>> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        if take_link(&mut transaction, token_hash, LinkPurpose::Setup, now).await?.is_none() {
            transaction.rollback().await?;
            return Ok(None);
        }
        // Every setup link dies with the first one used.
        sqlx::query("UPDATE one_time_links SET used_at = $1 WHERE purpose = $2 AND used_at IS NULL")
            .bind(now)
            .bind(LinkPurpose::Setup.as_str())
            .execute(&mut *transaction)
            .await?;
        let admins = sqlx::query(
            "SELECT COUNT(*) AS admins FROM group_members m JOIN groups g ON g.id = m.group_id WHERE g.name = $1",
        )
        .bind(admin_group)
        .fetch_one(&mut *transaction)
        .await?;
        if admins.try_get::<i64, _>("admins")? > 0 {
            transaction.commit().await?;
            return Ok(None);
        }
        let id = self.insert_user_in(&mut transaction, &user, &[], now).await?;
        let joined = sqlx::query(
            "INSERT INTO group_members (group_id, user_id) SELECT id, $1 FROM groups WHERE name = $2 ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(admin_group)
        .execute(&mut *transaction)
        .await?;
        if joined.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: "group", name: admin_group.to_owned() });
        }
        transaction.commit().await?;
        Ok(Some(id))
    }

    /// Whether the group `group` has a member: is there an administrator?
    pub async fn group_has_members(&self, group: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS members FROM group_members m JOIN groups g ON g.id = m.group_id WHERE g.name = $1",
        )
        .bind(group)
        .fetch_one(&mut *self.read().await?)
        .await?;
        Ok(row.try_get::<i64, _>("members")? > 0)
    }

    /// `(id, username)` of the active people whose username is `login`, or
    /// whose e-mail address is `login` (case-insensitive), at most five.
    pub async fn users_for_login(&self, login: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, username FROM users WHERE disabled_at IS NULL AND (username = $1 OR LOWER(email) = LOWER($1)) \
             ORDER BY username LIMIT 5",
        )
        .bind(login)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("id")?, row.try_get("username")?))).collect()
    }

    /// The id of the user `username`, if any.
    pub async fn user_id(&self, username: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        Ok(row.map(|row| row.try_get("id")).transpose()?)
    }
}

/// Marks the link used if it is open; `Some(its user id)` when this call
/// took it. One statement, so racing callers get one winner.
async fn take_link(
    transaction: &mut Transaction<'_, Any>,
    token_hash: &str,
    purpose: LinkPurpose,
    now: UnixTime,
) -> StoreResult<Option<Option<String>>> {
    let row = sqlx::query(
        "UPDATE one_time_links SET used_at = $1 \
         WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 RETURNING user_id",
    )
    .bind(now)
    .bind(token_hash)
    .bind(purpose.as_str())
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(row.map(|row| row.try_get("user_id")).transpose()?)
}

async fn insert_link(
    transaction: &mut Transaction<'_, Any>,
    token_hash: &str,
    purpose: LinkPurpose,
    user_id: Option<&str>,
    now: UnixTime,
    expires_at: UnixTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO one_time_links (token_hash, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
