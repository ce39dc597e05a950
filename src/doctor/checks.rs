//! The doctor's checks: each a pure function from the gathered `Facts` to
//! the problems it finds, with what to change.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::clock::UnixTime;
use crate::cluster;
use crate::oidc::authorize::REDIRECT_URI_MISMATCH;
use crate::oidc::client_auth::{CLIENT_AUTH_FAILED, WRONG_SECRET};
use crate::oidc::discovery::DISCOVERY_WITHOUT_SLASH;
use crate::oidc::redirect_uri::{self, explain_mismatch};
use crate::oidc::token::{CODE_EXPIRED, CODE_REFUSED, CODE_REUSE, CODE_UNKNOWN, PKCE_FAILED};
use crate::store::{AuditEvent, Heartbeat};

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

/// Clock differences beyond this are a problem: ID tokens are checked
/// against `iat`/`exp` with a small leeway by many apps, and codes live
/// 60 seconds.
pub const CLOCK_SKEW_LIMIT_MS: i64 = 5_000;

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

/// `public_url` must lead to this deployment: every discovery document
/// answered, with the issuer Latch would put in tokens.
pub fn public_url_answers(facts: &Facts) -> Vec<Problem> {
    let unreachable = facts
        .discovery
        .iter()
        .filter_map(|probe| probe.answer.as_ref().err().map(|error| (probe.url.as_str(), error.as_str())))
        .chain(
            facts
                .databases
                .iter()
                .filter_map(|probe| probe.as_ref().err().map(|error| ("/health/ready", error.as_str()))),
        )
        .next();
    if let Some((url, error)) = unreachable {
        if facts.plain_http_answers {
            return vec![problem(
                "https_served_over_http",
                None,
                format!(
                    "public_url is {} but that address answers plain HTTP, not TLS ({url}: {error})",
                    facts.public_url
                ),
                "Put a TLS-terminating reverse proxy with a certificate at that address in front of Latch, or set \
                 public_url to the http:// URL if apps really reach Latch without TLS."
                    .into(),
            )];
        }
        return vec![problem(
            "public_url_unreachable",
            None,
            format!("public_url {} does not answer from here: {url}: {error}", facts.public_url),
            "Make public_url reach Latch from where the apps run (DNS, the reverse proxy's route to Latch, its TLS \
             certificate), or set public_url to the URL apps use."
                .into(),
        )];
    }
    facts
        .discovery
        .iter()
        .filter_map(|probe| {
            let app = facts.apps.iter().find(|app| app.slug == probe.slug)?;
            let served = probe.answer.as_ref().ok()?;
            (served.as_deref() != Some(app.issuer.as_str())).then(|| {
                let answered = match served {
                    Some(issuer) => format!("answers with issuer {issuer}"),
                    None => "answers without this app's discovery document".to_owned(),
                };
                problem(
                    "discovery_mismatch",
                    Some(&app.slug),
                    format!(
                        "{} {answered}; this deployment's issuer is {}. public_url leads to another Latch (or \
                         another database), or a proxy rewrites the answer.",
                        probe.url, app.issuer
                    ),
                    format!(
                        "Route {} to the instances using this database, and give every instance the same \
                         public_url.",
                        facts.public_url
                    ),
                )
            })
        })
        .collect()
}

/// Whether `host` is this machine: 127.0.0.0/8, ::1 or localhost.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// Latch's cookies are `Secure` only under an https `public_url`. A plain
/// http one on loopback (a test, a first try) is fine.
pub fn cookies_can_be_secure(facts: &Facts) -> Vec<Problem> {
    let Ok(url) = url::Url::parse(&facts.public_url) else { return Vec::new() };
    if url.scheme() != "http" || url.host_str().is_none_or(is_loopback) {
        return Vec::new();
    }
    vec![problem(
        "insecure_cookies",
        None,
        format!(
            "public_url is {}: session cookies cannot be Secure, so browsers send them, and passwords travel, \
             in clear text",
            facts.public_url
        ),
        "Serve Latch over https (a reverse proxy with a certificate) and set public_url to the https:// URL.".into(),
    )]
}

