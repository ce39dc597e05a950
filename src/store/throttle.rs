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
    /// Whether either subject is locked now.
    pub async fn is_locked(&self, user_subject: &str, ip_subject: &str, now: UnixTime) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS locked FROM login_failures WHERE subject IN ($1, $2) AND locked_until > $3",
        )
        .bind(user_subject)
        .bind(ip_subject)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("locked")? > 0)
    }

    /// Counts a failure in one atomic upsert, so failures spread over
    /// several instances add up; the subject locks when it reaches the limit
    /// within the window.
    pub async fn record_login_failure(&self, subject: &str, limit: FailureLimit, now: UnixTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_failures (subject, failures, window_start, locked_until) \
             VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 + $5 ELSE NULL END) \
             ON CONFLICT (subject) DO UPDATE SET \
               failures = CASE WHEN login_failures.window_start <= $2 - $4 THEN 1 ELSE login_failures.failures + 1 END, \
               window_start = CASE WHEN login_failures.window_start <= $2 - $4 THEN $2 ELSE login_failures.window_start END, \
               locked_until = CASE \
                 WHEN (CASE WHEN login_failures.window_start <= $2 - $4 THEN 1 ELSE login_failures.failures + 1 END) >= $3 \
                 THEN $2 + $5 ELSE login_failures.locked_until END",
        )
        .bind(subject)
        .bind(now)
        .bind(limit.max_failures)
        .bind(limit.window)
        .bind(limit.lockout)
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
