use sqlx::Row;

use super::{Store, StoreResult};
use crate::clock::UnixTime;

impl Store {
    /// The scope a user last consented to for an app, if any.
    pub async fn consented_scope(&self, user_id: &str, app_id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND app_id = $2")
            .bind(user_id)
            .bind(app_id)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        Ok(row.map(|row| row.try_get("scope")).transpose()?)
    }

    pub async fn record_consent(&self, user_id: &str, app_id: &str, scope: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, app_id, scope, granted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, app_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(app_id)
        .bind(scope)
        .bind(now)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }
}
