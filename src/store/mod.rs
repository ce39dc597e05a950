//! The database. One `Store` over an `sqlx::AnyPool`; the backend is chosen
//! once, from the URL scheme, when connecting, and every query text below is
//! in the subset SQLite and PostgreSQL share (`$n` placeholders, `RETURNING`,
//! `ON CONFLICT`, TEXT and BIGINT columns). The store knows nothing of HTTP or
//! OAuth: it keeps rows and answers questions about them.

mod access;
mod app_passwords;
mod apps;
mod codes;
mod consents;
mod device_codes;
mod directory;
mod events;
mod factors;
mod groups;
mod housekeeping;
mod instances;
mod keys;
mod links;
mod logout_notices;
mod passkeys;
mod pool;
mod proxy;
mod sealed;
mod sessions;
mod sign_ins;
mod stats;
mod throttle;
mod tokens;
mod users;

use std::path::Path;
use std::str::FromStr;

use sqlx::AnyConnection;
use sqlx::any::AnyConnectOptions;

use crate::crypto::at_rest::SecretKey;
use crate::private_files;
use pool::{Connections, Lease};

pub use app_passwords::{AppPasswordSummary, NewAppPassword};
pub use apps::{
    App, AppChanges, AppOptions, AppSummary, ConsentMode, DEFAULT_REFRESH_TOKEN_REUSE_GRACE, LaunchableApp, NewApp,
};
pub use codes::{CodeGrant, CodeRedemption, CodeState, NewCode};
pub use device_codes::{
    Answered, DeviceAnswer, DeviceGrant, DevicePoll, DeviceRedemption, NewDeviceCode, PendingDevice,
};
pub use directory::{DirectoryPerson, DirectoryQuery, LdapAccount, LdapAccountSummary};
pub use events::{AuditEvent, EventFilter};
pub use factors::{Factor, FactorKind, TotpEnrolment, TotpFactor};
pub use groups::GroupSummary;
pub use instances::Heartbeat;
pub use keys::StoredKey;
pub use links::{LinkPurpose, LinkState};
pub use logout_notices::LogoutNotice;
pub use passkeys::{CeremonyRow, PasskeyRow};
pub use proxy::{ForwardAuthCheck, NewProxyApp, NewProxyCode, ProxyApp, ProxyGrant, ProxyUser};
pub use sessions::{NewSessionRecord, SessionListing, SessionUser};
pub use sign_ins::PendingSignInRow;
pub use stats::{DAY, DayCount, UserPage};
pub use throttle::{Admission, AttemptOutcome, FailureLimit};
pub use tokens::{
    AccessTokenGrant, ClientTokenGrant, NewAccessToken, NewFamily, RefreshGrant, RefreshTokenInfo, Rotation,
    RotationOutcome,
};
pub use users::{NewUser, UserClaims, UserCredentials, UserSummary};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("{kind} {name:?} already exists")]
    Duplicate { kind: &'static str, name: String },
    #[error("no {kind} named {name:?}")]
    NotFound { kind: &'static str, name: String },
    #[error("{username:?} is not a member of {group:?}")]
    NotMember { group: String, username: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot create {path}: {reason}")]
    CreateFile { path: String, reason: String },
    /// The store's encrypted secrets and the configured `secret_key_file`
    /// do not fit together; the text says how.
    #[error("{0}")]
    SecretKey(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => Self::Unavailable(error),
            other => Self::Database(other),
        }
    }
}

impl StoreError {
    /// Unique-key violations become `Duplicate` so callers can say which
    /// name was taken instead of echoing SQL.
    fn on_unique(kind: &'static str, name: &str) -> impl FnOnce(sqlx::Error) -> StoreError {
        let name = name.to_owned();
        move |error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate { kind, name },
            _ => StoreError::from(error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Option<Self> {
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("sqlite") => Some(Self::Sqlite),
            Some("postgres" | "postgresql") => Some(Self::Postgres),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    /// Reads. On SQLite several connections read side by side (WAL).
    reader: Connections,
    /// Writes, and transactions that write. On SQLite this is one
    /// connection: SQLite admits one writer at a time, and a second
    /// connection that finds the lock taken sleeps in its busy handler
    /// (1–25 ms a time) while the CPU idles; queued on the pool instead, the
    /// next writer starts the moment the last one commits. On PostgreSQL it
    /// is the same pool as `reader`.
    writer: Connections,
    backend: Backend,
    /// Seals signing keys and deployment secrets; `None`: they are stored
    /// in plaintext (and sealed ones are refused at connect).
    secret_key: Option<SecretKey>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// `connect_with` and no secret key: for a deployment whose secrets are
    /// stored in plaintext.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, None).await
    }

    /// Connects and brings the schema up to date. Safe to call from several
    /// processes at once: the migrator serializes them (an advisory lock on
    /// PostgreSQL, the database write lock on SQLite). A new SQLite database
    /// and its directory are created private (0600, 0700); existing ones,
    /// and the key file, are logged when other accounts can read them.
    ///
    /// With `secret_key`, secrets stored in plaintext are sealed with it
    /// (see `sealed`). Errors with `StoreError::SecretKey` when the stored
    /// secrets are sealed and `secret_key` is `None` or another key.
    pub async fn connect_with(url: &str, secret_key: Option<SecretKey>) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)
            .ok_or_else(|| StoreError::Corrupt(format!("unsupported database URL scheme in {url:?}")))?;
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let (reader, writer) = match backend {
            Backend::Sqlite => {
                (Connections::sqlite(&options, sqlite_readers()).await?, Connections::sqlite(&options, 1).await?)
            }
            Backend::Postgres => {
                let pool = Connections::postgres(&options, 16).await?;
                (pool.clone(), pool)
            }
        };
        migrate(&mut *writer.lease().await?, backend).await?;
        if let Some(key) = &secret_key {
            private_files::warn_if_exposed(key.path());
        }
        let store = Self { reader, writer, backend, secret_key };
        store.check_secret_key().await?;
        store.seal_plaintext_signing_keys().await?;
        Ok(store)
    }

    /// A connection for reading.
    async fn read(&self) -> StoreResult<Lease> {
        self.reader.lease().await
    }

    /// A connection for writing (SQLite's one writer).
    async fn write(&self) -> StoreResult<Lease> {
        self.writer.lease().await
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&mut *self.read().await?).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections open and idle, for metrics.
    pub fn pool_usage(&self) -> (u32, usize) {
        match self.backend {
            Backend::Sqlite => {
                let ((read_open, read_idle), (write_open, write_idle)) = (self.reader.usage(), self.writer.usage());
                (read_open + write_open, read_idle + write_idle)
            }
            Backend::Postgres => self.reader.usage(),
        }
    }

    /// A consistent copy of a SQLite database, taken while it is in use,
    /// into a new file `path` made 0600 first (`VACUUM INTO` fills an empty
    /// file and keeps its mode). PostgreSQL deployments use `pg_dump`.
    pub async fn backup_to(&self, path: &Path) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported("backups of PostgreSQL are made with pg_dump".into()));
        }
        private_files::create_new_file(path)
            .map_err(|error| StoreError::CreateFile { path: path.display().to_string(), reason: error.to_string() })?;
        let copied: StoreResult<()> = async {
            let target = path.display().to_string();
            sqlx::query("VACUUM INTO $1").bind(target).execute(&mut *self.read().await?).await?;
            Ok(())
        }
        .await;
        if copied.is_err() {
            let _ = std::fs::remove_file(path);
        }
        copied
    }
}

