//! Prometheus metrics. Counters and histograms live in one registry per
//! process (Prometheus scrapes each instance and sums); gauges that describe
//! shared state (active sessions) are read from the store at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::oidc::values::GrantType;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route pattern (`/application/o/{slug}/jwks/`), never the raw path.
    pub endpoint: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FactorLabels {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    second_factors: Family<FactorLabels, Counter>,
    tokens: Family<GrantLabels, Counter>,
    database_errors: Counter,
    active_sessions: Gauge,
    pool_connections: Gauge,
    pool_idle: Gauge,
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum LoginOutcome {
    Success,
    Failure,
    Locked,
}

impl LoginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Locked => "locked",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("latch");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by endpoint, method and status", requests.clone());
        let request_seconds = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency",
            prometheus_client::registry::Unit::Seconds,
            request_seconds.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register("logins", "Sign-in attempts by outcome", logins.clone());
        let second_factors = Family::<FactorLabels, Counter>::default();
        registry.register(
            "second_factor_checks",
            "Second-factor checks in sign-ins by method (otp, recovery_code; failures: code) and outcome",
            second_factors.clone(),
        );
        let tokens = Family::<GrantLabels, Counter>::default();
        registry.register("tokens_issued", "Token responses by grant type", tokens.clone());
        let database_errors = Counter::default();
        registry.register("database_errors", "Requests that failed because of the database", database_errors.clone());
        let active_sessions = Gauge::default();
        registry.register("active_sessions", "Unexpired sign-in sessions (whole deployment)", active_sessions.clone());
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open database connections of this instance",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register("db_pool_idle_connections", "Idle database connections of this instance", pool_idle.clone());
        registry.register("build", "Latch version", Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION") }));
        Self {
            registry,
            requests,
            request_seconds,
            logins,
            second_factors,
            tokens,
            database_errors,
            active_sessions,
            pool_connections,
            pool_idle,
        }
    }

    pub fn observe_request(&self, labels: RequestLabels, seconds: f64) {
        self.request_seconds.get_or_create(&labels).observe(seconds);
        self.requests.get_or_create(&labels).inc();
    }

    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&OutcomeLabels { outcome: outcome.as_str() }).inc();
    }

    /// One second-factor check: `method` as `login::flow::Method::as_str`
    /// names it (`code` for a refused code, whose kind is unknown).
    pub fn second_factor(&self, method: &'static str, outcome: LoginOutcome) {
        self.second_factors.get_or_create(&FactorLabels { method, outcome: outcome.as_str() }).inc();
    }

    pub fn token_issued(&self, grant: GrantType) {
        self.tokens.get_or_create(&GrantLabels { grant: grant.as_str() }).inc();
    }

    pub fn database_error(&self) {
        self.database_errors.inc();
    }

    /// The text exposition, with the scrape-time gauges set first.
    pub fn render(&self, active_sessions: i64, pool_connections: u32, pool_idle: usize) -> String {
        self.active_sessions.set(active_sessions);
        self.pool_connections.set(i64::from(pool_connections));
        self.pool_idle.set(i64::try_from(pool_idle).unwrap_or(i64::MAX));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_conventional_names() {
        let metrics = Metrics::new();
        metrics.observe_request(
            RequestLabels { endpoint: "/application/o/token/".into(), method: "POST".into(), status: 200 },
            0.002,
        );
        metrics.login(LoginOutcome::Failure);
        metrics.token_issued(GrantType::AuthorizationCode);
        metrics.second_factor("otp", LoginOutcome::Success);
        let text = metrics.render(3, 4, 2);
        assert!(
            text.contains(
                r#"latch_http_requests_total{endpoint="/application/o/token/",method="POST",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("latch_http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains(r#"latch_logins_total{outcome="failure"} 1"#), "{text}");
        assert!(text.contains(r#"latch_tokens_issued_total{grant="authorization_code"} 1"#), "{text}");
        assert!(text.contains(r#"latch_second_factor_checks_total{method="otp",outcome="success"} 1"#), "{text}");
        assert!(text.contains("latch_active_sessions 3"), "{text}");
        assert!(text.contains("latch_build_info{version="), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
