//! Secrets the store keeps in a form Latch reads back (signing private
//! keys, deployment secrets) are sealed with the `secret_key_file` key when
//! one is configured (`crypto::at_rest`). Each value is bound to its row:
//! `signing_keys:<kid>` or `deployment_facts:<name>`.
//!
//! A deployment turns encryption on by starting with a key: the row
//! `deployment_facts.secret_key_check` (a value sealed with the key) is
//! written once, so every later start can tell a missing or wrong key at
//! once; plaintext signing keys are sealed at connect, a plaintext
//! deployment secret when it is next read (only the caller knows which
//! facts are secrets).

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::crypto::at_rest::{self, SealError};

const CHECK_FACT: &str = "secret_key_check";
const CHECK_TEXT: &str = "latch secret key check";
const SETTING: &str = "secret_key_file (LATCH_SECRET_KEY_FILE / --secret-key-file)";

/// The associated data of a signing key's `private_key`.
pub(super) fn signing_key_row(kid: &str) -> String {
    format!("signing_keys:{kid}")
}

/// The associated data of a deployment fact's `value`.
pub(super) fn fact_row(name: &str) -> String {
    format!("deployment_facts:{name}")
}

impl Store {
    /// `plaintext` as it is to be stored in `row`: sealed when a key is set.
    pub(super) fn seal(&self, plaintext: &str, row: &str) -> StoreResult<String> {
        match &self.secret_key {
            Some(key) => key.seal(plaintext, row).map_err(|error| StoreError::SecretKey(error.to_string())),
            None => Ok(plaintext.to_owned()),
        }
    }

    /// The plaintext of `stored`, read from `row`.
    pub(super) fn unseal(&self, stored: &str, row: &str) -> StoreResult<String> {
        at_rest::open(self.secret_key.as_ref(), stored, row).map_err(|error| self.unseal_error(&error, row))
    }

    fn unseal_error(&self, error: &SealError, row: &str) -> StoreError {
        StoreError::SecretKey(match (error, &self.secret_key) {
            (SealError::WrongKey, Some(key)) => format!(
                "the database's secrets ({row}) do not decrypt with the key in {SETTING} {}: they were encrypted \
                 with another key, and every instance must use the key file they were encrypted with",
                key.path().display()
            ),
            (SealError::NoKey | SealError::WrongKey, _) => format!(
                "the database's secrets ({row}) are encrypted: set {SETTING} to the key file they were encrypted with"
            ),
            (SealError::Failed, _) => format!("cannot encrypt {row}: {error}"),
        })
    }

    /// Refuses a missing or wrong key before anything is read or sealed; with
    /// a key, records (once: a write on every start would queue each admin
    /// command on SQLite's write lock) that the secrets are sealed with it.
    pub(super) async fn check_secret_key(&self) -> StoreResult<()> {
        let row = fact_row(CHECK_FACT);
        let mut stored = self.check_value().await?;
        if stored.is_none() && self.secret_key.is_some() {
            sqlx::query("INSERT INTO deployment_facts (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(CHECK_FACT)
                .bind(self.seal(CHECK_TEXT, &row)?)
                .execute(&mut *self.write().await?)
                .await?;
            stored = self.check_value().await?;
        }
        match stored {
            Some(stored) => self.unseal(&stored, &row).map(drop),
            None => Ok(()),
        }
    }

    async fn check_value(&self) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM deployment_facts WHERE name = $1")
            .bind(CHECK_FACT)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        Ok(row.map(|row| row.try_get("value")).transpose()?)
    }

    /// With a key, seals every signing key still stored in plaintext. Each
    /// update applies only to the value read, so instances starting
    /// together seal each key once.
    pub(super) async fn seal_plaintext_signing_keys(&self) -> StoreResult<()> {
        if self.secret_key.is_none() {
            return Ok(());
        }
        let rows = sqlx::query("SELECT kid, private_key FROM signing_keys").fetch_all(&mut *self.read().await?).await?;
        for row in rows {
            let (kid, stored): (String, String) = (row.try_get("kid")?, row.try_get("private_key")?);
            if at_rest::is_sealed(&stored) {
                continue;
            }
            sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3")
                .bind(self.seal(&stored, &signing_key_row(&kid))?)
                .bind(&kid)
                .bind(&stored)
                .execute(&mut *self.write().await?)
                .await?;
            tracing::info!(kid, "signing key encrypted with the secret key");
        }
        Ok(())
    }

    /// With a key, seals the plaintext `stored` value of fact `name` in
    /// place (unless another instance changed it meanwhile).
    pub(super) async fn seal_plaintext_fact(&self, name: &str, stored: &str) -> StoreResult<()> {
        if self.secret_key.is_none() || at_rest::is_sealed(stored) {
            return Ok(());
        }
        sqlx::query("UPDATE deployment_facts SET value = $1 WHERE name = $2 AND value = $3")
            .bind(self.seal(stored, &fact_row(name))?)
            .bind(name)
            .bind(stored)
            .execute(&mut *self.write().await?)
            .await?;
        tracing::info!(name, "deployment secret encrypted with the secret key");
        Ok(())
    }
}
