use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// Rows deleted per statement: small, so no lock is held for long.
const BATCH: i64 = 500;

/// Expired rows, by table: `(table, key column, condition on $1 = cut-off)`.
/// Used codes are kept past expiry for a while so that a replay is still
/// recognized as one, and for as long as an access token they bought lives:
/// that token is tied to its session only through the code, and a sign-out
/// finds it that way (`end_session`). Device codes are kept an hour past
/// expiry, so a device still polling is told `expired_token`, not that the
/// code is unknown. An instance silent for a day is gone for good (`latch
/// cluster status` shows it as stale until then).
const EXPIRED: [(&str, &str, &str); 13] = [
    (
        "authorization_codes",
        "code_hash",
        "expires_at < $1 - 600 \
       AND NOT EXISTS (SELECT 1 FROM access_tokens t WHERE t.code_hash = authorization_codes.code_hash)",
    ),
    ("sessions", "id_hash", "expires_at < $1"),
    ("pending_sign_ins", "id_hash", "expires_at < $1"),
    ("passkey_ceremonies", "id_hash", "expires_at < $1"),
    ("device_codes", "device_code_hash", "expires_at < $1 - 3600"),
    ("access_tokens", "jti", "expires_at < $1"),
    ("client_tokens", "jti", "expires_at < $1"),
    ("refresh_tokens", "token_hash", "expires_at < $1"),
    (
        "token_families",
        "id",
        "NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = token_families.id) \
       AND NOT EXISTS (SELECT 1 FROM access_tokens t WHERE t.family_id = token_families.id) AND created_at < $1 - 60",
    ),
    ("login_attempts", "attempt", "expires_at < $1"),
    // Kept a week past expiry, so that a late click is told the link
    // expired rather than that it is unknown.
    ("one_time_links", "token_hash", "expires_at < $1 - 604800"),
    ("login_failures", "subject", "window_start < $1 - 86400 AND (locked_until IS NULL OR locked_until < $1)"),
    ("instances", "id", "last_seen < $1 - 86400"),
];

impl Store {
    /// Deletes expired codes, sessions, sign-ins under way, tokens and counters, and events older
    /// than `events_before`, in small batches. Safe on several instances at
    /// once: each statement deletes whatever is still there.
    pub async fn delete_expired(&self, now: UnixTime, events_before: UnixTime) -> StoreResult<u64> {
        let mut deleted = 0;
        for (table, key, condition) in EXPIRED {
            deleted += self.delete_in_batches(table, key, condition, now).await?;
        }
        deleted += self.delete_in_batches("audit_events", "id", "at < $1", events_before).await?;
        Ok(deleted)
    }

    async fn delete_in_batches(&self, table: &str, key: &str, condition: &str, cutoff: UnixTime) -> StoreResult<u64> {
        let statement =
            format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {condition} LIMIT {BATCH})");
        let mut deleted = 0;
        loop {
            let done = sqlx::query(&statement).bind(cutoff).execute(&mut *self.write().await?).await?.rows_affected();
            deleted += done;
            if done < BATCH as u64 {
                return Ok(deleted);
            }
            tokio::task::yield_now().await;
        }
    }
}
