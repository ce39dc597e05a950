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
    /// Only events of this kind.
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

    /// Newest first (ties in the same second in a fixed order, so pages
    /// neither skip nor repeat). Only the filters given are in the query
    /// text, so each combination gets a plan that uses its index
    /// (`audit_events_by_time`, `_by_username`, `_by_app`, `_by_kind`).
    pub async fn list_events(&self, filter: &EventFilter) -> StoreResult<Vec<AuditEvent>> {
        let mut conditions = vec!["1 = 1".to_owned()];
        let mut texts = Vec::new();
        // Column names from this list only; values are bound.
        for (column, value) in [("username", &filter.username), ("app", &filter.app), ("kind", &filter.kind)] {
            if let Some(value) = value {
                texts.push(value);
                conditions.push(format!("{column} = ${}", texts.len()));
            }
        }
        let mut times = Vec::new();
        for (condition, value) in [("at >=", filter.since), ("at <", filter.until)] {
            if let Some(value) = value {
                times.push(value);
                conditions.push(format!("{condition} ${}", texts.len() + times.len()));
            }
        }
        let next = texts.len() + times.len() + 1;
        let sql = format!(
            "SELECT at, kind, actor, username, app, ip, user_agent, detail FROM audit_events WHERE {} \
             ORDER BY at DESC, id DESC LIMIT ${next} OFFSET ${}",
            conditions.join(" AND "),
            next + 1
        );
        let mut query = sqlx::query_as::<_, AuditEvent>(&sql);
        for text in texts {
            query = query.bind(text);
        }
        for time in times {
            query = query.bind(time);
        }
        Ok(query.bind(filter.limit).bind(filter.offset).fetch_all(&mut *self.read().await?).await?)
    }
}
