use sqlx::Row;

use super::sealed::{fact_row, signing_key_row};
use super::{Store, StoreResult};
use crate::clock::UnixTime;
use crate::crypto::keys::SigningAlg;

#[derive(sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    #[sqlx(try_from = "String")]
    pub alg: SigningAlg,
    /// PKCS#8 DER, base64: the plaintext, whether or not it is stored sealed.
    pub private_key: String,
    pub created_at: UnixTime,
    /// Signs from this time on; published before it.
    pub activates_at: UnixTime,
    /// Unpublished from this time on; `None` while current.
    pub retire_at: Option<UnixTime>,
}

impl Store {
    /// All signing keys, oldest first, their private keys decrypted.
    pub async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let keys = sqlx::query_as::<_, StoredKey>(
            "SELECT kid, alg, private_key, created_at, activates_at, retire_at FROM signing_keys \
             ORDER BY activates_at, created_at, kid",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        keys.into_iter()
            .map(|key| Ok(StoredKey { private_key: self.unseal(&key.private_key, &signing_key_row(&key.kid))?, ..key }))
            .collect()
    }

    /// What identifies the current key set: changes whenever a key is added
    /// or scheduled to retire, so instances know when to reload.
    pub async fn signing_keys_fingerprint(&self) -> StoreResult<String> {
        let rows = sqlx::query("SELECT kid, activates_at, retire_at FROM signing_keys ORDER BY kid")
            .fetch_all(&mut *self.read().await?)
            .await?;
        let mut fingerprint = String::new();
        for row in rows {
            let kid: String = row.try_get("kid")?;
            let activates_at: i64 = row.try_get("activates_at")?;
            let retire_at: Option<i64> = row.try_get("retire_at")?;
            fingerprint.push_str(&format!("{kid}:{activates_at}:{retire_at:?};"));
        }
        Ok(fingerprint)
    }

    /// Stores `key` as the deployment's first key of its algorithm unless
    /// another instance already did. The claim on the fact is the
    /// transaction's first statement, so concurrent first starts serialize
    /// on it and exactly one key results. Returns whether `key` was stored.
    pub async fn insert_first_signing_key(&self, key: StoredKey) -> StoreResult<bool> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let claimed = sqlx::query("INSERT INTO deployment_facts (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(format!("first_signing_key_{}", key.alg))
            .bind(&key.kid)
            .execute(&mut *transaction)
            .await?;
        if claimed.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_key(&mut transaction, &key).await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Adds the next key of an algorithm and schedules the retirement of the
    /// keys it supersedes, in one transaction.
    pub async fn insert_next_signing_key(&self, key: StoredKey, retire_previous_at: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query("UPDATE signing_keys SET retire_at = $1 WHERE alg = $2 AND retire_at IS NULL")
            .bind(retire_previous_at)
            .bind(key.alg.as_str())
            .execute(&mut *transaction)
            .await?;
        self.insert_key(&mut transaction, &key).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Inserts `key`, its private key sealed when a secret key is set.
    async fn insert_key(&self, transaction: &mut sqlx::Transaction<'_, sqlx::Any>, key: &StoredKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at, retire_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(self.seal(&key.private_key, &signing_key_row(&key.kid))?)
        .bind(key.created_at)
        .bind(key.activates_at)
        .bind(key.retire_at)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    /// The longest access token lifetime any app has, in seconds.
    pub async fn longest_app_token_ttl(&self) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT MAX(access_token_ttl) AS longest FROM apps")
            .fetch_one(&mut *self.read().await?)
            .await?;
        Ok(row.try_get("longest")?)
    }

    /// A secret every instance shares: `candidate` becomes it unless another
    /// instance stored one first. Stored sealed when a secret key is set; one
    /// stored in plaintext before is sealed now.
    pub async fn deployment_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let row = fact_row(name);
        sqlx::query("INSERT INTO deployment_facts (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(self.seal(candidate, &row)?)
            .execute(&mut *self.write().await?)
            .await?;
        let stored: String = sqlx::query("SELECT value FROM deployment_facts WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *self.read().await?)
            .await?
            .try_get("value")?;
        let secret = self.unseal(&stored, &row)?;
        self.seal_plaintext_fact(name, &stored).await?;
        Ok(secret)
    }
}
