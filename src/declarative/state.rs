//! The two sides a plan compares: what the file declares (checked by
//! `desired::from_file`) and what the database holds (listed through the
//! admin layer).

use std::fmt;
use std::path::PathBuf;

use crate::store::{AppOptions, AppSummary, GroupSummary, UserSummary};

/// A declared value and the file line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub line: usize,
    pub value: T,
}

/// What the file declares, checked (`desired::from_file`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Desired {
    pub groups: Vec<Located<String>>,
    pub people: Vec<Located<DesiredPerson>>,
    pub apps: Vec<Located<DesiredApp>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPerson {
    pub username: String,
    pub email: String,
    /// The display name (the username when the file gives none).
    pub name: String,
    /// Sorted, without repeats.
    pub groups: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredApp {
    pub slug: String,
    pub name: String,
    /// `None`: whatever the app has, or a new random one.
    pub client_id: Option<String>,
    /// The access policy: sorted, without repeats; empty admits everyone.
    pub groups: Vec<String>,
    pub kind: DesiredKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredKind {
    Oidc {
        public: bool,
        redirect_uris: Vec<String>,
        /// Every setting, absent ones at their defaults.
        options: AppOptions,
        /// `None` for a public client.
        secret: Option<DesiredSecret>,
    },
    Proxy {
        /// The origin, as the admin layer stores it.
        external_url: String,
        cookie_domain: Option<String>,
        /// As `AppOptions::require_mfa`, the one setting a proxy app has.
        require_mfa: Option<bool>,
    },
}

/// A confidential app's secret as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredSecret {
    Known(KnownSecret),
    /// Generated into this file when the app is created; an existing app
    /// keeps the secret it has.
    Generate(PathBuf),
}

/// A secret read from `source` (an environment variable or a file).
#[derive(Clone, PartialEq, Eq)]
pub struct KnownSecret {
    pub value: String,
    pub source: String,
}

/// Never prints the secret.
impl fmt::Debug for KnownSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "KnownSecret(from {})", self.source)
    }
}

/// What the database holds, as the admin layer lists it.
#[derive(Debug, Default, Clone)]
pub struct Current {
    pub groups: Vec<GroupSummary>,
    pub users: Vec<UserSummary>,
    pub apps: Vec<AppSummary>,
}
