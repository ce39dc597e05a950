//! The doctor's checks: each a pure function from the gathered `Facts` to
//! the problems it finds, with what to change.

mod deployment;
mod failures;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::clock::UnixTime;
use crate::store::{AuditEvent, Heartbeat};
use deployment::{clock_skew, cookies_can_be_secure, mixed_versions, public_url_answers, split_brain};
use failures::{client_auth_failures, code_failures, issuer_without_slash, redirect_uri_mismatches};

/// One thing wrong, and what to change. `app` is the app's slug when the
/// problem is that app's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub app: Option<String>,
    pub detail: String,
    pub fix: String,
}

/// The answer to one request made through `public_url`, or why there was none.
pub type Probe<T> = Result<T, String>;

/// An OIDC app as registered here.
#[derive(Debug, Clone)]
pub struct AppFacts {
    pub slug: String,
    /// `{public_url}/application/o/<slug>/`.
    pub issuer: String,
    pub redirect_uris: Vec<String>,
    /// When it was last issued tokens, if within the window looked at.
    pub last_success: Option<UnixTime>,
}

/// The discovery document of one app, fetched through `public_url`.
#[derive(Debug, Clone)]
pub struct DiscoveryProbe {
    pub slug: String,
    pub url: String,
    /// The `issuer` it answered with (`None`: answered, but with no
    /// discovery document).
    pub answer: Probe<Option<String>>,
}

/// What the gatherer found; every check reads only this.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub public_url: String,
    pub apps: Vec<AppFacts>,
    pub discovery: Vec<DiscoveryProbe>,
    /// `/health/ready` through `public_url`, a fresh connection each: the
    /// database id each answer named (`None`: no id in the answer).
    pub databases: Vec<Probe<Option<String>>>,
    /// The JWKS through `public_url`, a fresh connection each: its `kid`s.
    pub jwks: Vec<Probe<BTreeSet<String>>>,
    /// For an https `public_url` that failed: whether plain http at the
    /// same host and port answered.
    pub plain_http_answers: bool,
    pub own_database_id: String,
    /// The `kid`s this database's keys publish now.
    pub own_kids: BTreeSet<String>,
    /// This host's clock minus the database's, in milliseconds.
    pub own_clock_offset_ms: i64,
    /// Every instance's latest heartbeat.
    pub instances: Vec<Heartbeat>,
    /// Recorded failures of the apps looked at, newest first.
    pub failures: Vec<AuditEvent>,
    pub now: UnixTime,
}

/// Every check, in the order an operator should work through them: reach
/// Latch first, then one deployment behind the URL, then time, then apps.
pub fn all(facts: &Facts) -> Vec<Problem> {
    [
        public_url_answers,
        cookies_can_be_secure,
        split_brain,
        clock_skew,
        mixed_versions,
        redirect_uri_mismatches,
        client_auth_failures,
        code_failures,
        issuer_without_slash,
    ]
    .iter()
    .flat_map(|check| check(facts))
    .collect()
}

fn problem(kind: &'static str, app: Option<&str>, detail: String, fix: String) -> Problem {
    Problem { kind, app: app.map(str::to_owned), detail, fix }
}

/// Facts of a healthy deployment, and makers of what the tests change.
#[cfg(test)]
mod fixtures {
    use super::*;

    pub const CALLBACK: &str = "https://app.example.com/api/auth/callback/authentik";

    pub fn facts() -> Facts {
        Facts {
            public_url: "http://127.0.0.1:9000".into(),
            apps: vec![AppFacts {
                slug: "karakeep".into(),
                issuer: "http://127.0.0.1:9000/application/o/karakeep/".into(),
                redirect_uris: vec![CALLBACK.into()],
                last_success: None,
            }],
            discovery: vec![DiscoveryProbe {
                slug: "karakeep".into(),
                url: "http://127.0.0.1:9000/application/o/karakeep/.well-known/openid-configuration".into(),
                answer: Ok(Some("http://127.0.0.1:9000/application/o/karakeep/".into())),
            }],
            databases: vec![Ok(Some("db1".into())); 3],
            jwks: vec![Ok(["k1".to_owned()].into()); 3],
            own_database_id: "db1".into(),
            own_kids: ["k1".to_owned()].into(),
            instances: vec![beat("i1", 0)],
            now: 1000,
            ..Facts::default()
        }
    }

    pub fn beat(id: &str, offset: i64) -> Heartbeat {
        Heartbeat {
            id: id.into(),
            version: "1".into(),
            host: "h".into(),
            listen: "127.0.0.1:9000".into(),
            database_id: "db1".into(),
            started_at: 0,
            last_seen: 1000,
            clock_offset_ms: offset,
        }
    }

    pub fn failure(kind: &str, detail: &str, at: UnixTime) -> AuditEvent {
        crate::audit::event(
            kind,
            &crate::audit::Actor { app: Some("karakeep"), ..Default::default() },
            Some(detail.into()),
            at,
        )
    }

    pub fn kinds(problems: &[Problem]) -> Vec<&'static str> {
        problems.iter().map(|problem| problem.kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::facts;
    use super::*;

    #[test]
    fn a_healthy_deployment_on_http_loopback_has_no_problem() {
        assert_eq!(all(&facts()), []);
    }
}