/// More than one database or key set behind one `public_url`: what one
/// instance issues, another does not know, and apps get `invalid_grant`.
pub fn split_brain(facts: &Facts) -> Vec<Problem> {
    let mut evidence = Vec::new();
    let other_databases: BTreeSet<&str> = facts
        .databases
        .iter()
        .filter_map(|probe| probe.as_ref().ok().and_then(Option::as_deref))
        .chain(facts.instances.iter().map(|instance| instance.database_id.as_str()))
        .filter(|id| *id != facts.own_database_id)
        .collect();
    if !other_databases.is_empty() {
        evidence.push(format!(
            "{} leads to databases {} besides this one ({})",
            facts.public_url,
            other_databases.into_iter().collect::<Vec<_>>().join(", "),
            facts.own_database_id
        ));
    }
    let other_keys: BTreeSet<String> = facts
        .jwks
        .iter()
        .filter_map(|probe| probe.as_ref().ok())
        .filter(|kids| **kids != facts.own_kids)
        .map(|kids| kids.iter().cloned().collect::<Vec<_>>().join(" "))
        .collect();
    if !other_keys.is_empty() {
        evidence.push(format!(
            "the JWKS served there holds keys [{}], this database's are [{}]",
            other_keys.into_iter().collect::<Vec<_>>().join("], ["),
            facts.own_kids.iter().cloned().collect::<Vec<_>>().join(" ")
        ));
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![problem(
        "split_brain",
        None,
        format!(
            "More than one Latch deployment answers behind one URL: {}. A code issued by one is unknown to the \
             other, so apps get invalid_grant (\"{CODE_UNKNOWN}\"), sessions seem to vanish, and tokens fail to \
             verify.",
            evidence.join("; ")
        ),
        "Point every instance behind that URL at one PostgreSQL database (database_url), or send all traffic to \
         one instance."
            .into(),
    )]
}

/// Seconds, one decimal, signed by direction.
fn seconds(milliseconds: i64) -> String {
    let direction = if milliseconds >= 0 { "ahead of" } else { "behind" };
    format!("{:.1} s {direction}", milliseconds.unsigned_abs() as f64 / 1000.0)
}

/// This host, the database and the live instances must agree on the time.
pub fn clock_skew(facts: &Facts) -> Vec<Problem> {
    let fix = "Keep every clock synchronized: run NTP (chrony or systemd-timesyncd) on every Latch host and on the \
               database server.";
    let mut problems = Vec::new();
    if facts.own_clock_offset_ms.abs() > CLOCK_SKEW_LIMIT_MS {
        let detail = format!("This host's clock is {} the database's.", seconds(facts.own_clock_offset_ms));
        problems.push(problem("clock_skew", None, detail, fix.into()));
    }
    let live = live_instances(facts);
    for instance in &live {
        if instance.clock_offset_ms.abs() > CLOCK_SKEW_LIMIT_MS {
            let detail = format!(
                "Instance {} on {} ({}): its clock is {} the database's.",
                instance.id,
                instance.host,
                instance.listen,
                seconds(instance.clock_offset_ms)
            );
            problems.push(problem("clock_skew", None, detail, fix.into()));
        }
    }
    let offsets = live.iter().map(|instance| instance.clock_offset_ms);
    if let (Some(low), Some(high)) = (offsets.clone().min(), offsets.max())
        && high - low > CLOCK_SKEW_LIMIT_MS
        && problems.is_empty()
    {
        let detail = format!("The instances' clocks differ by {:.1} s.", (high - low) as f64 / 1000.0);
        problems.push(problem("clock_skew", None, detail, fix.into()));
    }
    problems
}

fn live_instances(facts: &Facts) -> Vec<Heartbeat> {
    cluster::status(facts.instances.clone(), facts.now)
        .instances
        .into_iter()
        .filter(|instance| !instance.stale)
        .map(|instance| instance.heartbeat)
        .collect()
}

/// Live instances running different versions of Latch.
pub fn mixed_versions(facts: &Facts) -> Vec<Problem> {
    let versions = cluster::status(facts.instances.clone(), facts.now).mixed_versions;
    if versions.is_empty() {
        return Vec::new();
    }
    vec![problem(
        "mixed_versions",
        None,
        format!("Live instances run different versions of Latch: {}.", versions.join(", ")),
        "Finish the upgrade: run one version on every instance (`latch cluster status` lists them).".into(),
    )]
}

/// Failures of `kind`, grouped by app and detail, newest first: each
/// group's count and latest time.
fn grouped<'f>(facts: &'f Facts, kind: &str) -> Vec<(&'f AppFacts, &'f str, usize, UnixTime)> {
    let mut groups: BTreeMap<(&str, &str), (usize, UnixTime)> = BTreeMap::new();
    for event in facts.failures.iter().filter(|event| event.kind == kind) {
        let (Some(app), Some(detail)) = (event.app.as_deref(), event.detail.as_deref()) else { continue };
        let entry = groups.entry((app, detail)).or_insert((0, event.at));
        entry.0 += 1;
        entry.1 = entry.1.max(event.at);
    }
    let mut found: Vec<_> = groups
        .into_iter()
        .filter_map(|((slug, detail), (count, last))| {
            facts.apps.iter().find(|app| app.slug == slug).map(|app| (app, detail, count, last))
        })
        .collect();
    found.sort_by_key(|(_, _, _, last)| std::cmp::Reverse(*last));
    found
}

