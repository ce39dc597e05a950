use sqlx::Row;

use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// Limits for one kind of subject (a username, or a client IP).
#[derive(Debug, Clone, Copy)]
pub struct FailureLimit {
    pub max_failures: i64,
    pub window: i64,
    pub lockout: i64,
}

impl Store {
    /// Counts an attempt *before* its password is checked, in one atomic
    /// upsert, and says whether it may go ahead. Counting first means a
    /// burst of concurrent guesses, or guesses spread over several
    /// instances, gets no more password checks than the limit: the attempt
    /// that goes over it locks the subject and is refused. A window that has
    /// passed, or a lock that has ended, starts the count again.
    pub async fn begin_login_attempt(&self, subject: &str, limit: FailureLimit, now: UnixTime) -> StoreResult<bool> {
        let row = sqlx::query(
            "INSERT INTO login_failures (subject, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN 1 > $3 THEN $2 + $5 ELSE NULL END) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE \
                 WHEN login_failures.locked_until > $2 THEN login_failures.failures \
                 WHEN login_failures.window_start <= $2 - $4 OR login_failures.locked_until <= $2 THEN 1 \
                 ELSE login_failures.failures + 1 END, \
               window_start = CASE \
                 WHEN login_failures.locked_until > $2 THEN login_failures.window_start \
                 WHEN login_failures.window_start <= $2 - $4 OR login_failures.locked_until <= $2 THEN $2 \
                 ELSE login_failures.window_start END, \
               locked_until = CASE \
                 WHEN login_failures.locked_until > $2 THEN login_failures.locked_until \
                 WHEN login_failures.window_start <= $2 - $4 OR login_failures.locked_until <= $2 THEN NULL \
                 WHEN login_failures.failures + 1 > $3 THEN $2 + $5 \
                 ELSE NULL END \
             RETURNING locked_until",
        )
        .bind(subject)
        .bind(now)
        .bind(limit.max_failures)
        .bind(limit.window)
        .bind(limit.lockout)
        .fetch_one(&self.pool)
        .await?;
        let locked_until: Option<i64> = row.try_get("locked_until")?;
        Ok(locked_until.is_none_or(|until| until <= now))
    }

    /// An attempt that succeeded was not a failure: take it off the count.
    pub async fn forgive_login_attempt(&self, subject: &str) -> StoreResult<()> {
        sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE subject = $1 AND failures > 0")
            .bind(subject)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets a subject's failures (after a good sign-in, or `user unlock`).
    pub async fn clear_login_failures(&self, subject: &str) -> StoreResult<bool> {
        let cleared =
            sqlx::query("DELETE FROM login_failures WHERE subject = $1").bind(subject).execute(&self.pool).await?;
        Ok(cleared.rows_affected() > 0)
    }
}
