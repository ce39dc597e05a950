//! Integration tests: Latch over real HTTP, driven the way apps and
//! browsers drive it, on SQLite and on PostgreSQL.

mod access_rule;
mod active_active;
mod admin_cli;
mod authorize_errors;
mod browser;
mod client_credentials;
mod closed_output;
mod common;
mod consent;
mod cookies;
mod cors;
mod discovery;
mod discovery_advertised;
mod error_causes;
mod error_formats;
mod form_post;
mod forward_auth;
mod groups_scope;
mod key_rotation;
mod login;
mod logout;
mod native_apps;
mod no_store;
mod oidc_flow;
mod operations;
mod prompt;
mod reauth;
mod refresh;
mod relying_party;
mod revocation;
mod signing_algs;
mod slow_clients;
mod token_errors;
mod token_kinds;
mod userinfo;
