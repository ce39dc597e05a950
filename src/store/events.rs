use serde::Serialize;

use super::{Store, StoreResult};
use crate::clock::UnixTime;

/// One audit event. Never carries a secret: no passwords, codes or tokens.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEvent {
    pub at: UnixTime,
    pub kind: String,
    /// Who made the change (`cli:<os user>`, `web:<username>`); `None` for
    /// what a visitor did themselves.
    pub actor: Option<String>,
    pub username: Option<String>,
    pub app: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// Which events to list: each `Some` narrows it down; times are Unix
/// seconds, `since` inclusive and `until` exclusive.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub username: Option<String>,
    pub app: Option<String>,
    pub kind: Option<String>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    pub limit: i64,
    /// Events to skip (newest first) before the `limit` listed: a page.
    pub offset: i64,
}

impl Store {
    /// Writes a batch of events in one transaction.
    pub async fn record_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        let mut lease = self.write().await?;
        let mut transaction = lease.begin().await?;
        for event in events {
            sqlx::query(
                "INSERT INTO audit_events (id, at, kind, actor, username, app, ip, user_agent, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(event.at)
            .bind(&event.kind)
            .bind(&event.actor)
            .bind(&event.username)
            .bind(&event.app)
            .bind(&event.ip)
            .bind(&event.user_agent)
            .bind(&event.detail)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Newest first.
    pub async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        Ok(sqlx::query_as::<_, AuditEvent>(
            "SELECT at, kind, actor, username, app, ip, user_agent, detail FROM audit_events \
             WHERE ($1 IS NULL OR username = $1) AND ($2 IS NULL OR app = $2) AND ($3 IS NULL OR kind = $3) \
               AND at >= $4 AND at < $5 \
             ORDER BY at DESC, id LIMIT $6 OFFSET $7",
        )
        .bind(&filter.username)
        .bind(&filter.app)
        .bind(&filter.kind)
        .bind(filter.since.unwrap_or(0))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&mut *self.read().await?)
        .await?)
    }
}
