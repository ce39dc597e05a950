//! What the admin console's dashboard shows: sign-ins and failures per day,
//! sign-ins per app, and who is signed in now, counted from the audit trail
//! and the sessions.

use crate::clock::UnixTime;
use crate::store::{DAY, Store};

use super::AdminResult;

/// How many days the dashboard looks back, today included.
pub const DASHBOARD_DAYS: i64 = 30;

/// One UTC day's sign-ins to Latch and refused sign-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStats {
    /// The day's first second (Unix seconds, UTC midnight).
    pub start: UnixTime,
    pub sign_ins: i64,
    pub failures: i64,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    /// `DASHBOARD_DAYS` days, oldest first, the last one today.
    pub days: Vec<DayStats>,
    /// Sign-ins to each app over the same days (slug, count), most first;
    /// apps without any are left out.
    pub apps: Vec<(String, i64)>,
    pub active_sessions: i64,
    /// People with at least one live session.
    pub signed_in_people: i64,
}

/// The dashboard's numbers as of `now`.
pub async fn dashboard(store: &Store, now: UnixTime) -> AdminResult<Dashboard> {
    let start = first_day(now);
    let counts = store.events_per_day(&["login_success", "login_failure"], start, DASHBOARD_DAYS).await?;
    let mut days: Vec<DayStats> =
        (0..DASHBOARD_DAYS).map(|day| DayStats { start: start + day * DAY, sign_ins: 0, failures: 0 }).collect();
    for count in counts {
        let Some(day) = usize::try_from(count.day).ok().and_then(|day| days.get_mut(day)) else { continue };
        match count.kind.as_str() {
            "login_success" => day.sign_ins = count.count,
            _ => day.failures = count.count,
        }
    }
    Ok(Dashboard {
        days,
        apps: store.sign_ins_per_app(start).await?,
        active_sessions: store.count_active_sessions(now).await?,
        signed_in_people: store.count_signed_in_people(now).await?,
    })
}

/// UTC midnight `DASHBOARD_DAYS - 1` days before `now`'s day.
fn first_day(now: UnixTime) -> UnixTime {
    now.div_euclid(DAY) * DAY - (DASHBOARD_DAYS - 1) * DAY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_ends_with_today_and_starts_at_midnight() {
        // 2026-12-01 07:00:00 UTC.
        let now = 1_796_108_400;
        let start = first_day(now);
        assert_eq!(start % DAY, 0);
        assert!(start + DASHBOARD_DAYS * DAY > now);
        assert!(start + (DASHBOARD_DAYS - 1) * DAY <= now);
    }
}
