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
    /// upsert, and says whether it may go ahead: not while the subject is
    /// locked, and not beyond the limit of attempts in the window. Counting
    /// first means a burst of concurrent guesses, or guesses spread over
    /// several instances, gets no more password checks than the limit. Only
    /// real failures lock (`record_login_failure`); an attempt refused for
    /// the count alone is taken off it again, so a rush of people signing in
    /// behind one address locks nobody out. A window that has passed, or a
    /// lock that has ended, starts the count again.
    pub async fn begin_login_attempt(&self, subject: &str, limit: FailureLimit, now: UnixTime) -> StoreResult<bool> {
        let row = sqlx::query(
            "INSERT INTO login_failures (subject, failures, window_start, locked_until) VALUES ($1, 1, $2, NULL) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE \
                 WHEN login_failures.locked_until > $2 THEN login_failures.failures \
                 WHEN login_failures.window_start <= $2 - $3 OR login_failures.locked_until <= $2 THEN 1 \
                 ELSE login_failures.failures + 1 END, \
               window_start = CASE \
                 WHEN login_failures.locked_until > $2 THEN login_failures.window_start \
                 WHEN login_failures.window_start <= $2 - $3 OR login_failures.locked_until <= $2 THEN $2 \
                 ELSE login_failures.window_start END, \
               locked_until = CASE WHEN login_failures.locked_until > $2 THEN login_failures.locked_until ELSE NULL END \
             RETURNING failures, locked_until",
        )
        .bind(subject)
        .bind(now)
        .bind(limit.window)
        .fetch_one(&mut *self.write().await?)
        .await?;
        let locked_until: Option<i64> = row.try_get("locked_until")?;
        if locked_until.is_some_and(|until| until > now) {
            return Ok(false);
        }
        if row.try_get::<i64, _>("failures")? > limit.max_failures {
            self.forgive_login_attempt(subject).await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a wrong password: the subject locks once its count reaches the
    /// limit.
    pub async fn record_login_failure(&self, subject: &str, limit: FailureLimit, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "UPDATE login_failures SET locked_until = $2 + $3 \
             WHERE subject = $1 AND failures >= $4 AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(subject)
        .bind(now)
        .bind(limit.lockout)
        .bind(limit.max_failures)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    /// An attempt that succeeded was not a failure: take it off the count.
    pub async fn forgive_login_attempt(&self, subject: &str) -> StoreResult<()> {
        sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE subject = $1 AND failures > 0")
            .bind(subject)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(())
    }

    /// Forgets a subject's failures (after a good sign-in, or `user unlock`).
    pub async fn clear_login_failures(&self, subject: &str) -> StoreResult<bool> {
        let cleared = sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(cleared.rows_affected() > 0)
    }
}
