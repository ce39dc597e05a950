//! Latch: a small single sign-on identity provider.
//!
//! Layers, outermost first: `cli` (parsing and printing, anyhow at the edge),
//! `web` (axum handlers and the one place errors become responses), `admin`
//! (every change to people, groups, apps and keys: typed command and actor
//! in, validation, store, audit event, data out), `oidc`, `proxy`, `login`
//! and `ldap` (protocol logic, no HTTP; `ldap` also accepts its own
//! connections), `store` (the database, no protocol), `crypto`.
//! `http_client` is the one outbound HTTP client: `logout_delivery` delivers
//! the logout notices the store keeps through it, with tokens the `oidc`
//! provider mints, and `doctor` looks at the deployment from outside with
//! it. `cluster` keeps each running instance's heartbeat in the store.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::await_holding_lock)]

pub mod admin;
pub mod audit;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod declarative;
pub mod doctor;
pub mod http_client;
pub mod ldap;
pub mod login;
pub mod logout_delivery;
pub mod mail;
pub mod metrics;
pub mod oidc;
pub mod presets;
pub mod private_files;
pub mod proxy;
pub mod server;
pub mod store;
pub mod text;
pub mod web;
