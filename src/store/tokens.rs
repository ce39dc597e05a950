use sqlx::{Any, Row, Transaction};

use super::{Store, StoreResult};
use crate::clock::UnixTime;

pub struct NewAccessToken<'a> {
    pub jti: &'a str,
    pub app_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub code_hash: Option<&'a str>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A live access token: unexpired, unrevoked, its user active.
#[derive(Debug, Clone)]
pub struct AccessTokenGrant {
    pub user_id: String,
    pub app_id: String,
    pub scope: String,
}

impl Store {
    pub(super) async fn insert_access_token(
        transaction: &mut Transaction<'_, Any>,
        token: NewAccessToken<'_>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO access_tokens (jti, app_id, user_id, scope, code_hash, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.jti)
        .bind(token.app_id)
        .bind(token.user_id)
        .bind(token.scope)
        .bind(token.code_hash)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    pub async fn live_access_token(&self, jti: &str, now: UnixTime) -> StoreResult<Option<AccessTokenGrant>> {
        let row = sqlx::query(
            "SELECT t.user_id, t.app_id, t.scope FROM access_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.jti = $1 AND t.revoked_at IS NULL AND t.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(jti)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(AccessTokenGrant {
                user_id: row.try_get("user_id")?,
                app_id: row.try_get("app_id")?,
                scope: row.try_get("scope")?,
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| error.into())
    }
}
