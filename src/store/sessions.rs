use sqlx::{Any, Row, Transaction};

use super::logout_notices::EndedSessions;
use super::{Store, StoreResult};
use crate::clock::UnixTime;
use crate::crypto::random_token;

/// A live sign-in session and the active user it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// SHA-256 of the session cookie: how tokens issued in it find it.
    pub id_hash: String,
    pub user_id: String,
    pub username: String,
    pub auth_time: UnixTime,
    /// The RFC 8176 methods the sign-in used, space-separated (`pwd`).
    pub amr: String,
}

/// A session to start: the SHA-256 of its cookie, whose it is, and how and
/// when they signed in.
pub struct NewSessionRecord<'a> {
    pub id_hash: &'a str,
    pub user_id: &'a str,
    pub auth_time: UnixTime,
    /// The RFC 8176 methods used, space-separated.
    pub amr: &'a str,
    pub expires_at: UnixTime,
    /// The SHA-256 of the session cookie the browser held when it signed
    /// in, if any: the new cookie replaces it, so no one could sign that
    /// session out any more (see `create_session`).
    pub replaces: Option<&'a str>,
}

/// Tables whose rows hang on a session by `session_hash`: what a session
/// replaced by the same person's new sign-in hands over to the new one.
const HANGING_ON_A_SESSION: [&str; 6] =
    ["authorization_codes", "token_families", "device_codes", "proxy_codes", "proxy_sessions", "session_apps"];