/// "3 times, last at 2026-…Z".
fn occurrences(count: usize, last: UnixTime) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(last).unwrap_or(0));
    let when = humantime::format_rfc3339_seconds(time);
    if count == 1 { format!("once, at {when}") } else { format!("{count} times, last at {when}") }
}

/// Whether the app has been issued tokens after `last` (a later second:
/// within one, the order is unknown): what failed then works now.
fn fixed_since(app: &AppFacts, last: UnixTime) -> bool {
    app.last_success.is_some_and(|success| success > last)
}

/// A word as a shell reads it: quoted when it holds anything but safe characters.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Authorization requests with a redirect URI the app has not registered
/// (and still has not): what differs, and the command that registers it.
pub fn redirect_uri_mismatches(facts: &Facts) -> Vec<Problem> {
    grouped(facts, REDIRECT_URI_MISMATCH)
        .into_iter()
        .filter(|(app, sent, _, _)| !app.redirect_uris.iter().any(|registered| redirect_uri::matches(registered, sent)))
        .map(|(app, sent, count, last)| {
            let mut command = format!("latch app update {}", shell_word(&app.slug));
            // `--redirect-uri` replaces the list: the registered ones are repeated.
            for uri in app.redirect_uris.iter().map(String::as_str).chain([sent]) {
                command.push_str(&format!(" --redirect-uri {}", shell_word(uri)));
            }
            let detail = format!(
                "{} ({}). If the registered URI is the right one, change the app's callback URL instead.",
                explain_mismatch(sent, &app.redirect_uris),
                occurrences(count, last)
            );
            problem("redirect_uri_mismatch", Some(&app.slug), detail, command)
        })
        .collect()
}

