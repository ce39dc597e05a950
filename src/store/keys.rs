use sqlx::Row;

use super::{Store, StoreResult};
use crate::clock::UnixTime;

pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub private_key: String,
    pub created_at: UnixTime,
}

impl Store {
    /// All signing keys, oldest first.
    pub async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query("SELECT kid, alg, private_key, created_at FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    private_key: row.try_get("private_key")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Stores `key` as the deployment's first signing key unless another
    /// instance already did. The claim on the `first_signing_key` fact is the
    /// transaction's first statement, so concurrent first starts serialize on
    /// it and exactly one key results. Returns whether `key` was stored.
    pub async fn insert_first_signing_key(&self, key: StoredKey) -> StoreResult<bool> {
        let mut transaction = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO deployment_facts (name, value) VALUES ('first_signing_key', $1) ON CONFLICT DO NOTHING",
        )
        .bind(&key.kid)
        .execute(&mut *transaction)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_key)
            .bind(key.created_at)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }
}
