//! Files and directories that hold secrets (the SQLite database and its
//! WAL, shared-memory and journal files, backups, the secret key file) are
//! created for their owner alone, whatever the process's umask: modes are
//! set at creation rather than by changing the umask, which is one value
//! for the whole process and so for whatever embeds this library. SQLite
//! gives a database's `-wal`, `-shm` and `-journal` files the mode of the
//! database file, so creating that file 0600 covers all four.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of a new directory that holds secrets: owner only.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a new file that holds secrets: owner read and write.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents, each 0700. An existing
/// directory is left as it is.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(path)
}

/// Creates `path` empty, 0600, unless it exists: then it is left as it is,
/// and not even opened. Closing any descriptor of a file drops every POSIX
/// lock this process holds on it, and SQLite's connections (another `Store`
/// of this process on the same database) hold theirs on the database file.
/// Without them another process takes the database for unused and, closing,
/// checkpoints it and deletes the WAL and shared-memory files those
/// connections still read: they then never see a later commit.
pub fn create_file_if_missing(path: &Path) -> io::Result<()> {
    match OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path) {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        created => created.map(drop),
    }
}

/// Creates `path` new, 0600; an existing file is an error.
pub fn create_new_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path)
}

/// Sets `path` to 0600, for a file made by a call that copies modes.
pub fn make_private(path: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}

/// The mode of `path` when it exists and its group or other accounts have
/// any access to it, else `None`.
pub fn exposed_mode(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// Logs a warning naming `path` when other accounts can reach it.
pub fn warn_if_exposed(path: &Path) {
    if let Some(mode) = exposed_mode(path) {
        let fix = if path.is_dir() { "chmod 700" } else { "chmod 600" };
        tracing::warn!(
            path = %path.display(),
            "{} holds secrets but other accounts can read it (mode {mode:o}); run `{fix} {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test process's umask is whatever it was started with; the modes
    /// must not depend on it, so the checks below compare exact modes.
    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_files_are_for_the_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir(&nested).unwrap();
        assert_eq!((mode(&dir.path().join("a")), mode(&nested)), (0o700, 0o700));
        let file = nested.join("latch.db");
        create_file_if_missing(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(create_new_file(&file).is_err(), "an existing file is not replaced");
        assert_eq!(exposed_mode(&file), None);
    }

    #[test]
    fn existing_files_keep_their_mode_and_an_open_one_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latch.db");
        std::fs::write(&file, "data").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_file_if_missing(&file).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
        assert_eq!(exposed_mode(&file), Some(0o644));
        make_private(&file).unwrap();
        assert_eq!(exposed_mode(&file), None);
        assert_eq!(exposed_mode(&dir.path().join("missing")), None);
    }
}
