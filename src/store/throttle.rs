//! Sign-in throttling counters, shared by every instance.
//!
//! A subject (a username or a client address) admits a password check only
//! while its failures in the window plus the checks in flight stay under its
//! limit. A check holds a slot (a `login_attempts` row) until it ends: a
//! failure turns the slot into a failure in one transaction, a success just
//! frees it. So concurrent guesses, on any number of instances, never get
//! more checks than the limit, and right passwords arriving together are
//! never refused for their number: they wait for a slot (`Admission::Busy`).

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// Limits for one kind of subject (a username, or a client IP).
#[derive(Debug, Clone, Copy)]
pub struct FailureLimit {
    pub max_failures: i64,
    /// Seconds failures are counted over.
    pub window: i64,
    /// Seconds a subject stays locked once it reaches `max_failures`.
    pub lockout: i64,
}

/// Whether a password check may start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// It may: the slot is held under this attempt id until
    /// `Store::end_login_attempt`.
    Granted(String),
    /// A subject is locked (or has used up its failures): no check.
    Locked,
    /// Checks in flight hold every free slot of a subject: ask again when
    /// one ends.
    Busy,
}

/// How a password check that held slots ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
    /// It never finished (the request was dropped, or the check failed
    /// internally): neither a failure nor a success.
    Abandoned,
}

impl Store {
    /// Reserves a slot on each subject, in order, all or none, in one
    /// transaction. Order matters for the answer: a locked username is
    /// refused before the address is looked at, so guesses at a locked name
    /// cost the address nothing. Slots expire `lease` seconds after `now`
    /// in case the instance dies mid-check.
    pub async fn begin_login_attempt(
        &self,
        subjects: &[(&str, FailureLimit)],
        now: UnixTime,
        lease: i64,
    ) -> StoreResult<Admission> {
        let mut connection = self.write().await?;
        let mut transaction = connection.begin().await?;
        for &(subject, limit) in subjects {
            if let Some(refusal) = refusal(&mut transaction, subject, limit, now).await? {
                return Ok(refusal);
            }
        }
        let attempt = uuid::Uuid::new_v4().to_string();
        for &(subject, _) in subjects {
            sqlx::query("INSERT INTO login_attempts (attempt, subject, expires_at) VALUES ($1, $2, $3)")
                .bind(&attempt)
                .bind(subject)
                .bind(now.saturating_add(lease))
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(Admission::Granted(attempt))
    }

    /// Ends an attempt and frees its slots, in one transaction, so no one
    /// sees a slot freed before its failure is counted. `Failed`: each
    /// subject counts one more failure and locks once it reaches its limit.
    /// `Succeeded`: the username subject (the first) forgets its failures.
    /// `Abandoned` (the check never finished): nothing else changes.
    pub async fn end_login_attempt(
        &self,
        attempt: &str,
        subjects: &[(&str, FailureLimit)],
        outcome: AttemptOutcome,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut connection = self.write().await?;
        let mut transaction = connection.begin().await?;
        match outcome {
            AttemptOutcome::Failed => {
                for &(subject, limit) in subjects {
                    record_failure(&mut transaction, subject, limit, now).await?;
                }
            }
            AttemptOutcome::Succeeded => {
                if let Some(&(user, _)) = subjects.first() {
                    sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                        .bind(user)
                        .execute(&mut *transaction)
                        .await?;
                }
            }
            AttemptOutcome::Abandoned => {}
        }
        sqlx::query("DELETE FROM login_attempts WHERE attempt = $1").bind(attempt).execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Forgets a subject's failures (`user unlock`).
    pub async fn clear_login_failures(&self, subject: &str) -> StoreResult<bool> {
        let cleared = sqlx::query("DELETE FROM login_failures WHERE subject = $1")
            .bind(subject)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(cleared.rows_affected() > 0)
    }
}

/// Why a subject admits no check now (`None`: it does). Its counter row is
/// locked for the rest of the transaction (the upsert takes the row lock on
/// PostgreSQL; SQLite has one writer), so the count of slots read after it
/// cannot change under us. A window that has passed, or a lock that has
/// ended, starts the count again.
async fn refusal(
    transaction: &mut Transaction<'_, Any>,
    subject: &str,
    limit: FailureLimit,
    now: UnixTime,
) -> StoreResult<Option<Admission>> {
    let row = sqlx::query(
        "INSERT INTO login_failures (subject, failures, window_start, locked_until) VALUES ($1, 0, $2, NULL) \
         ON CONFLICT (subject) DO UPDATE SET \
           failures = CASE \
             WHEN login_failures.locked_until > $2 THEN login_failures.failures \
             WHEN login_failures.window_start <= $2 - $3 OR login_failures.locked_until <= $2 THEN 0 \
             ELSE login_failures.failures END, \
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
    .fetch_one(&mut **transaction)
    .await?;
    let locked_until: Option<i64> = row.try_get("locked_until")?;
    let failures: i64 = row.try_get("failures")?;
    if locked_until.is_some_and(|until| until > now) || failures >= limit.max_failures {
        return Ok(Some(Admission::Locked));
    }
    let in_flight: i64 =
        sqlx::query("SELECT COUNT(*) AS in_flight FROM login_attempts WHERE subject = $1 AND expires_at > $2")
            .bind(subject)
            .bind(now)
            .fetch_one(&mut **transaction)
            .await?
            .try_get("in_flight")?;
    Ok((failures + in_flight >= limit.max_failures).then_some(Admission::Busy))
}

/// One more failure; the subject locks once it reaches the limit.
async fn record_failure(
    transaction: &mut Transaction<'_, Any>,
    subject: &str,
    limit: FailureLimit,
    now: UnixTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_failures (subject, failures, window_start, locked_until) \
         VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 + $4 ELSE NULL END) \
         ON CONFLICT (subject) DO UPDATE SET \
           failures = login_failures.failures + 1, \
           locked_until = CASE \
             WHEN login_failures.failures + 1 >= $3 \
               AND (login_failures.locked_until IS NULL OR login_failures.locked_until <= $2) THEN $2 + $4 \
             ELSE login_failures.locked_until END",
    )
    .bind(subject)
    .bind(now)
    .bind(limit.max_failures)
    .bind(limit.lockout)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}
