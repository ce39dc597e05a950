//! Integration tests: Latch over real HTTP, driven the way apps and
//! browsers drive it, on SQLite and on PostgreSQL.

mod browser;
mod common;
mod forward_auth;
mod oidc_flow;
