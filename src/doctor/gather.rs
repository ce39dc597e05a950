//! The doctor's I/O: what the store says, and what `public_url` answers
//! from here, gathered into `Facts` for the checks.

use std::collections::BTreeSet;
use std::time::Duration;

use super::DoctorError;
use super::checks::{AppFacts, DiscoveryProbe, Facts, Probe};
use crate::clock::{Clock, UnixTime};
use crate::cluster;
use crate::config::Config;
use crate::http_client::{self, Connections, HttpClient};
use crate::oidc::authorize::REDIRECT_URI_MISMATCH;
use crate::oidc::client_auth::CLIENT_AUTH_FAILED;
use crate::oidc::discovery::DISCOVERY_WITHOUT_SLASH;
use crate::oidc::token::{CODE_REFUSED, CODE_REUSE, PKCE_FAILED};
use crate::store::{AuditEvent, EventFilter, Store};
use crate::web::ops::DATABASE_ID_HEADER;

/// How far back failures count as recent.
const WINDOW: i64 = 24 * 3600;

/// The most events of one kind looked at per app.
const EVENTS_PER_KIND: i64 = 200;

/// Requests made to `public_url` for the database id and the JWKS, each on
/// a new connection: behind a load balancer, enough to meet every backend
/// of a small deployment (round-robin meets two in two).
const PROBES: usize = 4;

/// How long one request through `public_url` may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The failures the checks explain.
const FAILURE_KINDS: [&str; 6] =
    [REDIRECT_URI_MISMATCH, CLIENT_AUTH_FAILED, PKCE_FAILED, CODE_REUSE, CODE_REFUSED, DISCOVERY_WITHOUT_SLASH];

/// Gathers the facts about the deployment of `config` (its store open as
/// `store`), about the OIDC app `only_app` or about all of them.
pub async fn gather(store: &Store, config: &Config, only_app: Option<&str>) -> Result<Facts, DoctorError> {
    let clock = Clock::default();
    let now = clock.now();
    let public_url = config.public_url.as_str().to_owned();
    let mut apps = oidc_apps(store, config, only_app).await?;
    for app in &mut apps {
        app.last_success = events(store, &app.slug, "tokens_issued", now, 1).await?.first().map(|event| event.at);
    }
    let mut failures = Vec::new();
    for app in &apps {
        for kind in FAILURE_KINDS {
            failures.extend(events(store, &app.slug, kind, now, EVENTS_PER_KIND).await?);
        }
    }
    let http = http_client::build(Connections::FreshEach)?;
    let health_url = format!("{public_url}/health/ready");
    let mut databases = Vec::new();
    for _ in 0..PROBES {
        databases.push(database_id(&http, &health_url).await);
        if databases.iter().any(Result::is_err) {
            // Unreachable: say so once rather than wait for every probe.
            break;
        }
    }
    let reachable = databases.iter().all(Result::is_ok);
    let mut discovery = Vec::new();
    let mut jwks = Vec::new();
    if reachable {
        for app in &apps {
            let url = format!("{}.well-known/openid-configuration", app.issuer);
            discovery.push(DiscoveryProbe { slug: app.slug.clone(), answer: issuer(&http, &url).await, url });
        }
        if let Some(app) = apps.first() {
            let url = config.public_url.join(&format!("/application/o/{}/jwks/", app.slug));
            for _ in 0..PROBES {
                jwks.push(kids(&http, &url).await);
            }
        }
    }
    let plain_http_answers = !reachable && config.public_url.is_https() && {
        let plain = health_url.replacen("https://", "http://", 1);
        http_client::get(&http, &plain, PROBE_TIMEOUT).await.is_ok()
    };
    Ok(Facts {
        public_url,
        apps,
        discovery,
        databases,
        jwks,
        plain_http_answers,
        own_database_id: store.database_id().await?,
        own_kids: published_kids(store, now).await?,
        own_clock_offset_ms: cluster::clock_offset_ms(store, &clock).await?,
        instances: store.instances().await?,
        failures,
        now,
    })
}

/// The OIDC apps to look at (forward-auth apps have no discovery).
async fn oidc_apps(store: &Store, config: &Config, only_app: Option<&str>) -> Result<Vec<AppFacts>, DoctorError> {
    let apps: Vec<AppFacts> = store
        .list_apps()
        .await?
        .into_iter()
        .filter(|app| only_app.is_none_or(|slug| slug == app.slug))
        .filter(|app| app.external_url.is_none())
        .map(|app| AppFacts {
            issuer: config.public_url.join(&format!("/application/o/{}/", app.slug)),
            slug: app.slug,
            redirect_uris: app.redirect_uris,
            last_success: None,
        })
        .collect();
    match only_app {
        Some(slug) if apps.is_empty() => Err(DoctorError::NoSuchApp(slug.to_owned())),
        _ => Ok(apps),
    }
}

async fn events(
    store: &Store,
    slug: &str,
    kind: &str,
    now: UnixTime,
    limit: i64,
) -> Result<Vec<AuditEvent>, DoctorError> {
    let filter = EventFilter {
        app: Some(slug.to_owned()),
        kind: Some(kind.to_owned()),
        since: Some(now - WINDOW),
        limit,
        ..EventFilter::default()
    };
    Ok(store.list_events(&filter).await?)
}

/// The `kid`s of the keys this database publishes at `now`.
async fn published_kids(store: &Store, now: UnixTime) -> Result<BTreeSet<String>, DoctorError> {
    Ok(store
        .signing_keys()
        .await?
        .into_iter()
        .filter(|key| key.retire_at.is_none_or(|retire| retire > now))
        .map(|key| key.kid)
        .collect())
}

/// GETs `url` and reads its JSON body (`None`: the answer was no success,
/// or not JSON); `Err` says why there was no answer.
async fn json(http: &HttpClient, url: &str) -> Probe<Option<serde_json::Value>> {
    let fetched = http_client::get(http, url, PROBE_TIMEOUT).await.map_err(|error| error.to_string())?;
    Ok(fetched.status.is_success().then(|| serde_json::from_slice(&fetched.body).ok()).flatten())
}

/// The database id `/health/ready` names (`None` when it names none: not
/// Latch, or a version that does not say).
async fn database_id(http: &HttpClient, url: &str) -> Probe<Option<String>> {
    let fetched = http_client::get(http, url, PROBE_TIMEOUT).await.map_err(|error| error.to_string())?;
    Ok(fetched.headers.get(DATABASE_ID_HEADER).and_then(|value| value.to_str().ok()).map(str::to_owned))
}

/// The `issuer` of the discovery document at `url` (`None`: no document).
async fn issuer(http: &HttpClient, url: &str) -> Probe<Option<String>> {
    Ok(json(http, url).await?.and_then(|document| document.get("issuer")?.as_str().map(str::to_owned)))
}

/// The `kid`s of the JWK Set at `url`; `Err` when there is none.
async fn kids(http: &HttpClient, url: &str) -> Probe<BTreeSet<String>> {
    let set = json(http, url).await?.ok_or_else(|| format!("{url} answers with no JWK Set"))?;
    let keys = set.get("keys").and_then(|keys| keys.as_array()).cloned().unwrap_or_default();
    Ok(keys.iter().filter_map(|key| key.get("kid")?.as_str().map(str::to_owned)).collect())
}
