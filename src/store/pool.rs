//! Database connections. PostgreSQL connections come from sqlx's pool; SQLite
//! connections from a pool of Latch's own.
//!
//! sqlx's pool pings every connection it takes back (and, where asked, every
//! connection it hands out), which on PostgreSQL finds connections a database
//! restart or a network cut has killed. A SQLite connection is a thread of
//! this process that does not go stale; there the ping was one more round
//! trip to that thread, and one more spawned task, for every statement. With
//! SQLite's one writer that round trip was also time the write lock stood
//! idle. The pool below hands connections out and takes them back, nothing
//! more.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Executor, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::{Backend, StoreError, StoreResult};

/// A request waits this long for a connection, then gets a 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub(super) enum Connections {
    Pooled(AnyPool),
    Sqlite(Arc<SqliteConnections>),
}

/// Slots of connections, each opened when first needed; a permit per slot.
#[derive(Debug)]
pub(super) struct SqliteConnections {
    options: AnyConnectOptions,
    slots: Vec<Arc<Mutex<Slot>>>,
    permits: Arc<Semaphore>,
}

type Slot = Option<AnyConnection>;

/// A connection on loan; it goes back to its pool when dropped (the slot's
/// lock before the permit: fields drop in order). A statement or transaction
/// abandoned midway, its request cancelled, needs nothing more: the
/// connection's thread finishes the statement, a dropped transaction has
/// queued its rollback, and the next borrower's statements run after both.
pub(super) enum Lease {
    Pooled(PoolConnection<Any>),
    Sqlite { connection: OwnedMappedMutexGuard<Slot, AnyConnection>, _permit: OwnedSemaphorePermit },
}

impl Connections {
    pub(super) async fn postgres(options: &AnyConnectOptions, connections: u32) -> StoreResult<Self> {
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(true)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|connection, _| Box::pin(async move { set_up(connection, Backend::Postgres).await }))
            .connect_with(options.clone())
            .await?;
        Ok(Self::Pooled(pool))
    }

    /// Opens one connection at once, so that a bad path fails at start.
    pub(super) async fn sqlite(options: &AnyConnectOptions, connections: usize) -> StoreResult<Self> {
        let first = open_sqlite(options).await?;
        let mut slots = vec![Arc::new(Mutex::new(Some(first)))];
        slots.resize_with(connections.max(1), || Arc::new(Mutex::new(None)));
        let pool =
            SqliteConnections { options: options.clone(), permits: Arc::new(Semaphore::new(slots.len())), slots };
        Ok(Self::Sqlite(Arc::new(pool)))
    }

    pub(super) async fn lease(&self) -> StoreResult<Lease> {
        match self {
            Self::Pooled(pool) => Ok(Lease::Pooled(pool.acquire().await?)),
            Self::Sqlite(pool) => {
                let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, pool.permits.clone().acquire_owned())
                    .await
                    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?
                    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
                let mut slot = pool.free_slot().await?;
                if slot.is_none() {
                    *slot = Some(open_sqlite(&pool.options).await?);
                }
                let connection = OwnedMutexGuard::try_map(slot, Option::as_mut)
                    .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolClosed))?;
                Ok(Lease::Sqlite { connection, _permit: permit })
            }
        }
    }

    pub(super) async fn close(&self) {
        match self {
            Self::Pooled(pool) => pool.close().await,
            Self::Sqlite(pool) => {
                pool.permits.close();
                for slot in &pool.slots {
                    if let Some(connection) = slot.lock().await.take() {
                        let _ = sqlx::Connection::close(connection).await;
                    }
                }
            }
        }
    }

    /// Connections open and idle.
    pub(super) fn usage(&self) -> (u32, usize) {
        match self {
            Self::Pooled(pool) => (pool.size(), pool.num_idle()),
            Self::Sqlite(pool) => {
                let (mut open, mut idle) = (0, 0);
                for slot in &pool.slots {
                    match slot.try_lock() {
                        Ok(slot) if slot.is_some() => (open, idle) = (open + 1, idle + 1),
                        Ok(_) => {}
                        Err(_) => open += 1,
                    }
                }
                (open, idle)
            }
        }
    }
}

impl SqliteConnections {
    /// A slot no one holds. With a permit in hand one is always free, but
    /// its lock may be an instant from being released: then wait for it.
    async fn free_slot(&self) -> StoreResult<OwnedMutexGuard<Slot>> {
        for slot in &self.slots {
            if let Ok(held) = slot.clone().try_lock_owned() {
                return Ok(held);
            }
        }
        let first = self.slots.first().ok_or(StoreError::Unavailable(sqlx::Error::PoolClosed))?;
        Ok(first.clone().lock_owned().await)
    }
}

async fn open_sqlite(options: &AnyConnectOptions) -> StoreResult<AnyConnection> {
    let mut connection = options.connect().await?;
    set_up(&mut connection, Backend::Sqlite).await?;
    Ok(connection)
}

/// SQLite: WAL lets readers run beside a writer, the busy timeout lets the
/// server and an admin command share the file. PostgreSQL: no statement may
/// hang a request.
async fn set_up(connection: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    let setup = match backend {
        Backend::Sqlite => {
            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
             PRAGMA synchronous = NORMAL;"
        }
        Backend::Postgres => "SET statement_timeout = '10s'",
    };
    connection.execute(setup).await?;
    Ok(())
}

impl Lease {
    /// A transaction on this connection; it rolls back unless committed.
    pub(super) async fn begin(&mut self) -> Result<Transaction<'_, Any>, sqlx::Error> {
        sqlx::Connection::begin(&mut **self).await
    }
}

impl Deref for Lease {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match self {
            Self::Pooled(connection) => connection,
            Self::Sqlite { connection, .. } => connection,
        }
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Self::Pooled(connection) => connection,
            Self::Sqlite { connection, .. } => connection,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::Row;

    use super::*;

    async fn one_connection() -> Connections {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str("sqlite::memory:").expect("options");
        Connections::sqlite(&options, 1).await.expect("pool")
    }

    async fn rows(lease: &mut Lease) -> i64 {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM t").fetch_one(&mut **lease).await.expect("count");
        row.try_get("n").expect("n")
    }

    /// An in-memory database lives in its connection, so seeing the table
    /// proves the second borrower got the very connection the first gave back.
    #[tokio::test]
    async fn the_next_borrower_waits_for_the_connection_and_gets_it_back() {
        let pool = one_connection().await;
        let mut first = pool.lease().await.expect("lease");
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *first).await.expect("create");
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { rows(&mut pool.lease().await.expect("second lease")).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one connection: the second borrower waits");
        drop(first);
        assert_eq!(waiting.await.expect("task"), 0);
    }

    #[tokio::test]
    async fn a_transaction_dropped_midway_is_rolled_back_before_the_next_borrower() {
        let pool = one_connection().await;
        let mut lease = pool.lease().await.expect("lease");
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut *lease).await.expect("create");
        let mut transaction = lease.begin().await.expect("begin");
        sqlx::query("INSERT INTO t VALUES (1)").execute(&mut *transaction).await.expect("insert");
        drop(transaction);
        drop(lease);
        let mut next = pool.lease().await.expect("lease");
        assert_eq!(rows(&mut next).await, 0);
        let mut transaction = next.begin().await.expect("a new transaction begins: none is left open");
        sqlx::query("INSERT INTO t VALUES (2)").execute(&mut *transaction).await.expect("insert");
        transaction.commit().await.expect("commit");
        assert_eq!(rows(&mut next).await, 1);
    }
}
