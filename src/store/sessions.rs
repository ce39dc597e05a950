use sqlx::Row;

use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// A live sign-in session and the active user it belongs to.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: String,
    pub auth_time: UnixTime,
}

impl Store {
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: &str,
        auth_time: UnixTime,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, auth_time, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id_hash)
            .bind(user_id)
            .bind(auth_time)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `None` for an unknown, expired or ended session, or a disabled user.
    pub async fn active_session(&self, id_hash: &str, now: UnixTime) -> StoreResult<Option<SessionUser>> {
        let row = sqlx::query(
            "SELECT s.user_id, s.auth_time FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok(SessionUser { user_id: row.try_get("user_id")?, auth_time: row.try_get("auth_time")? }))
            .transpose()
            .map_err(|error: sqlx::Error| error.into())
    }
}
