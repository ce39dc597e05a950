//! Integration tests: Latch over real HTTP, driven the way apps and
//! browsers drive it, on SQLite and on PostgreSQL.

mod active_active;
mod browser;
mod common;
mod forward_auth;
mod oidc_flow;
