//! Heartbeats of running instances, and what identifies the database.

use serde::Serialize;
use sqlx::Row;

use super::{Backend, Store, StoreResult};
use crate::clock::UnixTime;

/// One instance's latest heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Heartbeat {
    /// Random, new at every start of `latch serve`.
    pub id: String,
    pub version: String,
    pub host: String,
    /// The socket address it listens on, e.g. `0.0.0.0:9000`.
    pub listen: String,
    /// The database it connected to (`Store::database_id`).
    pub database_id: String,
    /// Unix seconds on its own clock.
    pub started_at: UnixTime,
    /// Unix seconds on its own clock.
    pub last_seen: UnixTime,
    /// Its clock minus the database's, in milliseconds.
    pub clock_offset_ms: i64,
}

/// The fact naming this database.
const DATABASE_ID: &str = "database_id";

impl Store {
    /// A random id made the first time it is asked for and kept in the
    /// database: instances that report different ids use different
    /// databases. Not a secret (`/health/ready` shows it); a copy of the
    /// database (a restored backup) carries the same id.
    pub async fn database_id(&self) -> StoreResult<String> {
        sqlx::query("INSERT INTO deployment_facts (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(DATABASE_ID)
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .execute(&mut *self.write().await?)
            .await?;
        Ok(sqlx::query("SELECT value FROM deployment_facts WHERE name = $1")
            .bind(DATABASE_ID)
            .fetch_one(&mut *self.read().await?)
            .await?
            .try_get("value")?)
    }

    /// The database server's clock, in milliseconds since the Unix epoch.
    pub async fn database_time_ms(&self) -> StoreResult<i64> {
        // The one query whose text differs by backend: neither knows the
        // other's way of reading the clock.
        let query = match self.backend {
            Backend::Sqlite => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT) AS now_ms",
            Backend::Postgres => "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS now_ms",
        };
        Ok(sqlx::query(query).fetch_one(&mut *self.read().await?).await?.try_get("now_ms")?)
    }

    /// Inserts or refreshes `heartbeat` (by its id).
    pub async fn record_heartbeat(&self, heartbeat: &Heartbeat) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO instances (id, version, host, listen, database_id, started_at, last_seen, clock_offset_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, clock_offset_ms = excluded.clock_offset_ms",
        )
        .bind(&heartbeat.id)
        .bind(&heartbeat.version)
        .bind(&heartbeat.host)
        .bind(&heartbeat.listen)
        .bind(&heartbeat.database_id)
        .bind(heartbeat.started_at)
        .bind(heartbeat.last_seen)
        .bind(heartbeat.clock_offset_ms)
        .execute(&mut *self.write().await?)
        .await?;
        Ok(())
    }

    /// Every instance's latest heartbeat, oldest start first.
    pub async fn instances(&self) -> StoreResult<Vec<Heartbeat>> {
        Ok(sqlx::query_as::<_, Heartbeat>(
            "SELECT id, version, host, listen, database_id, started_at, last_seen, clock_offset_ms FROM instances \
             ORDER BY started_at, id",
        )
        .fetch_all(&mut *self.read().await?)
        .await?)
    }

    /// Removes an instance that stops cleanly.
    pub async fn remove_instance(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1").bind(id).execute(&mut *self.write().await?).await?;
        Ok(())
    }
}
