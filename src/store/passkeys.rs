//! Passkeys and the WebAuthn ceremonies under way (`login::passkey`). The
//! store keeps the credentials and ceremony states as the opaque JSON the
//! login layer hands it; it knows nothing of WebAuthn.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreResult};
use crate::clock::UnixTime;

/// One passkey as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRow {
    /// A UUID naming it on the person's pages.
    pub id: String,
    pub user_id: String,
    /// base64url of the WebAuthn credential id.
    pub credential_id: String,
    pub name: String,
    /// The credential as JSON (`login::passkey` reads it).
    pub credential: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// A ceremony under way, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRow {
    /// `register`, `sign_in` or `second_factor`.
    pub kind: String,
    /// Whom it is for; `None` for a sign-in where no one is known yet.
    pub user_id: Option<String>,
    /// SHA-256 of the pending sign-in a second factor belongs to.
    pub bound_to: Option<String>,
    /// The label a registration gives the new passkey.
    pub name: Option<String>,
    /// The ceremony state as JSON.
    pub state: String,
    pub expires_at: UnixTime,
}

const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, name, credential, created_at, last_used_at";

fn passkey(row: &AnyRow) -> Result<PasskeyRow, sqlx::Error> {
    Ok(PasskeyRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        credential_id: row.try_get("credential_id")?,
        name: row.try_get("name")?,
        credential: row.try_get("credential")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

impl Store {
    /// Keeps a new passkey. `Duplicate` when its credential id is already
    /// registered (to anyone: a credential belongs to one account).
    pub async fn add_passkey(&self, row: &PasskeyRow) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO passkeys ({PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
            .bind(&row.id)
            .bind(&row.user_id)
            .bind(&row.credential_id)
            .bind(&row.name)
            .bind(&row.credential)
            .bind(row.created_at)
            .bind(row.last_used_at)
            .execute(&mut *self.write().await?)
            .await
            .map_err(StoreError::on_unique("passkey", &row.name))?;
        Ok(())
    }

    /// A person's passkeys, oldest first.
    pub async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
        let rows =
            sqlx::query(&format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"))
                .bind(user_id)
                .fetch_all(&mut *self.read().await?)
                .await?;
        Ok(rows.iter().map(passkey).collect::<Result<_, _>>()?)
    }

    /// The passkey with this credential id, if it is `user_id`'s.
    pub async fn passkey_by_credential(&self, user_id: &str, credential_id: &str) -> StoreResult<Option<PasskeyRow>> {
        let row =
            sqlx::query(&format!("SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE user_id = $1 AND credential_id = $2"))
                .bind(user_id)
                .bind(credential_id)
                .fetch_optional(&mut *self.read().await?)
                .await?;
        Ok(row.as_ref().map(passkey).transpose()?)
    }

    /// Records a use of passkey `id` at `now`, with its credential as
    /// updated by that use (sign count, backup state).
    pub async fn passkey_used(&self, id: &str, credential: &str, now: UnixTime) -> StoreResult<()> {
        sqlx::query("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3")
            .bind(credential)
            .bind(now)
            .bind(id)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    /// Removes `user_id`'s passkey `id`; its name, or `None` when the person
    /// has no such passkey.
    pub async fn remove_passkey(&self, user_id: &str, id: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2 RETURNING name")
            .bind(user_id)
            .bind(id)
            .fetch_optional(&mut *self.write().await?)
            .await?;
        Ok(row.map(|row| row.try_get("name")).transpose()?)
    }

    /// Keeps a ceremony under `id_hash` (SHA-256 of its token).
    pub async fn save_ceremony(&self, id_hash: &str, row: &CeremonyRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO passkey_ceremonies (id_hash, kind, user_id, bound_to, name, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash)
        .bind(&row.kind)
        .bind(&row.user_id)
        .bind(&row.bound_to)
        .bind(&row.name)
        .bind(&row.state)
        .bind(row.expires_at)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    /// Takes the ceremony `id_hash`: deletes it and returns it, in one
    /// statement, so of two requests finishing it (on any instances) one
    /// gets it. `None` when unknown, already taken or expired at `now`.
    pub async fn take_ceremony(&self, id_hash: &str, now: UnixTime) -> StoreResult<Option<CeremonyRow>> {
        let row = sqlx::query(
            "DELETE FROM passkey_ceremonies WHERE id_hash = $1 AND expires_at > $2 \
             RETURNING kind, user_id, bound_to, name, state, expires_at",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&mut *self.write().await?)
        .await?;
        let ceremony = |row: AnyRow| -> Result<CeremonyRow, sqlx::Error> {
            Ok(CeremonyRow {
                kind: row.try_get("kind")?,
                user_id: row.try_get("user_id")?,
                bound_to: row.try_get("bound_to")?,
                name: row.try_get("name")?,
                state: row.try_get("state")?,
                expires_at: row.try_get("expires_at")?,
            })
        };
        Ok(row.map(ceremony).transpose()?)
    }
}