/// One reader per core (at least two): a SQLite statement is CPU work on
/// the connection's own thread, and every write empties the page cache of
/// each other connection, so readers beyond the cores only add cold caches
/// (with 8 readers on 2 cores the SSO flow ran 6 % slower than with 2).
fn sqlite_readers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from).clamp(2, 8)
}

/// Brings the schema up to date. On PostgreSQL, instances starting together
/// queue on an advisory lock held for the whole run (sqlx's own lock is
/// taken only after it has created its bookkeeping table, which two
/// instances could otherwise race on). SQLite serializes on its write lock.
async fn migrate(connection: &mut AnyConnection, backend: Backend) -> StoreResult<()> {
    const MIGRATION_LOCK: i64 = 0x6c61_7463_6801;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *connection).await?;
    }
    let result = MIGRATOR.run(&mut *connection).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *connection).await?;
    }
    Ok(result?)
}

/// `sqlite://path` with the file (and its directory) created when missing,
/// for the owner only; what exists already is logged when it is not.
fn sqlite_url(url: &str) -> StoreResult<String> {
    let rest = url.trim_start_matches("sqlite://");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    // An explicit `mode=` other than rwc (ro, memory) creates no file.
    if path != ":memory:" && (!query.contains("mode=") || query.contains("mode=rwc")) {
        create_sqlite_file(Path::new(path))?;
    }
    Ok(match query {
        "" => format!("sqlite://{path}?mode=rwc"),
        query if query.contains("mode=") => url.to_owned(),
        query => format!("sqlite://{path}?{query}&mode=rwc"),
    })
}

fn create_sqlite_file(file: &Path) -> StoreResult<()> {
    if let Some(parent) = file.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        private_files::create_dir(parent)
            .map_err(|error| StoreError::DataDir { path: parent.display().to_string(), reason: error.to_string() })?;
        private_files::warn_if_exposed(parent);
    }
    private_files::create_file_if_missing(file)
        .map_err(|error| StoreError::CreateFile { path: file.display().to_string(), reason: error.to_string() })?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        private_files::warn_if_exposed(Path::new(&format!("{}{suffix}", file.display())));
    }
    Ok(())
}

/// Short lists (such as redirect URIs) are stored as a JSON array in one TEXT column.
fn decode_list(raw: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(raw).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn encode_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}
