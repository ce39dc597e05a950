//! Logout notices waiting to be delivered to apps, as data: which app, which
//! person and session, when the next attempt is due and who holds it. They
//! are written in the transaction that ends a session, so none is lost, and
//! claimed with a lease, so that of several instances exactly one attempts a
//! notice at a time and a dead instance's notice is taken up by another.

use sqlx::{Any, Row, Transaction};

use super::apps::parse_column;
use super::{Store, StoreResult};
use crate::clock::UnixTime;
use crate::crypto::keys::SigningAlg;
use crate::crypto::random_token;

/// One claimed notice: what an attempt to deliver it needs.
#[derive(Debug, Clone)]
pub struct LogoutNotice {
    pub id: String,
    /// The claim this attempt holds; finishing or rescheduling needs it.
    pub lease: String,
    pub user_id: String,
    /// The ended session's public `sid`; `None` for a session older than it.
    pub sid: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub created_at: UnixTime,
    pub app_slug: String,
    pub client_id: String,
    pub signing_alg: SigningAlg,
    /// Where to deliver; `None` when the app's URI was removed since.
    pub uri: Option<String>,
}

/// Which sessions a notice is enqueued for: an SQL condition on `s`
/// (`sessions`) with the key as `$1`.
pub(super) enum EndedSessions {
    One,
    OfUser,
}

impl EndedSessions {
    fn condition(&self) -> &'static str {
        match self {
            Self::One => "s.id_hash = $1",
            Self::OfUser => "s.user_id = $1",
        }
    }
}

impl Store {
    /// Enqueues a notice, due at once, for every app that received tokens
    /// in the sessions `which` (keyed by `key`) and registered a
    /// back-channel logout URI. Runs before the sessions are deleted, in the
    /// same transaction.
    pub(super) async fn enqueue_logout_notices(
        transaction: &mut Transaction<'_, Any>,
        which: EndedSessions,
        key: &str,
        now: UnixTime,
    ) -> StoreResult<()> {
        // Lock the sessions first: a second sign-out of the same session
        // then waits for this one and finds nothing left to notify.
        sqlx::query(&format!(
            "UPDATE sessions SET expires_at = expires_at WHERE id_hash IN (SELECT s.id_hash FROM sessions s WHERE {})",
            which.condition()
        ))
        .bind(key)
        .execute(&mut **transaction)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO logout_notices (id, app_id, user_id, sid, created_at, due_at) \
             SELECT $2 || '.' || sa.session_hash || '.' || a.id, a.id, s.user_id, s.sid, $3, $3 \
             FROM sessions s JOIN session_apps sa ON sa.session_hash = s.id_hash JOIN apps a ON a.id = sa.app_id \
             WHERE {} AND a.backchannel_logout_uri IS NOT NULL",
            which.condition()
        ))
        .bind(key)
        .bind(random_token())
        .bind(now)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    /// Claims up to `limit` notices due at `now` until `lease_until`, in one
    /// atomic `UPDATE`: a notice another instance claimed first is no longer
    /// due (PostgreSQL re-checks `due_at` on the row it waited for), so two
    /// instances never attempt one notice at once.
    pub async fn claim_logout_notices(
        &self,
        now: UnixTime,
        lease_until: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<LogoutNotice>> {
        let lease = random_token();
        let claimed = sqlx::query(
            "UPDATE logout_notices SET due_at = $2, lease = $3, attempts = attempts + 1 \
             WHERE due_at <= $1 AND id IN (SELECT id FROM logout_notices WHERE due_at <= $1 ORDER BY due_at LIMIT $4)",
        )
        .bind(now)
        .bind(lease_until)
        .bind(&lease)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .execute(&mut *self.write().await?)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT n.id, n.user_id, n.sid, n.attempts, n.created_at, a.slug, a.client_id, a.signing_alg, \
             a.backchannel_logout_uri FROM logout_notices n JOIN apps a ON a.id = n.app_id WHERE n.lease = $1",
        )
        .bind(&lease)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LogoutNotice {
                    id: row.try_get("id")?,
                    lease: lease.clone(),
                    user_id: row.try_get("user_id")?,
                    sid: row.try_get("sid")?,
                    attempts: row.try_get("attempts")?,
                    created_at: row.try_get("created_at")?,
                    app_slug: row.try_get("slug")?,
                    client_id: row.try_get("client_id")?,
                    signing_alg: parse_column(row, "signing_alg")?,
                    uri: row.try_get("backchannel_logout_uri")?,
                })
            })
            .collect()
    }

    /// Removes a delivered (or abandoned) notice, if this attempt still
    /// holds it.
    pub async fn finish_logout_notice(&self, notice: &LogoutNotice) -> StoreResult<()> {
        sqlx::query("DELETE FROM logout_notices WHERE id = $1 AND lease = $2")
            .bind(&notice.id)
            .bind(&notice.lease)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    /// Releases a failed attempt's claim; the notice is due again at `due_at`.
    pub async fn retry_logout_notice(&self, notice: &LogoutNotice, due_at: UnixTime) -> StoreResult<()> {
        sqlx::query("UPDATE logout_notices SET due_at = $1, lease = NULL WHERE id = $2 AND lease = $3")
            .bind(due_at)
            .bind(&notice.id)
            .bind(&notice.lease)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }
}
