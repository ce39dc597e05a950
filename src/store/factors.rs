//! Second factors: each person's TOTP authenticator and recovery codes. A
//! TOTP secret is sealed with `secret_key_file` when one is set (row
//! `totp_factors:<user_id>`); recovery codes are stored hashed. Every "use
//! once" is one conditional `UPDATE`, so two instances racing on one code
//! give one winner.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreResult};
use crate::canonical::canonical_enum;
use crate::clock::UnixTime;

canonical_enum! {
    /// The kinds of second factor a person can hold. (Recovery codes are
    /// a fallback for these, not a factor of their own.)
    pub enum FactorKind ("factor kind") {
        /// A TOTP authenticator app (RFC 6238).
        Totp = "totp",
        /// A WebAuthn credential.
        Passkey = "passkey",
    }
}

/// One factor as listings show it: never its secret. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Factor {
    pub kind: FactorKind,
    pub name: String,
    pub created: UnixTime,
    pub last_used: Option<UnixTime>,
}

/// A person's TOTP authenticator as the code check needs it.
#[derive(Debug, Clone)]
pub struct TotpFactor {
    /// Base32, unsealed.
    pub secret: String,
    /// The last time step accepted (-1: none yet).
    pub last_step: i64,
    /// `false` while a set-up awaits its confirming code.
    pub confirmed: bool,
}

/// How an enrolment may treat an authenticator already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpEnrolment {
    /// A set-up to confirm with a code: replaces an unconfirmed one only.
    Unconfirmed,
    /// Confirmed at once (an admin hands the URI over): replaces an
    /// unconfirmed one only.
    Confirmed,
    /// Confirmed at once, replacing whatever is there.
    Replacing,
}

fn totp_row(user_id: &str) -> String {
    format!("totp_factors:{user_id}")
}

impl Store {
    /// The person's second factors, oldest first (TOTP only when
    /// confirmed).
    pub async fn factors(&self, user_id: &str) -> StoreResult<Vec<Factor>> {
        let rows = sqlx::query(
            "SELECT name, created_at, last_used_at FROM totp_factors \
             WHERE user_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at",
        )
        .bind(user_id)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Factor {
                    kind: FactorKind::Totp,
                    name: row.try_get("name")?,
                    created: row.try_get("created_at")?,
                    last_used: row.try_get("last_used_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Stores `secret` (base32) as the person's authenticator, as `mode`
    /// allows; `false` when a confirmed one is there and `mode` keeps it.
    pub async fn enrol_totp(
        &self,
        user_id: &str,
        name: &str,
        secret: &str,
        mode: TotpEnrolment,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let confirmed_at = (mode != TotpEnrolment::Unconfirmed).then_some(now);
        let condition = if mode == TotpEnrolment::Replacing { "" } else { " WHERE totp_factors.confirmed_at IS NULL" };
        let written = sqlx::query(&format!(
            "INSERT INTO totp_factors (user_id, name, secret, created_at, confirmed_at, last_used_at, last_step) \
             VALUES ($1, $2, $3, $4, $5, NULL, -1) ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, \
             secret = excluded.secret, created_at = excluded.created_at, confirmed_at = excluded.confirmed_at, \
             last_used_at = NULL, last_step = -1{condition}"
        ))
        .bind(user_id)
        .bind(name)
        .bind(self.seal(secret, &totp_row(user_id))?)
        .bind(now)
        .bind(confirmed_at)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(written.rows_affected() == 1)
    }

    /// The person's authenticator, confirmed or not.
    pub async fn totp_factor(&self, user_id: &str) -> StoreResult<Option<TotpFactor>> {
        let row = sqlx::query("SELECT secret, last_step, confirmed_at FROM totp_factors WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpFactor {
            secret: self.unseal(&row.try_get::<String, _>("secret")?, &totp_row(user_id))?,
            last_step: row.try_get("last_step")?,
            confirmed: row.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
        }))
    }

    /// Records that the code of time step `step` was accepted, unless that
    /// step or a later one was already: `false` then (a replay, or a race
    /// another request or instance won). `confirming`: the code confirms a
    /// set-up (only an unconfirmed authenticator takes it); otherwise only
    /// a confirmed one does.
    pub async fn use_totp_step(&self, user_id: &str, step: i64, confirming: bool, now: UnixTime) -> StoreResult<bool> {
        let state = if confirming { "confirmed_at IS NULL" } else { "confirmed_at IS NOT NULL" };
        let used = sqlx::query(&format!(
            "UPDATE totp_factors SET last_step = $2, last_used_at = $3, confirmed_at = COALESCE(confirmed_at, $3) \
             WHERE user_id = $1 AND last_step < $2 AND {state}"
        ))
        .bind(user_id)
        .bind(step)
        .bind(now)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(used.rows_affected() == 1)
    }

    /// Removes the person's authenticator; whether there was one.
    pub async fn remove_totp(&self, user_id: &str) -> StoreResult<bool> {
        let removed = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.write().await?)
            .await?;
        Ok(removed.rows_affected() > 0)
    }

    /// Replaces the person's recovery codes with these hashes, in one
    /// transaction.
    pub async fn replace_recovery_codes(&self, user_id: &str, hashes: &[String], now: UnixTime) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *transaction).await?;
        for hash in hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)")
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Uses the recovery code `hash` up: how many unused codes remain, or
    /// `None` when it is unknown or used already.
    pub async fn use_recovery_code(&self, user_id: &str, hash: &str, now: UnixTime) -> StoreResult<Option<i64>> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let used = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        if used.rows_affected() != 1 {
            transaction.rollback().await?;
            return Ok(None);
        }
        let left = unused_codes(&mut transaction, user_id).await?;
        transaction.commit().await?;
        Ok(Some(left))
    }

    /// How many unused recovery codes the person has.
    pub async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<i64> {
        let row = sqlx::query(UNUSED_CODES).bind(user_id).fetch_one(&mut *self.read().await?).await?;
        Ok(row.try_get("left_over")?)
    }

    /// Removes every factor and recovery code of the person, in one
    /// transaction; how many factors there were.
    pub async fn reset_factors(&self, user_id: &str) -> StoreResult<u64> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        let removed = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL")
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("DELETE FROM totp_factors WHERE user_id = $1").bind(user_id).execute(&mut *transaction).await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(removed.rows_affected())
    }
}

const UNUSED_CODES: &str = "SELECT COUNT(*) AS left_over FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";

async fn unused_codes(transaction: &mut sqlx::Transaction<'_, sqlx::Any>, user_id: &str) -> StoreResult<i64> {
    let row = sqlx::query(UNUSED_CODES).bind(user_id).fetch_one(&mut **transaction).await?;
    Ok(row.try_get("left_over")?)
}