/// Token requests whose client authentication failed.
pub fn client_auth_failures(facts: &Facts) -> Vec<Problem> {
    grouped(facts, CLIENT_AUTH_FAILED)
        .into_iter()
        .filter(|(app, _, _, last)| !fixed_since(app, *last))
        .map(|(app, reason, count, last)| {
            let slug = shell_word(&app.slug);
            if reason == WRONG_SECRET {
                let detail = format!(
                    "The app sent a client_secret that is not its own ({}); Latch answered invalid_client.",
                    occurrences(count, last)
                );
                let fix = format!(
                    "Copy the app's client secret into it again, exactly; if it is lost, run `latch app \
                     rotate-secret {slug}` and paste the secret it prints into the app."
                );
                return problem("wrong_client_secret", Some(&app.slug), detail, fix);
            }
            let detail = format!("The app's token requests were refused: {reason} ({}).", occurrences(count, last));
            let fix = format!(
                "Make the app's client type match its registration (`latch app show {slug}`): a confidential \
                 app sends its secret with client_secret_basic or client_secret_post, a public one none."
            );
            problem("client_auth_failed", Some(&app.slug), detail, fix)
        })
        .collect()
}

/// Refused code redemptions: PKCE, replays, codes this database never issued,
/// expired codes, and the rest.
pub fn code_failures(facts: &Facts) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (app, reason, count, last) in grouped(facts, PKCE_FAILED) {
        if fixed_since(app, last) {
            continue;
        }
        let detail = format!("PKCE failed: {reason} ({}).", occurrences(count, last));
        let fix = "Turn PKCE with S256 on in the app, consistently: each authorization request carries a \
                   code_challenge and its token request that request's code_verifier (RFC 7636). Behind several \
                   app replicas, the verifier must be in shared session state."
            .into();
        problems.push(problem("pkce_error", Some(&app.slug), detail, fix));
    }
    for (app, _, count, last) in grouped(facts, CODE_REUSE) {
        let detail = format!(
            "A code was redeemed a second time ({}); Latch revoked the tokens its first use bought.",
            occurrences(count, last)
        );
        let fix = "Make the app redeem each code once: it retries the token request, or handles one callback \
                   twice (a reloaded page, two replicas). If it did not, someone else had the code: check that the \
                   redirect URI is https."
            .into();
        problems.push(problem("code_replayed", Some(&app.slug), detail, fix));
    }
    for (app, reason, count, last) in grouped(facts, CODE_REFUSED) {
        if fixed_since(app, last) {
            continue;
        }
        let when = occurrences(count, last);
        let (kind, detail, fix) = match reason {
            CODE_UNKNOWN => (
                "code_unknown",
                format!(
                    "The app redeemed codes this database never issued ({when}): invalid_grant, \"{CODE_UNKNOWN}\". \
                     Behind a load balancer, the instance that issued them uses another database."
                ),
                "Point every Latch instance at one PostgreSQL database, and the app's token endpoint at this \
                 deployment's public_url."
                    .to_owned(),
            ),
            CODE_EXPIRED => (
                "code_expired",
                format!("The app redeemed codes after they expired ({when})."),
                "Codes live 60 s (code_ttl): check the clocks (`latch doctor` above) and that the app redeems the \
                 code as soon as the browser returns."
                    .to_owned(),
            ),
            other => (
                "code_refused",
                format!("The app's codes were refused: {other} ({when})."),
                "Follow the reason given; `latch events --app <slug>` lists each refusal.".to_owned(),
            ),
        };
        problems.push(problem(kind, Some(&app.slug), detail, fix));
    }
    problems
}

