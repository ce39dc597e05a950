//! The admin layer's one error type. A front end shows it as one line (the
//! CLI) or maps `class()` to a status (a web console); neither needs to look
//! inside the store's errors.

use crate::crypto::keys::KeyError;
use crate::crypto::password::PasswordError;
use crate::oidc::error::InternalError;
use crate::presets::PresetError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The named object does not exist, e.g. `kind` "user", `name` "ada".
    #[error("no {kind} named {name:?}")]
    NotFound { kind: &'static str, name: String },
    /// An object of that kind and name exists already.
    #[error("{kind} {name:?} already exists")]
    Duplicate { kind: &'static str, name: String },
    /// The command itself is refused; `field` names what was wrong (a flag
    /// such as `--code-ttl`, or a field such as `username`), `reason` is the
    /// whole sentence shown to the operator.
    #[error("{reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("input/output error: {0}")]
    Io(#[from] std::io::Error),
}

/// What kind of failure an `AdminError` is, for a front end that answers
/// with a status: `NotFound` → 404, `Conflict` → 409, `Invalid` → 400,
/// `Internal` → 500 (whose text belongs in the log, not the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    NotFound,
    Conflict,
    Invalid,
    Internal,
}

impl AdminError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    pub fn not_found(kind: &'static str, name: &str) -> Self {
        Self::NotFound { kind, name: name.to_owned() }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            Self::NotFound { .. } => ErrorClass::NotFound,
            Self::Duplicate { .. } => ErrorClass::Conflict,
            Self::Invalid { .. } => ErrorClass::Invalid,
            Self::Store(_) | Self::Password(_) | Self::Key(_) | Self::Io(_) => ErrorClass::Internal,
        }
    }
}

impl From<StoreError> for AdminError {
    /// The store's refusals become the admin layer's own, so a front end
    /// tells "no such user" from "the database is down" by `class()` alone.
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { kind, name } => Self::NotFound { kind, name },
            StoreError::Duplicate { kind, name } => Self::Duplicate { kind, name },
            StoreError::NotMember { group, username } => {
                Self::NotFound { kind: "member of group", name: format!("{username} in {group}") }
            }
            other => Self::Store(other),
        }
    }
}

impl From<PresetError> for AdminError {
    /// An unknown preset or a bad `--url` is the operator's to fix: the
    /// message says what is known or expected.
    fn from(error: PresetError) -> Self {
        let field = match error {
            PresetError::BaseUrl { .. } => "--url",
            PresetError::Unknown { .. } | PresetError::Invalid { .. } => "--preset",
        };
        Self::invalid(field, error.to_string())
    }
}

impl From<InternalError> for AdminError {
    fn from(error: InternalError) -> Self {
        match error {
            InternalError::Store(error) => error.into(),
            InternalError::Signing(error) => Self::Key(error),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_refusals_keep_their_class_and_outages_are_internal() {
        let missing = AdminError::from(StoreError::NotFound { kind: "user", name: "ada".into() });
        assert_eq!(missing.class(), ErrorClass::NotFound);
        assert_eq!(missing.to_string(), "no user named \"ada\"");
        let taken = AdminError::from(StoreError::Duplicate { kind: "app", name: "web".into() });
        assert_eq!(taken.class(), ErrorClass::Conflict);
        assert_eq!(taken.to_string(), "app \"web\" already exists");
        assert_eq!(AdminError::invalid("username", "invalid username").class(), ErrorClass::Invalid);
        let outage = AdminError::from(StoreError::Corrupt("unreadable".into()));
        assert_eq!(outage.class(), ErrorClass::Internal);
    }
}
