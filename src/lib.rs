//! Latch: a small single sign-on identity provider.
//!
//! Layers, outermost first: `cli` (parsing and printing, anyhow at the edge),
//! `web` (axum handlers and the one place errors become responses), `admin`
//! (every change to people, groups, apps and keys: typed command and actor
//! in, validation, store, audit event, data out), `oidc`, `proxy` and `login`
//! (protocol logic, no HTTP), `store` (the database, no protocol), `crypto`.
//! `logout_delivery` is the one outbound HTTP client: it delivers the logout
//! notices the store keeps, with tokens the `oidc` provider mints.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::await_holding_lock)]

pub mod admin;
pub mod audit;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod crypto;
pub mod login;
pub mod logout_delivery;
pub mod metrics;
pub mod oidc;
pub mod presets;
pub mod private_files;
pub mod proxy;
pub mod server;
pub mod store;
pub mod text;
pub mod web;
