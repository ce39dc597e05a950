//! One LDAP connection's state machine: who is bound, and the answer to
//! each request. Binds check passwords through the sign-in page's
//! `Authenticator` (same throttle, no cache); searches read the store and
//! evaluate the filter (`search`). Nothing is written: add, modify, delete and
//! rename are refused.

use std::sync::Arc;

use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapExtendedRequest, LdapExtendedResponse, LdapMsg, LdapOp, LdapResult,
    LdapResultCode,
};

use super::dn::{Location, Tree};
use super::view;
use crate::audit::{self, Auditor};
use crate::clock::Clock;
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::login::{Authenticator, LoginError};
use crate::metrics::Metrics;
use crate::store::{LdapAccount, Store, StoreError};

/// Who a connection is bound as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not bound, or bound anonymously: may read the root DSE and the
    /// subschema, nothing else.
    Anonymous,
    /// A person: may read their own entry.
    Person { username: String },
    /// A search account: may read the directory, or with `groups` only
    /// those groups and their members.
    Account { id: String, name: String, groups: Option<Vec<String>> },
}

/// A connection's state.
#[derive(Debug)]
pub struct Session {
    pub identity: Identity,
    /// Counted against in the sign-in throttle, as the web's client address is.
    pub client_ip: String,
    /// Whether the connection is encrypted (LDAPS, or after StartTLS).
    pub tls: bool,
}

impl Session {
    pub fn new(client_ip: String, tls: bool) -> Self {
        Self { identity: Identity::Anonymous, client_ip, tls }
    }
}

/// What the connection does after a request.
#[derive(Debug)]
pub enum Reply {
    /// Send these messages, in order, and read the next request.
    Send(Vec<LdapMsg>),
    /// Send this StartTLS response, then start TLS on the connection.
    StartTls(LdapMsg),
    /// Close the connection (unbind, or a message no client may send).
    Close,
}

/// The directory one server instance serves.
pub struct Directory {
    pub(super) tree: Tree,
    pub(super) store: Store,
    authenticator: Arc<Authenticator>,
    pub(super) auditor: Auditor,
    pub(super) metrics: Arc<Metrics>,
    clock: Clock,
    /// Whether StartTLS can be offered (a certificate is configured).
    pub(super) starttls: bool,
}

impl Directory {
    pub fn new(
        tree: Tree,
        store: Store,
        authenticator: Arc<Authenticator>,
        auditor: Auditor,
        metrics: Arc<Metrics>,
        clock: Clock,
        starttls: bool,
    ) -> Self {
        Self { tree, store, authenticator, auditor, metrics, clock, starttls }
    }

    /// The answer to one request.
    pub async fn handle(&self, session: &mut Session, message: LdapMsg) -> Reply {
        let id = message.msgid;
        let reply = |op| Reply::Send(vec![LdapMsg { msgid: id, op, ctrl: Vec::new() }]);
        let refuse = || result(LdapResultCode::UnwillingToPerform, "the directory is read-only");
        match message.op {
            LdapOp::BindRequest(request) => reply(self.bind(session, request).await),
            LdapOp::SearchRequest(request) => Reply::Send(self.search(session, id, &request, &message.ctrl).await),
            LdapOp::ExtendedRequest(request) => self.extended(session, id, &request),
            LdapOp::UnbindRequest => Reply::Close,
            LdapOp::AbandonRequest(_) => Reply::Send(Vec::new()),
            LdapOp::ModifyRequest(_) => reply(LdapOp::ModifyResponse(refuse())),
            LdapOp::AddRequest(_) => reply(LdapOp::AddResponse(refuse())),
            LdapOp::DelRequest(_) => reply(LdapOp::DelResponse(refuse())),
            LdapOp::ModifyDNRequest(_) => reply(LdapOp::ModifyDNResponse(refuse())),
            LdapOp::CompareRequest(_) => {
                reply(LdapOp::CompareResult(result(LdapResultCode::UnwillingToPerform, "compare is not supported")))
            }
            // A response, or an intermediate message: no client sends one.
            _ => Reply::Close,
        }
    }

