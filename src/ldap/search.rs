//! Searches (RFC 4511 §4.5): which entries a search's base and scope
//! cover, which of them the bound identity may read, the filter, the
//! attribute list, the size limit and paged results (RFC 2696).

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest, LdapSearchScope};

use super::dn::Location;
use super::entry::Entry;
use super::session::{Directory, Identity, Session, result};
use super::{filter, view};
use crate::audit;
use crate::store::{DirectoryQuery, StoreError};

/// An entry set a search reads, before its filter.
type Candidates = Result<Option<Vec<Entry>>, StoreError>;

impl Directory {
    /// A search: its entries, then its result (RFC 4511 §4.5.2), with the
    /// paged results control (RFC 2696) when it was asked for.
    pub(super) async fn search(
        &self,
        session: &Session,
        id: i32,
        request: &LdapSearchRequest,
        controls: &[LdapControl],
    ) -> Vec<LdapMsg> {
        let done = |code, message: &str, ctrl| {
            vec![LdapMsg { msgid: id, op: LdapOp::SearchResultDone(result(code, message)), ctrl }]
        };
        if controls.iter().any(|control| matches!(control, LdapControl::Unknown { criticality: true, .. })) {
            return done(LdapResultCode::UnavailableCriticalExtension, "a critical control is not supported", vec![]);
        }
        let paging = controls.iter().find_map(|control| match control {
            LdapControl::SimplePagedResults { size, cookie } => Some((*size, cookie.clone())),
            _ => None,
        });
        let location = match self.tree.locate(&request.base) {
            Ok(location) => location,
            Err(reason) => return done(LdapResultCode::InvalidDNSyntax, &reason, vec![]),
        };
        let candidates = match (&location, &session.identity) {
            (Location::RootDse, _) => Ok(Some(base_only(request, view::root_dse(&self.tree, self.starttls)))),
            (Location::Subschema, _) => Ok(Some(base_only(request, view::subschema()))),
            (_, Identity::Anonymous) => {
                self.metrics.ldap("search", "refused");
                return done(
                    LdapResultCode::InsufficentAccessRights,
                    "bind first: anonymous binds cannot search",
                    vec![],
                );
            }
            (location, Identity::Account { name, .. }) => match self.account(name).await {
                Ok(Some(current)) => self.candidates(&current, location, request).await,
                Ok(None) => {
                    self.metrics.ldap("search", "refused");
                    return done(LdapResultCode::InsufficentAccessRights, "the account has been removed", vec![]);
                }
                Err(error) => Err(error),
            },
            (location, identity) => self.candidates(identity, location, request).await,
        };
        let entries = match candidates {
            Ok(Some(entries)) => entries,
            Ok(None) => return done(LdapResultCode::NoSuchObject, "no such entry", vec![]),
            Err(error) => {
                tracing::error!(%error, "LDAP search failed");
                self.metrics.ldap("search", "error");
                return done(LdapResultCode::Unavailable, "the directory is unavailable", vec![]);
            }
        };
        let matching: Vec<Entry> =
            entries.into_iter().filter(|entry| filter::matches(&request.filter, entry)).collect();
        let total = matching.len();
        let (start, page_size) = match &paging {
            Some((size, cookie)) => (page_offset(cookie), usize::try_from(*size).unwrap_or(0)),
            None => (0, total),
        };
        let limit = usize::try_from(request.sizelimit).ok().filter(|limit| *limit > 0).unwrap_or(usize::MAX);
        let end = total.min(start.saturating_add(page_size));
        let sent = end.saturating_sub(start).min(limit);
        let mut messages: Vec<LdapMsg> = matching
            .into_iter()
            .skip(start)
            .take(sent)
            .map(|entry| LdapMsg {
                msgid: id,
                op: LdapOp::SearchResultEntry(entry.into_result(&request.attrs, request.typesonly)),
                ctrl: Vec::new(),
            })
            .collect();
        let next = start + sent;
        let ctrl = match paging {
            Some(_) => {
                let cookie = if page_size > 0 && next < total { next.to_string().into_bytes() } else { Vec::new() };
                let size = i64::try_from(total).unwrap_or(i64::MAX);
                vec![LdapControl::SimplePagedResults { size, cookie }]
            }
            None => Vec::new(),
        };
        self.audit_search(session, request, sent);
        if sent == limit && next < end {
            self.metrics.ldap("search", "size_limit");
            messages.extend(done(LdapResultCode::SizeLimitExceeded, "size limit exceeded", ctrl));
        } else {
            self.metrics.ldap("search", "success");
            messages.extend(done(LdapResultCode::Success, "", ctrl));
        }
        messages
    }

