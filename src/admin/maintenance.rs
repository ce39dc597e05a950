//! The database and key files as a whole: backup, restore, a new secret
//! key. These copy or create files rather than change rows, so they write
//! no audit event.

use super::{AdminError, AdminResult};
use crate::config::Config;
use crate::crypto::at_rest::SecretKey;
use crate::private_files;
use crate::store::{Store, StoreError};

/// Writes a consistent copy of the SQLite database, while Latch runs, to a
/// new file only its owner can read. Errors: `Store` (PostgreSQL, or the
/// file exists).
pub async fn backup(store: &Store, file: &std::path::Path) -> AdminResult<()> {
    Ok(store.backup_to(file).await?)
}

/// Copies a backup over the configured SQLite database, after checking it
/// is one. The server must be stopped: its open file would be replaced
/// under it.
pub async fn restore(config: &Config, backup: &std::path::Path, force: bool) -> AdminResult<std::path::PathBuf> {
    let Some(target) = config.database_url.strip_prefix("sqlite://").map(|rest| rest.split('?').next().unwrap_or(rest))
    else {
        return Err(AdminError::invalid(
            "database_url",
            "restore works on SQLite; restore PostgreSQL with pg_restore or psql",
        ));
    };
    let target = std::path::PathBuf::from(target);
    if !backup.is_file() {
        return Err(AdminError::invalid("file", format!("no backup file at {}", backup.display())));
    }
    if target.exists() && !force {
        return Err(AdminError::invalid(
            "--force",
            format!("{} exists; stop Latch and pass --force to replace it", target.display()),
        ));
    }
    if let Some(parent) = target.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        private_files::create_dir(parent)?;
    }
    // Check a copy beside the target: opening it brings its schema up to date
    // (and seals its secrets, with a key) and proves it is a Latch database;
    // only then does it replace the target. The copy is made 0600 whatever
    // mode the backup file has on its way back.
    let staged = std::path::PathBuf::from(format!("{}.restoring", target.display()));
    let _ = std::fs::remove_file(&staged);
    std::io::copy(&mut std::fs::File::open(backup)?, &mut private_files::create_new_file(&staged)?)?;
    let checked = has_signing_keys(&staged, config.secret_key.clone()).await;
    if !matches!(checked, Ok(true)) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", staged.display()));
        }
        return Err(match checked {
            Err(error @ StoreError::SecretKey(_)) => error.into(),
            _ => AdminError::invalid("file", format!("{} is not a Latch backup", backup.display())),
        });
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
        let _ = std::fs::remove_file(format!("{}{suffix}", staged.display()));
    }
    std::fs::rename(&staged, &target)?;
    Ok(target)
}

async fn has_signing_keys(database: &std::path::Path, secret_key: Option<SecretKey>) -> Result<bool, StoreError> {
    let store = Store::connect_with(&format!("sqlite://{}", database.display()), secret_key).await?;
    let keys = store.signing_keys().await;
    store.close().await;
    Ok(!keys?.is_empty())
}

/// Writes a new secret key file at `path`, 0600; an existing file is kept
/// and an error (replacing it would lose what it encrypted).
pub fn new_secret_key(path: &std::path::Path) -> AdminResult<()> {
    use std::io::Write;
    let mut file = private_files::create_new_file(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => AdminError::invalid(
            "file",
            format!("{} exists; a new key would not decrypt what the old one encrypted", path.display()),
        ),
        _ => AdminError::Io(error),
    })?;
    file.write_all(SecretKey::generate().as_bytes())?;
    file.sync_all()?;
    Ok(())
}
