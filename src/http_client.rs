//! Latch's outbound HTTP client: hyper's own, over rustls with the aws-lc-rs
//! provider Latch already signs with, and the system's CA certificates (a
//! homelab's private CA is installed there). Back-channel logout delivers
//! through it; `latch doctor` looks at the deployment from outside with it.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Whether the client keeps connections open for the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Reused (keep-alive), as a worker that calls the same apps again wants.
    Reuse,
    /// A new connection for every request, so that a load balancer picks a
    /// backend for each (`latch doctor` probes every backend it can reach).
    FreshEach,
}

/// HTTPS with the system's CA certificates, or plain HTTP (a homelab's apps
/// are often on a private network or loopback). Redirects are not followed.
/// Without CA certificates (a bare container) the client is still built:
/// requests to http URIs go out, and those to https URIs fail, each with
/// its reason. Errors only when rustls cannot be set up at all.
pub fn build(connections: Connections) -> Result<HttpClient, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        Err(error) => {
            tracing::warn!(%error, "no CA certificates: outbound requests to https URIs will fail");
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            HttpsConnectorBuilder::new().with_tls_config(tls)
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    let mut client = Client::builder(TokioExecutor::new());
    if connections == Connections::FreshEach {
        client.pool_max_idle_per_host(0);
    }
    Ok(client.build(connector))
}

/// The answer to a GET: status, headers and body.
#[derive(Debug)]
pub struct Fetched {
    pub status: hyper::StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// Why a GET got no answer; the text says what to look at.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0} is not a valid URL")]
    BadUrl(String),
    #[error("{0}")]
    Request(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The most body bytes `get` reads.
const MAX_BODY: usize = 1 << 20;

/// GETs `url`, connecting, answering and reading the body (at most 1 MiB)
/// within `timeout`. Any status is an answer; errors: `BadUrl`, `Request`
/// (connecting, TLS, the exchange), `Timeout`, `TooLarge`.
pub async fn get(client: &HttpClient, url: &str, timeout: Duration) -> Result<Fetched, FetchError> {
    let uri: hyper::Uri = url.parse().map_err(|_| FetchError::BadUrl(url.to_owned()))?;
    let request =
        hyper::Request::get(uri).body(Full::new(Bytes::new())).map_err(|_| FetchError::BadUrl(url.to_owned()))?;
    let fetch = async {
        let response = client.request(request).await.map_err(|error| FetchError::Request(describe(&error)))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY).collect().await.map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge(MAX_BODY)
            } else {
                FetchError::Request(error.to_string())
            }
        })?;
        Ok(Fetched { status: parts.status, headers: parts.headers, body: body.to_bytes() })
    };
    tokio::time::timeout(timeout, fetch).await.map_err(|_| FetchError::Timeout(timeout))?
}

/// The error and its causes in one line: hyper's own Display says only
/// "client error (Connect)", the cause says what went wrong.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
