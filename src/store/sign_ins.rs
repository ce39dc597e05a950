//! Sign-ins under way (`login::flow`), one row each, so that any instance
//! continues a sign-in another one started. A finished sign-in's row goes
//! with the session it starts (`create_session`).

use sqlx::Row;

use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// A pending sign-in as stored; `login::flow` reads the strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSignInRow {
    /// As typed when the sign-in started.
    pub username: String,
    /// Whom the proofs so far showed; `None` before the first.
    pub user_id: Option<String>,
    /// RFC 8176 methods with when each was proven: `pwd@1764556800 …`.
    pub proven: String,
    /// The steps still to take, in order, space-separated; the first is the
    /// one the person is at.
    pub required: String,
    /// Where the browser goes once signed in.
    pub next: String,
    pub expires_at: UnixTime,
}

impl Store {
    /// Writes the pending sign-in `id_hash` (SHA-256 of its cookie),
    /// replacing what was stored under it.
    pub async fn save_pending_sign_in(&self, id_hash: &str, row: &PendingSignInRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pending_sign_ins (id_hash, username, user_id, proven, required, next, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id_hash) DO UPDATE SET \
             username = excluded.username, user_id = excluded.user_id, proven = excluded.proven, \
             required = excluded.required, next = excluded.next, expires_at = excluded.expires_at",
        )
        .bind(id_hash)
        .bind(&row.username)
        .bind(&row.user_id)
        .bind(&row.proven)
        .bind(&row.required)
        .bind(&row.next)
        .bind(row.expires_at)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    /// The pending sign-in `id_hash`; `None` when unknown, finished or
    /// expired at `now`.
    pub async fn pending_sign_in(&self, id_hash: &str, now: UnixTime) -> StoreResult<Option<PendingSignInRow>> {
        let row = sqlx::query(
            "SELECT username, user_id, proven, required, next, expires_at FROM pending_sign_ins \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|row| {
            Ok(PendingSignInRow {
                username: row.try_get("username")?,
                user_id: row.try_get("user_id")?,
                proven: row.try_get("proven")?,
                required: row.try_get("required")?,
                next: row.try_get("next")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| error.into())
    }
}
