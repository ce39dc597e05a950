//! Integration tests: Latch over real HTTP, driven the way apps and
//! browsers drive it, on SQLite and on PostgreSQL.

mod active_active;
mod admin_cli;
mod authorize_errors;
mod browser;
mod common;
mod discovery;
mod forward_auth;
mod login;
mod oidc_flow;
mod token_errors;
mod userinfo;
