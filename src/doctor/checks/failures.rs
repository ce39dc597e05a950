//! Checks of the apps' recent failures, from the audit trail.

use std::collections::BTreeMap;

use super::{AppFacts, Facts, Problem, problem};
use crate::clock::UnixTime;
use crate::oidc::authorize::REDIRECT_URI_MISMATCH;
use crate::oidc::client_auth::{CLIENT_AUTH_FAILED, WRONG_SECRET};
use crate::oidc::discovery::DISCOVERY_WITHOUT_SLASH;
use crate::oidc::redirect_uri::{self, explain_mismatch};
use crate::oidc::token::{CODE_EXPIRED, CODE_REFUSED, CODE_REUSE, CODE_UNKNOWN, PKCE_FAILED};

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
    use super::super::fixtures::*;
    use super::*;

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
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_word("https://a.example/cb"), "https://a.example/cb");
        assert_eq!(shell_word("https://a/cb?x=1&y=2"), "'https://a/cb?x=1&y=2'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }
}
