//! Operations endpoints and per-request bookkeeping: health, metrics, the
//! request log line and `X-Request-Id`, and the client's address.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{AppendHeaders, IntoResponse, Response};

use super::AppState;
use super::error::InFormat;
use crate::config::IpNet;
use crate::metrics::RequestLabels;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Marks a response that failed because of the database, for the metrics.
#[derive(Clone, Copy, Debug)]
pub struct DatabaseFailure;

/// Logs one line per request (method, path without the query, which may
/// carry codes and tokens, status, latency, request id), records metrics,
/// and returns the request id in `X-Request-Id`.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let endpoint = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    if response.extensions().get::<DatabaseFailure>().is_some() {
        state.metrics.database_error();
    }
    state.metrics.observe_request(
        RequestLabels { endpoint, method: method.to_string(), status: status.as_u16() },
        elapsed.as_secs_f64(),
    );
    tracing::info!(
        target: "latch::request",
        method = %method,
        path = %path,
        status = status.as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

pub async fn live() -> &'static str {
    "ok"
}

/// The header of `/health/ready` naming the database this instance uses
/// (`Store::database_id`: random, nothing secret).
pub const DATABASE_ID_HEADER: &str = "latch-database-id";

/// Ready when the store answers within a short time.
pub async fn ready(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {
            let database_id = HeaderValue::from_str(&state.database_id).ok();
            (AppendHeaders(database_id.map(|id| (HeaderName::from_static(DATABASE_ID_HEADER), id))), "ok")
                .into_response()
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Extension(InFormat), "database unavailable").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Extension(InFormat), "database timed out").into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let sessions = match tokio::time::timeout(
        Duration::from_secs(2),
        state.store.count_active_sessions(state.clock.now()),
    )
    .await
    {
        Ok(Ok(count)) => count,
        _ => {
            state.metrics.database_error();
            -1
        }
    };
    let (connections, idle) = state.store.pool_usage();
    let body = state.metrics.render(sessions, connections, idle);
    ([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the nearest untrusted address in `X-Forwarded-For`.
pub fn client_ip(peer: Option<&ConnectInfo<SocketAddr>>, headers: &HeaderMap, trusted: &[IpNet]) -> String {
    let Some(ConnectInfo(peer)) = peer else { return "unknown".into() };
    let peer = peer.ip();
    let is_trusted = |address: IpAddr| trusted.iter().any(|range| range.contains(address));
    if !is_trusted(peer) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded.into_iter().rev().find(|address| !is_trusted(*address)).unwrap_or(peer).to_string()
}

/// Who is asking: the client address (see `client_ip`) and user agent.
pub struct Requester {
    pub ip: String,
    pub user_agent: Option<String>,
}

impl axum::extract::FromRequestParts<AppState> for Requester {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        let ip = client_ip(peer, &parts.headers, &state.trusted_proxies);
        let user_agent =
            parts.headers.get(axum::http::header::USER_AGENT).and_then(|value| value.to_str().ok()).map(str::to_owned);
        Ok(Self { ip, user_agent })
    }
}

impl Requester {
    pub fn actor<'a>(&'a self, username: Option<&'a str>, app: Option<&'a str>) -> crate::audit::Actor<'a> {
        crate::audit::Actor { username, app, ip: Some(&self.ip), user_agent: self.user_agent.as_deref() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec![IpNet::parse("10.0.0.0/8").unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().unwrap());
        let from = |address: &str| ConnectInfo(SocketAddr::new(address.parse().unwrap(), 1234));
        assert_eq!(client_ip(Some(&from("10.0.0.1")), &headers, &trusted), "203.0.113.9");
        assert_eq!(client_ip(Some(&from("198.51.100.7")), &headers, &trusted), "198.51.100.7");
        assert_eq!(client_ip(Some(&from("10.0.0.1")), &HeaderMap::new(), &trusted), "10.0.0.1");
    }
}
