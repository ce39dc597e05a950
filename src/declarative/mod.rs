//! Declarative configuration: `latch apply <file>` makes the database hold
//! the groups, people, apps and access policies a TOML file declares, and
//! `latch export` writes the database as such a file.
//!
//! Applying is two steps: a plan (`plan::plan`, pure: declared state and
//! current state in, a list of changes out) and its execution
//! (`execute::execute`), where each change is one admin operation with its
//! own audit event, so `apply` writes nothing the CLI could not. What the
//! file declares about an object is applied in full (an app's settings,
//! redirect URIs and groups, a person's memberships); objects it does not
//! mention are left alone unless `--prune`. Applying the same file twice
//! changes nothing the second time.

mod change;
mod desired;
mod execute;
mod export;
mod file;
mod plan;
mod state;

use std::path::{Path, PathBuf};

pub use change::Change;
pub use execute::Notice;

use crate::admin::{self, Actor, AdminError};
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Bad TOML, an unknown key, a value of the wrong type.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    /// A declaration that is refused or cannot be applied.
    #[error("{}:{line}: {what}: {reason}", path.display())]
    Entry { path: PathBuf, line: usize, what: String, reason: String },
    /// A change the admin layer refused while applying; the ones before
    /// it were made.
    #[error("{change}: {source} (the changes listed before it were made; fix the cause and apply again)")]
    Change { change: String, source: AdminError },
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("cannot write the export: {0}")]
    Encode(#[from] toml::ser::Error),
}

/// The changes that would make the database match the file at `path`.
/// Reads the secrets the file names (checking them) but writes nothing.
/// Errors: `Read`, `Syntax`, `Entry` (with the file's line).
pub async fn plan(store: &Store, path: &Path, prune: bool) -> Result<Vec<Change>, ApplyError> {
    let text = std::fs::read_to_string(path).map_err(|source| ApplyError::Read { path: path.to_owned(), source })?;
    let parsed = file::parse(&text).map_err(|error| ApplyError::Syntax {
        path: path.to_owned(),
        line: error.line,
        column: error.column,
        message: error.message,
    })?;
    let entry_error = |error: plan::PlanError| ApplyError::Entry {
        path: path.to_owned(),
        line: error.line,
        what: error.what,
        reason: error.reason,
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let desired = desired::from_file(&text, &parsed, base).map_err(entry_error)?;
    let current = current(store).await?;
    plan::plan(&desired, &current, prune).map_err(entry_error)
}

/// Makes the planned changes (`plan`), in order; returns what must be
/// shown once (generated passwords, where secrets were written).
pub async fn apply(
    store: &Store,
    config: &Config,
    actor: &Actor,
    changes: &[Change],
) -> Result<Vec<Notice>, ApplyError> {
    execute::execute(store, config, actor, changes).await
}

/// The database as a file `apply` takes (no secrets).
pub async fn export(store: &Store) -> Result<String, ApplyError> {
    Ok(toml::to_string(&export::declared(&current(store).await?))?)
}

async fn current(store: &Store) -> Result<state::Current, AdminError> {
    Ok(state::Current {
        groups: admin::list_groups(store).await?,
        users: admin::list_users(store).await?,
        apps: admin::list_apps(store).await?,
    })
}