impl Store {
    /// Starts a session, with a fresh random `sid` (the identifier ID and
    /// logout tokens name it by; the cookie's hash never leaves Latch). With `pending` (the hash of the pending sign-in it
    /// finishes), that row is deleted in the same transaction, and nothing is
    /// started when it is gone or expired at `now`: of two requests finishing
    /// one sign-in, on any instances, exactly one gets `true`.
    ///
    /// A live session the browser held (`replaces`) would otherwise live on
    /// unreachable: the browser no longer names it, so signing out would
    /// leave it, and the apps that got tokens in it, signed in. The same
    /// person signing in again (`prompt=login`, `max_age`) continues it: the
    /// new session keeps its `sid` and takes over what hangs on it (tokens,
    /// codes, forward-auth cookies, the apps to tell at sign-out). Someone
    /// else signing in ends it, as a sign-out would.
    pub async fn create_session(
        &self,
        session: NewSessionRecord<'_>,
        pending: Option<&str>,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        if let Some(pending) = pending {
            let taken = sqlx::query("DELETE FROM pending_sign_ins WHERE id_hash = $1 AND expires_at > $2")
                .bind(pending)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            if taken.rows_affected() == 0 {
                transaction.rollback().await?;
                return Ok(false);
            }
        }
        // Locks the replaced session's row, so a sign-out racing this either
        // ends it first or finds it gone.
        let replaced = match session.replaces {
            Some(old) => sqlx::query(
                "UPDATE sessions SET expires_at = expires_at WHERE id_hash = $1 AND expires_at > $2 \
                 RETURNING user_id, sid",
            )
            .bind(old)
            .bind(now)
            .fetch_optional(&mut *transaction)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((old, row.try_get::<String, _>("user_id")?, row.try_get("sid")?)))
            .transpose()?,
            None => None,
        };
        let continued = replaced.as_ref().filter(|(_, user_id, _)| user_id == session.user_id);
        let kept_sid = continued.and_then(|(_, _, sid): &(&str, String, Option<String>)| sid.clone());
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, auth_time, amr, expires_at, sid) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session.id_hash)
        .bind(session.user_id)
        .bind(session.auth_time)
        .bind(session.amr)
        .bind(session.expires_at)
        .bind(kept_sid.unwrap_or_else(random_token))
        .execute(&mut *transaction)
        .await?;
        match (&replaced, continued) {
            (_, Some((old, _, _))) => {
                for table in HANGING_ON_A_SESSION {
                    sqlx::query(&format!("UPDATE {table} SET session_hash = $1 WHERE session_hash = $2"))
                        .bind(session.id_hash)
                        .bind(*old)
                        .execute(&mut *transaction)
                        .await?;
                }
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(*old).execute(&mut *transaction).await?;
            }
            (Some((old, _, _)), None) => Self::end_session_in(&mut transaction, old, now).await?,
            (None, None) => {}
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Replaces the RFC 8176 methods of the live session `id_hash` (a second
    /// factor proven in it); whether it was live.
    pub async fn set_session_amr(&self, id_hash: &str, amr: &str, now: UnixTime) -> StoreResult<bool> {
        let updated = sqlx::query("UPDATE sessions SET amr = $2 WHERE id_hash = $1 AND expires_at > $3")
            .bind(id_hash)
            .bind(amr)
            .bind(now)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Marks the session as the sign-in an authorization request demanded:
    /// `mark_hash` stands for it until `expires_at`, replacing any earlier mark.
    pub async fn mark_reauthentication(&self, id_hash: &str, mark_hash: &str, expires_at: UnixTime) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET reauth_mark_hash = $1, reauth_expires_at = $2 WHERE id_hash = $3")
            .bind(mark_hash)
            .bind(expires_at)
            .bind(id_hash)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    /// Takes the session's mark if it is `mark_hash` and unexpired. One
    /// statement clears it, so of two requests (on any instances) presenting
    /// the same mark exactly one gets `true`.
    pub async fn take_reauth_mark(&self, id_hash: &str, mark_hash: &str, now: UnixTime) -> StoreResult<bool> {
        let taken = sqlx::query(
            "UPDATE sessions SET reauth_mark_hash = NULL, reauth_expires_at = NULL \
             WHERE id_hash = $1 AND reauth_mark_hash = $2 AND reauth_expires_at > $3",
        )
        .bind(id_hash)
        .bind(mark_hash)
        .bind(now)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// `None` for an unknown, expired or ended session, or a disabled user.
    pub async fn active_session(&self, id_hash: &str, now: UnixTime) -> StoreResult<Option<SessionUser>> {
        let row = sqlx::query(
            "SELECT s.user_id, u.username, s.auth_time, s.amr FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|row| {
            Ok(SessionUser {
                id_hash: id_hash.to_owned(),
                user_id: row.try_get("user_id")?,
                username: row.try_get("username")?,
                auth_time: row.try_get("auth_time")?,
                amr: row.try_get("amr")?,
            })
        })
        .transpose()
        .map_err(|error: sqlx::Error| error.into())
    }

    /// Ends a session: the row goes, and so does everything issued from it
    /// (refresh token families, and every access token of the session's
    /// code exchanges and refreshes); the apps it gave tokens to are due a
    /// logout notice.
    pub async fn end_session(&self, id_hash: &str, now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        Self::end_session_in(&mut transaction, id_hash, now).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// `end_session` within `transaction`.
    async fn end_session_in(transaction: &mut Transaction<'_, Any>, id_hash: &str, now: UnixTime) -> StoreResult<()> {
        Self::enqueue_logout_notices(transaction, EndedSessions::One, id_hash, now).await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&mut **transaction).await?;
        sqlx::query("UPDATE token_families SET revoked_at = $1 WHERE session_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id_hash)
            .execute(&mut **transaction)
            .await?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND (family_id IN (SELECT id FROM token_families WHERE session_hash = $2) \
                  OR code_hash IN (SELECT code_hash FROM authorization_codes WHERE session_hash = $2))",
        )
        .bind(now)
        .bind(id_hash)
        .execute(&mut **transaction)
        .await?;
        Ok(())
    }

    pub async fn count_active_sessions(&self, now: UnixTime) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS live FROM sessions WHERE expires_at > $1")
            .bind(now)
            .fetch_one(&mut *self.read().await?)
            .await?;
        Ok(row.try_get("live")?)
    }
}

/// Ties a grant being redeemed in `transaction` to its sign-in: pins the
/// session row until commit, so a sign-out racing the redemption either
/// ends the session first (and nothing is issued) or waits and then revokes
/// what was issued; and records that the session's app `app_id` now has
/// tokens, so the session's end is told to it (back-channel logout).
/// `None` when the session has ended or expired at `now`; else the
/// session's public `sid` (`None` for sessions older than `sid`s).
pub(super) async fn pin_for_app(
    transaction: &mut Transaction<'_, Any>,
    session_hash: &str,
    app_id: &str,
    now: UnixTime,
) -> StoreResult<Option<Option<String>>> {
    let pinned =
        sqlx::query("UPDATE sessions SET expires_at = expires_at WHERE id_hash = $1 AND expires_at > $2 RETURNING sid")
            .bind(session_hash)
            .bind(now)
            .fetch_optional(&mut **transaction)
            .await?;
    let Some(pinned) = pinned else { return Ok(None) };
    sqlx::query("INSERT INTO session_apps (session_hash, app_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(session_hash)
        .bind(app_id)
        .execute(&mut **transaction)
        .await?;
    Ok(Some(pinned.try_get("sid")?))
}