/// Discovery fetched as if the issuer had no trailing slash.
pub fn issuer_without_slash(facts: &Facts) -> Vec<Problem> {
    grouped(facts, DISCOVERY_WITHOUT_SLASH)
        .into_iter()
        .filter(|(app, _, _, last)| !fixed_since(app, *last))
        .map(|(app, configured, count, last)| {
            let detail = format!(
                "The app fetched discovery as if its issuer were {configured} ({}); the issuer is {}, with a \
                 trailing slash, and strict clients refuse the difference.",
                occurrences(count, last),
                app.issuer
            );
            let fix = format!(
                "Set the app's issuer (OpenID provider URL) to {} exactly, trailing slash included.",
                app.issuer
            );
            problem("issuer_without_slash", Some(&app.slug), detail, fix)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLBACK: &str = "https://app.example.com/api/auth/callback/authentik";

    fn facts() -> Facts {
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

    fn beat(id: &str, offset: i64) -> Heartbeat {
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

    fn failure(kind: &str, detail: &str, at: UnixTime) -> AuditEvent {
        crate::audit::event(
            kind,
            &crate::audit::Actor { app: Some("karakeep"), ..Default::default() },
            Some(detail.into()),
            at,
        )
    }

    fn kinds(problems: &[Problem]) -> Vec<&'static str> {
        problems.iter().map(|problem| problem.kind).collect()
    }

    #[test]
    fn a_healthy_deployment_on_http_loopback_has_no_problem() {
        assert_eq!(all(&facts()), []);
    }

    #[test]
    fn an_unreachable_public_url_is_one_problem_and_https_answered_in_plain_http_is_named() {
        let mut facts = facts();
        facts.discovery[0].answer = Err("connection refused".into());
        facts.databases[1] = Err("connection refused".into());
        assert_eq!(kinds(&public_url_answers(&facts)), ["public_url_unreachable"]);
        facts.plain_http_answers = true;
        assert_eq!(kinds(&public_url_answers(&facts)), ["https_served_over_http"]);
    }

    #[test]
    fn another_issuer_or_no_document_at_public_url_is_a_discovery_mismatch() {
        let mut facts = facts();
        facts.discovery[0].answer = Ok(Some("http://127.0.0.1:9000/application/o/karakeep".into()));
        assert_eq!(kinds(&public_url_answers(&facts)), ["discovery_mismatch"]);
        facts.discovery[0].answer = Ok(None);
        assert_eq!(kinds(&public_url_answers(&facts)), ["discovery_mismatch"]);
    }

    #[test]
    fn cookies_cannot_be_secure_on_plain_http_except_on_loopback() {
        let mut facts = facts();
        for (url, problems) in [
            ("http://127.0.0.1:9000", 0),
            ("http://localhost", 0),
            ("http://[::1]:8080", 0),
            ("https://sso.example.com", 0),
            ("http://sso.example.com", 1),
            ("http://192.168.1.10:9000", 1),
        ] {
            facts.public_url = url.into();
            assert_eq!(cookies_can_be_secure(&facts).len(), problems, "{url}");
        }
    }

    #[test]
    fn another_database_or_key_set_behind_the_url_is_split_brain() {
        let mut facts = facts();
        facts.databases[1] = Ok(Some("db2".into()));
        let problems = split_brain(&facts);
        assert_eq!(kinds(&problems), ["split_brain"]);
        assert!(problems[0].detail.contains("db2") && problems[0].detail.contains(CODE_UNKNOWN), "{problems:?}");
        let mut facts = self::facts();
        facts.jwks[2] = Ok(["k9".to_owned()].into());
        assert!(split_brain(&facts)[0].detail.contains("[k9]"));
        let mut facts = self::facts();
        facts.instances.push(Heartbeat { database_id: "db3".into(), ..beat("i2", 0) });
        assert!(split_brain(&facts)[0].detail.contains("db3"));
    }

    #[test]
    fn clocks_apart_beyond_the_limit_are_skew_and_dead_instances_do_not_count() {
        let mut facts = facts();
        facts.own_clock_offset_ms = CLOCK_SKEW_LIMIT_MS;
        assert_eq!(clock_skew(&facts), []);
        facts.own_clock_offset_ms = -7_250;
        let problems = clock_skew(&facts);
        assert_eq!(kinds(&problems), ["clock_skew"]);
        assert!(
            problems[0].detail.contains("7.3 s behind") || problems[0].detail.contains("7.2 s behind"),
            "{problems:?}"
        );
        let mut facts = self::facts();
        facts.instances.push(beat("i2", 120_000));
        let problems = clock_skew(&facts);
        assert!(problems[0].detail.contains("i2") && problems[0].detail.contains("120.0 s ahead of"), "{problems:?}");
        facts.instances[1].last_seen = 1000 - cluster::STALE_AFTER - 1;
        assert_eq!(clock_skew(&facts), []);
        let mut facts = self::facts();
        facts.instances = vec![beat("i1", -4_000), beat("i2", 4_000)];
        assert!(clock_skew(&facts)[0].detail.contains("differ by 8.0 s"));
    }

    #[test]
    fn a_redirect_mismatch_names_the_part_and_the_command_that_registers_it_until_it_is_registered() {
        let mut facts = facts();
        let sent = "https://app.example.com/api/auth/callback/custom?x=1&y=2";
        facts.failures = vec![failure(REDIRECT_URI_MISMATCH, sent, 990), failure(REDIRECT_URI_MISMATCH, sent, 980)];
        let problems = redirect_uri_mismatches(&facts);
        assert_eq!(kinds(&problems), ["redirect_uri_mismatch"]);
        assert_eq!(problems[0].app.as_deref(), Some("karakeep"));
        assert!(
            problems[0].detail.contains("the path differs") && problems[0].detail.contains("2 times"),
            "{problems:?}"
        );
        assert_eq!(
            problems[0].fix,
            format!("latch app update karakeep --redirect-uri {CALLBACK} --redirect-uri '{sent}'")
        );
        facts.apps[0].redirect_uris.push(sent.into());
        assert_eq!(redirect_uri_mismatches(&facts), []);
    }

    #[test]
    fn a_wrong_secret_is_reported_until_the_app_gets_tokens_again() {
        let mut facts = facts();
        facts.failures = vec![failure(CLIENT_AUTH_FAILED, WRONG_SECRET, 990)];
        let problems = client_auth_failures(&facts);
        assert_eq!(kinds(&problems), ["wrong_client_secret"]);
        assert!(problems[0].fix.contains("latch app rotate-secret karakeep"), "{problems:?}");
        facts.apps[0].last_success = Some(990);
        assert_eq!(kinds(&client_auth_failures(&facts)), ["wrong_client_secret"], "the same second proves nothing");
        facts.apps[0].last_success = Some(991);
        assert_eq!(client_auth_failures(&facts), []);
    }

    #[test]
    fn code_failures_are_told_apart() {
        let mut facts = facts();
        facts.failures = vec![
            failure(PKCE_FAILED, "code_verifier does not match the code_challenge", 990),
            failure(CODE_REUSE, "tokens issued for the code revoked", 991),
            failure(CODE_REFUSED, CODE_UNKNOWN, 992),
            failure(CODE_REFUSED, CODE_EXPIRED, 993),
            failure(CODE_REFUSED, "the sign-in session the code was issued in has ended", 994),
        ];
        let problems = code_failures(&facts);
        assert_eq!(kinds(&problems), ["pkce_error", "code_replayed", "code_refused", "code_expired", "code_unknown"]);
        assert!(problems[0].detail.contains("does not match"), "{problems:?}");
    }

    #[test]
    fn discovery_without_the_slash_names_the_issuer_to_set() {
        let mut facts = facts();
        facts.failures = vec![failure(DISCOVERY_WITHOUT_SLASH, "http://127.0.0.1:9000/application/o/karakeep", 990)];
        let problems = issuer_without_slash(&facts);
        assert_eq!(kinds(&problems), ["issuer_without_slash"]);
        assert!(problems[0].fix.contains("http://127.0.0.1:9000/application/o/karakeep/ exactly"), "{problems:?}");
    }

    #[test]
    fn mixed_versions_among_live_instances_are_a_problem() {
        let mut facts = facts();
        facts.instances.push(Heartbeat { version: "2".into(), ..beat("i2", 0) });
        assert_eq!(kinds(&mixed_versions(&facts)), ["mixed_versions"]);
    }

    #[test]
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_word("https://a.example/cb"), "https://a.example/cb");
        assert_eq!(shell_word("https://a/cb?x=1&y=2"), "'https://a/cb?x=1&y=2'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
