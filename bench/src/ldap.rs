//! A minimal LDAP client for the LDAP scenarios: one connection, simple
//! binds and searches, framed by the same `ldap3_proto` codec the server
//! uses (a codec, not a client library: nothing hides a round trip).

use std::net::SocketAddr;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapResultCode, LdapSearchRequest,
    LdapSearchScope,
};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// The base DN the measured server is given (`LATCH_LDAP_BASE_DN`).
pub const BASE_DN: &str = "dc=bench,dc=example";

pub struct LdapClient {
    framed: Framed<TcpStream, LdapCodec>,
    next_id: i32,
}

impl LdapClient {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect to LDAP at {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self { framed: Framed::new(stream, LdapCodec::default()), next_id: 1 })
    }

    /// A simple bind; an error unless it succeeds.
    pub async fn bind(&mut self, dn: &str, password: &str) -> anyhow::Result<()> {
        let request = LdapBindRequest { dn: dn.to_owned(), cred: LdapBindCred::Simple(password.to_owned()) };
        match self.request(LdapOp::BindRequest(request)).await?.pop() {
            Some(LdapOp::BindResponse(response)) if response.res.code == LdapResultCode::Success => Ok(()),
            Some(LdapOp::BindResponse(response)) => {
                bail!("bind as {dn}: {:?} {}", response.res.code, response.res.message)
            }
            other => bail!("bind as {dn}: unexpected answer {other:?}"),
        }
    }

    /// Searches the people for `(&(objectClass=inetOrgPerson)(uid=…))`, as
    /// an app looks a person up; the number of entries found.
    pub async fn find_person(&mut self, uid: &str) -> anyhow::Result<usize> {
        let filter = LdapFilter::And(vec![
            LdapFilter::Equality("objectClass".into(), "inetOrgPerson".into()),
            LdapFilter::Equality("uid".into(), uid.to_owned()),
        ]);
        let request = LdapSearchRequest {
            base: format!("ou=people,{BASE_DN}"),
            scope: LdapSearchScope::OneLevel,
            aliases: LdapDerefAliases::Never,
            sizelimit: 0,
            timelimit: 0,
            typesonly: false,
            filter,
            attrs: vec!["uid".into(), "mail".into(), "cn".into(), "memberOf".into()],
        };
        let mut answers = self.request(LdapOp::SearchRequest(request)).await?;
        match answers.pop() {
            Some(LdapOp::SearchResultDone(done)) if done.code == LdapResultCode::Success => Ok(answers.len()),
            other => bail!("search for {uid}: unexpected end {other:?}"),
        }
    }

    /// Sends one request and reads its answers up to the final one.
    async fn request(&mut self, op: LdapOp) -> anyhow::Result<Vec<LdapOp>> {
        let msgid = self.next_id;
        self.next_id += 1;
        self.framed.send(LdapMsg { msgid, op, ctrl: Vec::new() }).await?;
        let mut answers = Vec::new();
        loop {
            let message = self.framed.next().await.context("the LDAP server closed the connection")??;
            if message.msgid != msgid {
                bail!("answer to message {} while waiting for {msgid}", message.msgid);
            }
            let last = !matches!(message.op, LdapOp::SearchResultEntry(_) | LdapOp::SearchResultReference(_));
            answers.push(message.op);
            if last {
                return Ok(answers);
            }
        }
    }
}
