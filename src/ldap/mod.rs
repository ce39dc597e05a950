//! The LDAP interface: a read-only view of the store for apps that sign
//! people in only against LDAP (RFC 4511 over `ldap3_proto`'s codec).
//!
//! `dn` parses and places distinguished names, `entry` and `view` build the
//! entries, `filter` evaluates search filters over them, `session` answers
//! one connection's requests (`search` its searches), and `listener` accepts connections (plain
//! with StartTLS, and LDAPS). People live at `uid=<username>,ou=people,<base>`,
//! groups at `cn=<group>,ou=groups,<base>`, and the search accounts apps bind
//! as at `cn=<name>,ou=services,<base>`.

pub mod dn;
pub mod entry;
pub mod filter;
pub mod listener;
mod search;
pub mod session;
pub mod view;

pub use listener::{LdapListeners, ListenError};
pub use session::Directory;