    /// A simple bind (RFC 4513 §5.1). The connection is anonymous until it
    /// succeeds, and again after a failure.
    async fn bind(&self, session: &mut Session, request: LdapBindRequest) -> LdapOp {
        session.identity = Identity::Anonymous;
        let answer = |code, message: &str| {
            LdapOp::BindResponse(ldap3_proto::proto::LdapBindResponse { res: result(code, message), saslcreds: None })
        };
        let LdapBindCred::Simple(password) = request.cred else {
            return answer(LdapResultCode::AuthMethodNotSupported, "only simple binds are supported");
        };
        if request.dn.is_empty() && password.is_empty() {
            self.metrics.ldap("bind", "anonymous");
            return answer(LdapResultCode::Success, "");
        }
        if password.is_empty() {
            // RFC 4513 §5.1.2: an unauthenticated bind (a name, no password)
            // must not look like a successful one.
            return answer(LdapResultCode::UnwillingToPerform, "unauthenticated binds are not allowed");
        }
        let checked = match self.tree.locate(&request.dn) {
            Ok(Location::Person(username)) => self.bind_person(session, &username, password).await,
            Ok(Location::Service(name)) => self.bind_account(&name, &password).await,
            _ => Ok(None),
        };
        match checked {
            Ok(Some(identity)) => {
                self.metrics.ldap("bind", "success");
                self.audit_bind("ldap_bind_success", session, &request.dn, None);
                session.identity = identity;
                answer(LdapResultCode::Success, "")
            }
            Ok(None) => {
                self.metrics.ldap("bind", "failure");
                self.audit_bind("ldap_bind_failure", session, &request.dn, None);
                answer(LdapResultCode::InvalidCredentials, "invalid credentials")
            }
            Err(LoginError::Locked) => {
                self.metrics.ldap("bind", "locked");
                self.audit_bind("ldap_bind_failure", session, &request.dn, Some("locked after repeated failures"));
                // The same answer as a wrong password: a lock reveals nothing.
                answer(LdapResultCode::InvalidCredentials, "invalid credentials")
            }
            Err(LoginError::Busy) => answer(LdapResultCode::Busy, "too many binds at once; try again"),
            Err(error) => {
                tracing::error!(%error, "LDAP bind failed");
                self.metrics.ldap("bind", "error");
                answer(LdapResultCode::Unavailable, "the directory is unavailable")
            }
        }
    }

    /// `Some` when the password (account or app password) is the person's.
    async fn bind_person(
        &self,
        session: &Session,
        username: &str,
        password: String,
    ) -> Result<Option<Identity>, LoginError> {
        let checked =
            self.authenticator.check_directory_bind(username, password, &session.client_ip, self.clock.now()).await;
        match checked {
            Ok(_) => Ok(Some(Identity::Person { username: username.to_owned() })),
            Err(LoginError::InvalidCredentials) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// `Some` when the secret is the account's. Secrets are 256 random
    /// bits: no throttle is needed against guessing them.
    async fn bind_account(&self, name: &str, secret: &str) -> Result<Option<Identity>, LoginError> {
        let Some(account) = self.store.ldap_account(name).await? else { return Ok(None) };
        if !constant_time_eq(sha256_hex(secret).as_bytes(), account.secret_hash.as_bytes()) {
            return Ok(None);
        }
        Ok(Some(account_identity(account)))
    }

    /// A search account as it is now: a removal or a changed restriction
    /// counts from the next search, not the next bind.
    pub(super) async fn account(&self, name: &str) -> Result<Option<Identity>, StoreError> {
        Ok(self.store.ldap_account(name).await?.map(account_identity))
    }

    fn audit_bind(&self, kind: &str, session: &Session, dn: &str, detail: Option<&str>) {
        let username = match self.tree.locate(dn) {
            Ok(Location::Person(username)) => Some(username),
            _ => None,
        };
        let actor = audit::Actor { username: username.as_deref(), ip: Some(&session.client_ip), ..Default::default() };
        let detail = match detail {
            Some(detail) => format!("{dn}: {detail}"),
            None => dn.to_owned(),
        };
        self.auditor.record(kind, &actor, Some(detail));
    }

    fn extended(&self, session: &Session, id: i32, request: &LdapExtendedRequest) -> Reply {
        let respond = |code, message: &str, name: Option<&str>, value: Option<Vec<u8>>| LdapMsg {
            msgid: id,
            op: LdapOp::ExtendedResponse(LdapExtendedResponse {
                res: result(code, message),
                name: name.map(str::to_owned),
                value,
            }),
            ctrl: Vec::new(),
        };
        match request.name.as_str() {
            view::OID_WHOAMI => {
                let authzid = match &session.identity {
                    Identity::Anonymous => String::new(),
                    Identity::Person { username } => format!("dn:{}", self.tree.person(username)),
                    Identity::Account { name, .. } => format!("dn:{}", self.tree.service(name)),
                };
                Reply::Send(vec![respond(LdapResultCode::Success, "", None, Some(authzid.into_bytes()))])
            }
            view::OID_STARTTLS if !self.starttls => Reply::Send(vec![respond(
                LdapResultCode::ProtocolError,
                "StartTLS is not configured (ldap_tls_cert, ldap_tls_key)",
                Some(view::OID_STARTTLS),
                None,
            )]),
            view::OID_STARTTLS if session.tls => Reply::Send(vec![respond(
                LdapResultCode::OperationsError,
                "TLS is already established",
                Some(view::OID_STARTTLS),
                None,
            )]),
            view::OID_STARTTLS => Reply::StartTls(respond(LdapResultCode::Success, "", Some(view::OID_STARTTLS), None)),
            other => Reply::Send(vec![respond(
                LdapResultCode::ProtocolError,
                &format!("unsupported extended operation {other}"),
                None,
                None,
            )]),
        }
    }
}

fn account_identity(account: LdapAccount) -> Identity {
    let groups = account.restricted.then_some(account.groups);
    Identity::Account { id: account.id, name: account.name, groups }
}

pub(super) fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult { code, matcheddn: String::new(), message: message.to_owned(), referral: Vec::new() }
}
