//! Reading the audit trail.

use super::{AdminError, AdminResult, validate};
use crate::clock::{self, UnixTime};
use crate::store::{AuditEvent, EventFilter, Store};

/// `events`: every filter optional.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// Only events about this username.
    pub user: Option<String>,
    /// Only events about this app (slug).
    pub app: Option<String>,
    /// Only events of this kind (`login_failure`, `user_created`, …).
    pub kind: Option<String>,
    /// Only events younger than this, as text such as `1h` or `7d`.
    pub since: Option<String>,
    /// Only events at or after this time (Unix seconds).
    pub from: Option<UnixTime>,
    /// Only events before this time (Unix seconds).
    pub until: Option<UnixTime>,
    /// At most this many events; at least 1.
    pub limit: i64,
    /// Skip this many (newest first) before listing: a page.
    pub offset: i64,
}

impl EventQuery {
    /// No filter: the `limit` newest events.
    pub fn newest(limit: i64) -> Self {
        Self { user: None, app: None, kind: None, since: None, from: None, until: None, limit, offset: 0 }
    }
}

/// The matching events, newest first. Errors: `Invalid` since or limit.
pub async fn list_events(store: &Store, query: EventQuery) -> AdminResult<Vec<AuditEvent>> {
    let since = query.since.map(|raw| validate::lifetime("--since", &raw)).transpose()?.map(|age| clock::now() - age);
    if query.limit < 1 {
        return Err(AdminError::invalid("--limit", "--limit must be at least 1"));
    }
    if query.offset < 0 {
        return Err(AdminError::invalid("offset", "a page cannot start before the first event"));
    }
    // Both `since` and `from` given: the later start wins.
    let since = since.max(query.from);
    let filter = EventFilter {
        username: query.user,
        app: query.app,
        kind: query.kind,
        since,
        until: query.until,
        limit: query.limit,
        offset: query.offset,
    };
    Ok(store.list_events(&filter).await?)
}
