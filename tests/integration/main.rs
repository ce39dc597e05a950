//! Integration tests: Latch over real HTTP, driven the way apps and
//! browsers drive it, on SQLite and on PostgreSQL.

mod active_active;
mod admin_cli;
mod authorize_errors;
mod browser;
mod client_credentials;
mod common;
mod consent;
mod discovery;
mod discovery_advertised;
mod form_post;
mod forward_auth;
mod key_rotation;
mod login;
mod logout;
mod oidc_flow;
mod operations;
mod prompt;
mod refresh;
mod relying_party;
mod revocation;
mod secrets_at_rest;
mod signing_algs;
mod token_errors;
mod userinfo;