    fn audit_search(&self, session: &Session, request: &LdapSearchRequest, entries: usize) {
        let (username, by) = match &session.identity {
            Identity::Person { username } => (Some(username.as_str()), format!("person {username}")),
            Identity::Account { name, .. } => (None, format!("account {name}")),
            Identity::Anonymous => return,
        };
        let actor = audit::Actor { username, ip: Some(&session.client_ip), ..Default::default() };
        let detail = format!("{by}: {entries} entries under {:?}", request.base);
        self.auditor.record("ldap_search", &actor, Some(detail));
    }

    /// The entries a search's base and scope cover that `identity` may
    /// read; `None` when the base itself is not there (for this reader).
    async fn candidates(&self, identity: &Identity, location: &Location, request: &LdapSearchRequest) -> Candidates {
        let scope = &request.scope;
        let itself = matches!(scope, LdapSearchScope::Base | LdapSearchScope::Subtree);
        let below = !matches!(scope, LdapSearchScope::Base);
        let deep = matches!(scope, LdapSearchScope::Subtree | LdapSearchScope::Children);
        let uid = filter::only_uid(&request.filter);
        let mut entries = Vec::new();
        match location {
            Location::Base => {
                if itself {
                    entries.push(view::base(&self.tree));
                }
                if below {
                    entries.push(view::unit(&self.tree, "people"));
                    entries.push(view::unit(&self.tree, "groups"));
                }
                if deep {
                    entries.extend(self.people(identity, uid).await?);
                    entries.extend(self.groups(identity, None).await?);
                }
            }
            Location::People | Location::Groups => {
                let people = *location == Location::People;
                if itself {
                    entries.push(view::unit(&self.tree, if people { "people" } else { "groups" }));
                }
                if below {
                    entries.extend(if people {
                        self.people(identity, uid).await?
                    } else {
                        self.groups(identity, None).await?
                    });
                }
            }
            Location::Services => {
                if itself {
                    entries.push(view::unit(&self.tree, "services"));
                }
            }
            Location::Person(username) => {
                let found = self.people(identity, Some(username.as_str())).await?;
                if found.is_empty() {
                    return Ok(None);
                }
                if itself {
                    entries.extend(found);
                }
            }
            Location::Group(name) => {
                let found = self.groups(identity, Some(name.as_str())).await?;
                if found.is_empty() {
                    return Ok(None);
                }
                if itself {
                    entries.extend(found);
                }
            }
            Location::Service(_) | Location::Elsewhere | Location::RootDse | Location::Subschema => return Ok(None),
        }
        Ok(Some(entries))
    }

    /// The people `identity` may read (only `username`, when given).
    async fn people(&self, identity: &Identity, username: Option<&str>) -> Result<Vec<Entry>, StoreError> {
        let (query, visible_groups) = match identity {
            Identity::Anonymous => return Ok(Vec::new()),
            Identity::Person { username: own } => {
                if username.is_some_and(|wanted| wanted.to_lowercase() != own.to_lowercase()) {
                    return Ok(Vec::new());
                }
                (DirectoryQuery { name: Some(own.as_str()), visible_to: None }, None)
            }
            Identity::Account { id, groups, .. } => {
                let visible_to = groups.as_ref().map(|_| id.as_str());
                (DirectoryQuery { name: username, visible_to }, groups.as_ref())
            }
        };
        let people = self.store.directory_people(query).await?;
        Ok(people
            .iter()
            .map(|person| {
                let groups: Vec<&str> = person
                    .groups
                    .iter()
                    .filter(|group| visible_groups.is_none_or(|visible| visible.contains(group)))
                    .map(String::as_str)
                    .collect();
                view::person(&self.tree, person, &groups)
            })
            .collect())
    }

    /// The groups `identity` may read (only `name`, when given): a person
    /// reads none (their own entry lists theirs in `memberOf`).
    async fn groups(&self, identity: &Identity, name: Option<&str>) -> Result<Vec<Entry>, StoreError> {
        let Identity::Account { id, groups, .. } = identity else { return Ok(Vec::new()) };
        let visible_to = groups.as_ref().map(|_| id.as_str());
        let found = self.store.directory_groups(DirectoryQuery { name, visible_to }).await?;
        Ok(found.iter().map(|group| view::group(&self.tree, group)).collect())
    }
}

/// The root DSE and the subschema exist only as base objects.
fn base_only(request: &LdapSearchRequest, entry: Entry) -> Vec<Entry> {
    if request.scope == LdapSearchScope::Base { vec![entry] } else { Vec::new() }
}

/// Where a paged search goes on: the cookie is the count of entries already
/// sent, so any instance can continue it. An empty or unreadable cookie
/// starts from the beginning.
fn page_offset(cookie: &[u8]) -> usize {
    std::str::from_utf8(cookie).ok().and_then(|text| text.parse().ok()).unwrap_or(0)
}
