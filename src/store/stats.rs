//! Counts over the audit trail and the people, for the admin console: how
//! many events of some kinds fell on each day, how many sign-ins each app
//! had, and one page of people matching a search.

use sqlx::Row;

use super::users::UserSummary;
use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// Seconds in a (UTC) day.
pub const DAY: i64 = 86_400;

/// Events of `kind` on day `day` (0 is the first day asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    pub day: i64,
    pub kind: String,
    pub count: i64,
}

/// A page of people matching a search, and how many match in all.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<UserSummary>,
    pub total: i64,
}

/// What the tokens_issued events of a sign-in to an app carry as `detail`
/// (the grant types a person signs in with, as opposed to refreshes and
/// machine clients), as a SQL list.
const SIGN_IN_GRANTS: &str = "'authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'";

impl Store {
    /// How many events of each of `kinds` fell on each of the `days` days
    /// starting at `start` (Unix seconds, a day boundary). Days without
    /// events are left out.
    pub async fn events_per_day(&self, kinds: &[&str], start: UnixTime, days: i64) -> StoreResult<Vec<DayCount>> {
        let mut counts = Vec::new();
        // One query per kind keeps the text free of a variable IN list; each
        // reads only its kind's rows of the month (index `audit_events_by_kind`).
        for kind in kinds {
            let rows = sqlx::query(
                "SELECT (at - $1) / $2 AS day, COUNT(*) AS events FROM audit_events \
                 WHERE kind = $3 AND at >= $1 AND at < $4 GROUP BY 1 ORDER BY 1",
            )
            .bind(start)
            .bind(DAY)
            .bind(*kind)
            .bind(start + days * DAY)
            .fetch_all(&mut *self.read().await?)
            .await?;
            for row in rows {
                counts.push(DayCount {
                    day: row.try_get("day")?,
                    kind: (*kind).to_owned(),
                    count: row.try_get("events")?,
                });
            }
        }
        Ok(counts)
    }

    /// Sign-ins to each app since `since`: codes and device codes redeemed
    /// (`tokens_issued` of a sign-in grant) and forward-auth sign-ins, most
    /// first, then by slug.
    pub async fn sign_ins_per_app(&self, since: UnixTime) -> StoreResult<Vec<(String, i64)>> {
        let rows = sqlx::query(&format!(
            "SELECT app, COUNT(*) AS events FROM audit_events \
             WHERE kind IN ('tokens_issued', 'proxy_sign_in') AND at >= $1 AND app IS NOT NULL \
               AND (kind = 'proxy_sign_in' OR detail IN ({SIGN_IN_GRANTS})) \
             GROUP BY app ORDER BY 2 DESC, 1"
        ))
        .bind(since)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("app")?, row.try_get("events")?))).collect()
    }

    /// How many distinct people have a live session at `now`.
    pub async fn count_signed_in_people(&self, now: UnixTime) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(DISTINCT user_id) AS people FROM sessions WHERE expires_at > $1")
            .bind(now)
            .fetch_one(&mut *self.read().await?)
            .await?;
        Ok(row.try_get("people")?)
    }

    /// People whose username, e-mail or name contains `search` (ignoring
    /// ASCII case; empty matches everyone), by username: `limit` of them
    /// after skipping `offset`, each with their groups.
    pub async fn search_users(&self, search: &str, limit: i64, offset: i64) -> StoreResult<UserPage> {
        let pattern = like_pattern(search);
        const MATCHES: &str = "(LOWER(username) LIKE $1 ESCAPE '\\' OR LOWER(email) LIKE $1 ESCAPE '\\' \
                               OR LOWER(name) LIKE $1 ESCAPE '\\')";
        let mut read = self.read().await?;
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS matching FROM users WHERE {MATCHES}"))
            .bind(&pattern)
            .fetch_one(&mut *read)
            .await?
            .try_get("matching")?;
        let rows = sqlx::query(&format!(
            "WITH page AS (SELECT id, username, email, name, disabled_at, created_at FROM users \
                           WHERE {MATCHES} ORDER BY username LIMIT $2 OFFSET $3) \
             SELECT p.id, p.username, p.email, p.name, p.disabled_at, p.created_at, g.name AS group_name \
             FROM page p LEFT JOIN group_members m ON m.user_id = p.id LEFT JOIN groups g ON g.id = m.group_id \
             ORDER BY p.username, g.name"
        ))
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *read)
        .await?;
        Ok(UserPage { users: super::users::summaries_from_rows(&rows)?, total })
    }
}

/// A `LIKE … ESCAPE '\'` pattern matching `search` anywhere, lower-cased:
/// its own `%`, `_` and `\` match only themselves.
fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_matches_its_wildcards_literally() {
        assert_eq!(like_pattern(""), "%%");
        assert_eq!(like_pattern(" Ada "), "%ada%");
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
