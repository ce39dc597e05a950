//! Checks of the deployment as a whole: reaching it, one database behind
//! its URL, its clocks and versions.

use std::collections::BTreeSet;

use super::{Facts, Problem, problem};
use crate::cluster;
use crate::oidc::token::CODE_UNKNOWN;
use crate::store::Heartbeat;

/// Clock differences beyond this are a problem: ID tokens are checked
/// against `iat`/`exp` with a small leeway by many apps, and codes live
/// 60 seconds.
pub const CLOCK_SKEW_LIMIT_MS: i64 = 5_000;

/// `public_url` must lead to this deployment: every discovery document
/// answered, with the issuer Latch would put in tokens.
pub fn public_url_answers(facts: &Facts) -> Vec<Problem> {
    let health = format!("{}/health/ready", facts.public_url);
    let unreachable = facts
        .discovery
        .iter()
        .filter_map(|probe| probe.answer.as_ref().err().map(|error| (probe.url.as_str(), error.as_str())))
        .chain(
            facts
                .databases
                .iter()
                .filter_map(|probe| probe.as_ref().err().map(|error| (health.as_str(), error.as_str()))),
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

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
    fn mixed_versions_among_live_instances_are_a_problem() {
        let mut facts = facts();
        facts.instances.push(Heartbeat { version: "2".into(), ..beat("i2", 0) });
        assert_eq!(kinds(&mixed_versions(&facts)), ["mixed_versions"]);
    }
}
