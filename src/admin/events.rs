//! Reading the audit trail.

use super::{AdminError, AdminResult, validate};
use crate::clock;
use crate::store::{AuditEvent, EventFilter, Store};

/// `events`: every filter optional.
#[derive(Debug, Clone)]
pub struct EventQuery {
    /// Only events about this username.
    pub user: Option<String>,
    /// Only events about this app (slug).
    pub app: Option<String>,
    /// Only events younger than this, as text such as `1h` or `7d`.
    pub since: Option<String>,
    /// At most this many events; at least 1.
    pub limit: i64,
}

/// The matching events, newest first. Errors: `Invalid` since or limit.
pub async fn list_events(store: &Store, query: EventQuery) -> AdminResult<Vec<AuditEvent>> {
    let since = query.since.map(|raw| validate::lifetime("--since", &raw)).transpose()?.map(|age| clock::now() - age);
    if query.limit < 1 {
        return Err(AdminError::invalid("--limit", "--limit must be at least 1"));
    }
    let filter = EventFilter { username: query.user, app: query.app, kind: None, since, limit: query.limit };
    Ok(store.list_events(&filter).await?)
}
