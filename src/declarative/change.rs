//! A plan's steps: each is one admin operation, and prints as one line of
//! `latch apply`'s listing (never with a secret in it).

use std::fmt;

use super::state::{DesiredApp, DesiredKind, DesiredPerson, DesiredSecret, KnownSecret};
use crate::admin::{Membership, UpdateApp};

/// One change, made by one admin operation.
#[derive(Debug, Clone)]
pub enum Change {
    AddGroup(String),
    /// Created with a generated password, printed once.
    AddPerson(DesiredPerson),
    UpdatePerson {
        username: String,
        email: Option<String>,
        name: Option<String>,
    },
    AddMember(Membership),
    RemoveMember(Membership),
    DisablePerson(String),
    EnablePerson(String),
    AddApp(DesiredApp),
    /// `fields` names what differs, for the listing.
    UpdateApp {
        update: UpdateApp,
        fields: Vec<String>,
    },
    SetSecret {
        slug: String,
        secret: KnownSecret,
    },
    RemoveApp(String),
    RemoveGroup(String),
}

impl fmt::Display for Change {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddGroup(name) => write!(formatter, "+ group {name}"),
            Self::AddPerson(person) => {
                write!(formatter, "+ person {} <{}>", person.username, person.email)?;
                if !person.groups.is_empty() {
                    write!(formatter, " in {}", person.groups.join(", "))?;
                }
                Ok(())
            }
            Self::UpdatePerson { username, email, name } => {
                let fields: Vec<&str> = [("email", email.is_some()), ("name", name.is_some())]
                    .iter()
                    .filter(|f| f.1)
                    .map(|f| f.0)
                    .collect();
                write!(formatter, "~ person {username}: {}", fields.join(", "))
            }
            Self::AddMember(member) => write!(formatter, "+ {} in group {}", member.username, member.group),
            Self::RemoveMember(member) => write!(formatter, "- {} from group {}", member.username, member.group),
            Self::DisablePerson(username) => write!(formatter, "~ person {username}: disabled"),
            Self::EnablePerson(username) => write!(formatter, "~ person {username}: enabled"),
            Self::AddApp(app) => {
                write!(formatter, "+ app {} ", app.slug)?;
                match &app.kind {
                    DesiredKind::Proxy { external_url, .. } => write!(formatter, "(proxy at {external_url})"),
                    DesiredKind::Oidc { secret: None, .. } => write!(formatter, "(public client)"),
                    DesiredKind::Oidc { secret: Some(secret), .. } => write!(formatter, "({})", secret_origin(secret)),
                }
            }
            Self::UpdateApp { update, fields } => write!(formatter, "~ app {}: {}", update.slug, fields.join(", ")),
            Self::SetSecret { slug, secret } => write!(formatter, "~ app {slug}: client secret from {}", secret.source),
            Self::RemoveApp(slug) => write!(formatter, "- app {slug}"),
            Self::RemoveGroup(name) => write!(formatter, "- group {name}"),
        }
    }
}

fn secret_origin(secret: &DesiredSecret) -> String {
    match secret {
        DesiredSecret::Known(known) => format!("client secret from {}", known.source),
        DesiredSecret::Generate(path) => format!("client secret generated into {}", path.display()),
    }
}
